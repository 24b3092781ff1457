"""Shared state of an Agent's replicas: the store, the budgets and the models' prices. Pure.

`Agent.spec.stateStore` points every replica at one Redis-protocol store (Redis or Valkey);
with it, rate limits, budgets and sessions hold across all replicas. `Agent.spec.budget`
caps tokens and cost per API key in UTC calendar days and months; cost comes from the
`pricing` of each model. Amounts of money are decimal strings in USD (as Kubernetes writes
quantities: no float rounding on the way through YAML). Used by `agents` and by the runtime
config.
"""

from __future__ import annotations

import decimal
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from corral.api.common import Model, SecretKeySelector, matches, pattern_field

# Up to 1,000,000 USD with at most 6 decimals: exact in the store's integer nano-dollars.
USD = r"^[0-9]{1,7}(\.[0-9]{1,6})?$"
MSG_USD = 'must be a decimal amount of USD such as "25.00" (at most 6 decimals, below 10,000,000)'
STORE_URL = r"^rediss?://[^\s@/]+(:[0-9]{1,5})?(/[0-9]{1,2})?$"
MSG_STORE_URL = (
    "must be redis://HOST[:PORT][/DB] or rediss://HOST[:PORT][/DB] (TLS); put the password in"
    " passwordSecretRef, never in the URL"
)
MSG_CA_NEEDS_TLS = (
    "spec.stateStore.caSecretRef needs a rediss:// url: the CA verifies the store's TLS"
    " certificate, and redis:// does not use TLS"
)
MSG_BUDGET_EMPTY = (
    "spec.budget must set at least one of tokensPerDay, tokensPerMonth, costPerDay, costPerMonth"
)
NANO_PER_USD = 1_000_000_000

FailurePolicy = Literal["FailClosed", "FailOpen"]


Usd = Annotated[str, pattern_field(USD, MSG_USD, 16), matches(USD, MSG_USD)]
StoreUrl = Annotated[
    str, pattern_field(STORE_URL, MSG_STORE_URL, 512), matches(STORE_URL, MSG_STORE_URL)
]


def nano_usd(amount: str) -> int:
    """A decimal USD string as integer nano-dollars (exact for the amounts `Usd` admits)."""
    return int(decimal.Decimal(amount) * NANO_PER_USD)


class StateStoreSpec(Model):
    """A Redis-protocol store (Redis or Valkey) that every replica of the Agent shares."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.caSecretRef) || self.url.startsWith('rediss://')",
                    "message": MSG_CA_NEEDS_TLS,
                }
            ]
        }
    )

    url: StoreUrl = Field(
        description="redis://HOST:PORT/DB, or rediss:// for TLS, e.g."
        " redis://valkey.corral-system.svc:6379/0. No password in the URL."
    )
    password_secret_ref: SecretKeySelector | None = Field(
        default=None,
        alias="passwordSecretRef",
        description="Secret key holding the store's password (AUTH); reaches pods only as an"
        " env var.",
    )
    failure_policy: FailurePolicy = Field(
        default="FailClosed",
        description="While the store is unreachable: FailClosed answers 503 (with retry-after)"
        " to chat requests; FailOpen serves them under per-replica limits and no budget,"
        " with a metric and a log line saying so.",
    )
    ca_secret_ref: SecretKeySelector | None = Field(
        default=None,
        alias="caSecretRef",
        description="Secret key holding the PEM CA certificate(s) that signed a rediss://"
        " store's certificate (e.g. cert-manager's ca.crt); without it, the image's trust"
        " store. Reaches pods only as an env var.",
    )

    @model_validator(mode="after")
    def _ca_needs_tls(self) -> StateStoreSpec:
        if self.ca_secret_ref is not None and not self.url.startswith("rediss://"):
            raise ValueError(MSG_CA_NEEDS_TLS)
        return self


class BudgetSpec(Model):
    """Spend caps per API key (per Agent without auth), in UTC calendar days and months."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.tokensPerDay) || has(self.tokensPerMonth) ||"
                    " has(self.costPerDay) || has(self.costPerMonth)",
                    "message": MSG_BUDGET_EMPTY,
                }
            ]
        }
    )

    tokens_per_day: int | None = Field(
        default=None, ge=1, le=10**12, description="Prompt plus completion tokens per UTC day."
    )
    tokens_per_month: int | None = Field(
        default=None, ge=1, le=10**13, description="Prompt plus completion tokens per UTC month."
    )
    cost_per_day: Usd | None = Field(
        default=None, description='USD per UTC day, from the models\' pricing, e.g. "25.00".'
    )
    cost_per_month: Usd | None = Field(
        default=None, description="USD per UTC month, from the models' pricing."
    )

    @model_validator(mode="after")
    def _sets_a_cap(self) -> BudgetSpec:
        if (
            self.tokens_per_day is None
            and self.tokens_per_month is None
            and self.cost_per_day is None
            and self.cost_per_month is None
        ):
            raise ValueError(MSG_BUDGET_EMPTY)
        return self

    @property
    def limits_cost(self) -> bool:
        return self.cost_per_day is not None or self.cost_per_month is not None


class PricingSpec(Model):
    """What a model costs, in USD per million tokens."""

    prompt_per_million: Usd = Field(description="USD per million prompt (input) tokens.")
    completion_per_million: Usd = Field(description="USD per million completion (output) tokens.")
