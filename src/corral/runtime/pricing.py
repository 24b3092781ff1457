"""What model calls cost: prices per token from each model's `pricing`, in nano-dollars. Pure.

Amounts are integers of nano-USD (1e-9 USD), exact for every price and budget the API admits,
so the store adds integers and nothing drifts. A call's cost is priced by the model that
answered it (failover can change the model mid-request); a reservation, made before anyone
knows which model will answer, is priced at the dearest model of the chain, so a cost budget
is never overshot by more than one reservation. Used by the agent loop (the cost of each turn)
and by admission (what a turn reserves). No I/O.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable
from dataclasses import dataclass

from corral.api.runtimeconfig import ModelEndpoint
from corral.runtime.providers.base import Usage

NANO_PER_MILLION_USD = 1000  # 1 USD per million tokens = 1000 nano-USD per token


@dataclass(frozen=True, slots=True)
class Price:
    """Nano-USD per prompt token and per completion token (fractions kept as Decimal)."""

    prompt: decimal.Decimal
    completion: decimal.Decimal

    def cost(self, prompt_tokens: int, completion_tokens: int) -> int:
        total = self.prompt * prompt_tokens + self.completion * completion_tokens
        return int(total.to_integral_value(rounding=decimal.ROUND_CEILING))


FREE = Price(decimal.Decimal(0), decimal.Decimal(0))


class Prices:
    """The prices of the configured models, by (provider, model name)."""

    def __init__(self, models: Iterable[ModelEndpoint]) -> None:
        self._prices: dict[tuple[str, str], Price] = {}
        for model in models:
            if model.pricing is None:
                continue
            self._prices[(model.provider, model.name)] = Price(
                decimal.Decimal(model.pricing.prompt_per_million) * NANO_PER_MILLION_USD,
                decimal.Decimal(model.pricing.completion_per_million) * NANO_PER_MILLION_USD,
            )
        values = list(self._prices.values())
        self.dearest = Price(
            max((p.prompt for p in values), default=decimal.Decimal(0)),
            max((p.completion for p in values), default=decimal.Decimal(0)),
        )

    @property
    def priced(self) -> bool:
        return bool(self._prices)

    def cost(self, provider: str, model: str, usage: Usage) -> int:
        """Nano-USD of one answered call (0 for a model without pricing)."""
        price = self._prices.get((provider, model), FREE)
        return price.cost(usage.prompt_tokens, usage.completion_tokens)

    def bound(self, prompt_tokens: int, completion_tokens: int) -> int:
        """The most a call of this size may cost, whichever model answers it."""
        return self.dearest.cost(prompt_tokens, completion_tokens)


def usd(nano: int) -> str:
    """Nano-USD as a USD string with 6 decimals (headers, logs)."""
    return f"{decimal.Decimal(nano) / 1_000_000_000:.6f}"
