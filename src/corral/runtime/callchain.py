"""The chain of Agents a request has passed through, so agent tools cannot loop or nest deeply.

An `agent` tool calls another Agent's OpenAI endpoint. Each runtime sends, on such a call, the
header `x-corral-call-chain`: the agents the request passed through, outermost first, as
`namespace/name` separated by commas, itself included. Before calling, the caller refuses a
target already in the chain (a cycle: A -> B -> A) or one that would make the chain longer than
`maxCallDepth`; the refusal is a tool error the model reads. A runtime receiving a chain that
already names it, or that is already as long as its own limit allows, refuses the request with
a 400 (`call_depth_exceeded` / `call_cycle`), so a caller that ignores the rule is stopped too.
Pure; no I/O. Used by the routes (incoming header) and by `httptools.AgentTarget` (outgoing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = "x-corral-call-chain"
# namespace/name: both DNS labels (RFC 1123), as Kubernetes names them.
_HOP = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_HOPS = 32


class InvalidChain(ValueError):
    """The incoming header is not a list of namespace/name hops."""


class Refused(ValueError):
    """Calling on would make a cycle or exceed the depth; `code` says which."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Chain:
    """The agents before this one (outermost first) and this one, with its depth limit."""

    before: tuple[str, ...]
    me: str
    max_depth: int

    @property
    def hops(self) -> tuple[str, ...]:
        return (*self.before, self.me)

    def header(self) -> str:
        """The header value to send on a call out of this agent."""
        return ",".join(self.hops)

    def check_incoming(self) -> None:
        """Refused when this request already loops back here or is too deep to be served."""
        if self.me in self.before:
            raise Refused("call_cycle", f"agent call cycle: {_arrow((*self.before, self.me))}")
        if len(self.hops) > self.max_depth:
            raise Refused(
                "call_depth_exceeded",
                f"agent call chain {_arrow(self.hops)} is deeper than maxCallDepth"
                f" {self.max_depth} of {self.me}",
            )

    def check_call(self, target: str) -> None:
        """Refused when calling `target` from here would loop or go deeper than allowed."""
        if target in self.hops:
            raise Refused("call_cycle", f"calling {target} would make a cycle: "
                          f"{_arrow((*self.hops, target))}")  # fmt: skip
        if len(self.hops) + 1 > self.max_depth:
            raise Refused(
                "call_depth_exceeded",
                f"calling {target} would make the chain {_arrow((*self.hops, target))} deeper"
                f" than maxCallDepth {self.max_depth}",
            )


def parse(header: str | None, me: str, max_depth: int) -> Chain:
    """The chain from an incoming header value (None or empty: this agent is the first)."""
    if not header or not header.strip():
        return Chain((), me, max_depth)
    hops = tuple(h.strip() for h in header.split(","))
    if len(hops) > MAX_HOPS or not all(_HOP.match(h) for h in hops):
        raise InvalidChain(
            f"{HEADER} must list at most {MAX_HOPS} agents as namespace/name, comma-separated"
        )
    return Chain(hops, me, max_depth)


def _arrow(hops: tuple[str, ...]) -> str:
    return " -> ".join(hops)
