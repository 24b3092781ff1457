"""Domain errors of the operator: each class says its `reason` and whether it is `permanent`.

Pure. Raised by `resolving`, `applying` and `kube`. Two readers, one table: `retry_delay`
(what `scheduling` does next: try again after a backoff, or wait for a change) and
`statuses` (a permanent failure is `Stalled`, a temporary one `Reconciling`). Messages name
objects and fields, never secret values.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Reference:
    """A namespaced object one Agent needs: a Persona, Tool, Secret (key) or another Agent."""

    kind: str
    name: str
    key: str | None = None

    def __str__(self) -> str:
        key = f" (key {self.key!r})" if self.key is not None else ""
        return f"{self.kind} {self.name!r}{key}"


class OperatorError(Exception):
    """Base of the domain errors. `reason` is the CamelCase reason used in conditions/events;
    `permanent` errors need a change to the spec (or to another object) to go away, so they are
    not retried on a timer; `retry_delay` (seconds) overrides the backoff of temporary ones."""

    reason = "ReconcileError"
    permanent = False
    retry_delay: float | None = None


class MissingReference(OperatorError):
    """Referenced objects do not exist (yet). Retried with backoff; heals once they appear."""

    reason = "MissingReference"

    def __init__(self, missing: list[Reference]) -> None:
        self.missing = missing
        names = ", ".join(str(ref) for ref in missing)
        super().__init__(f"not found: {names}")


class InvalidSpec(OperatorError):
    """A combination the CRD schema cannot reject. Stalled until the spec changes."""

    reason = "InvalidSpec"
    permanent = True


class NameConflict(OperatorError):
    """A child's name is taken by an object this Agent does not control. Stalled."""

    reason = "NameConflict"
    permanent = True


class ApiConflict(OperatorError):
    """The API server answered 409 Conflict (a concurrent writer). Retried soon."""

    reason = "ApiConflict"
    retry_delay = 1.0


class ApiUnavailable(OperatorError):
    """The API server could not be reached or answered 5xx/429. Retried with backoff."""

    reason = "ApiUnavailable"


def backoff(retry: int, base: float, cap: float) -> float:
    """Exponential backoff for the `retry`-th retry (0-based): base, 2*base, ... up to cap."""
    return float(min(cap, base * (2 ** min(retry, 30))))


def retry_delay(error: Exception, attempt: int, base: float, cap: float) -> float | None:
    """Seconds until the next attempt after `error` (the `attempt`-th failure in a row, 0-based),
    or None when only a change can help. Unexpected exceptions are retried like API errors."""
    if isinstance(error, OperatorError):
        if error.permanent:
            return None
        if error.retry_delay is not None:
            return error.retry_delay
    return backoff(attempt, base, cap)


def reason_of(error: Exception) -> str:
    return error.reason if isinstance(error, OperatorError) else "Error"
