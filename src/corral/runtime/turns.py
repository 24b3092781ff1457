"""The bookkeeping of one chat request: a ticket per model turn, each settled once, and the
answer remembered in the session.

The serving layer makes one `Turn` per request around the first turn's ticket; the agent loop
calls `gate` before every later model turn (settle the turn before it, reserve this one), and
the serving layer calls `settle` when the request ends (for a stream: when it ends or breaks)
and `remember` with the final answer. Only user messages and plain answers are remembered,
never tool traffic. Network I/O only through admission and the sessions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from corral.runtime import admission, agentloop, errors, sessions, tokens
from corral.runtime.auth import Principal


@dataclass(slots=True)
class Turn:
    """The bookkeeping of one request: one ticket per model turn, each settled once with its
    turn's usage; the answer remembered in the session."""

    keeper: admission.Admission
    ticket: admission.Ticket
    meter: agentloop.Meter
    history: sessions.Sessions | None
    principal: Principal
    session_id: str | None
    client: list[dict[str, Any]]
    # Tokens a later turn adds to its conversation's estimate: tool definitions + max_tokens.
    turn_overhead: int
    on_rejected: Callable[[str], None]
    charged_tokens: int = 0
    charged_cost: int = 0

    async def gate(self, conversation: Sequence[dict[str, Any]]) -> None:
        """Before a later turn: settle the turn before it, reserve this one."""
        self.settle()
        estimate = cost = 0
        if self.keeper.limits_tokens:
            prompt = tokens.estimate_messages(conversation)
            estimate = prompt + self.turn_overhead
            cost = self.keeper.prices.bound(prompt, self.turn_overhead)
        try:
            self.ticket = await self.keeper.admit(self.principal, estimate, cost, request=False)
        except errors.RateLimited as limited:
            self.on_rejected(limited.kind)
            raise

    def settle(self) -> None:
        """Settle the current turn's ticket with the usage since the last settle (once)."""
        used = self.meter.tokens - self.charged_tokens
        cost = self.meter.cost - self.charged_cost
        if not self.ticket.settled:
            self.charged_tokens += used
            self.charged_cost += cost
        self.keeper.settle(self.ticket, used, cost)

    async def remember(self, content: str | None) -> None:
        """Keep the user's messages and the final answer (no tool traffic) in the session."""
        if self.history is None or self.session_id is None or content is None:
            return
        kept = [m for m in self.client if m["role"] == "user" or _is_plain_answer(m)]
        kept.append({"role": "assistant", "content": content})
        await self.history.remember(self.principal, self.session_id, kept)


def _is_plain_answer(message: dict[str, Any]) -> bool:
    return (
        message["role"] == "assistant"
        and not message.get("tool_calls")
        and bool(message.get("content"))
    )
