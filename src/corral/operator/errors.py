"""Domain errors of the operator and their one mapping to Kopf retry semantics.

Pure. Raised by `resolving`, `applying` and `kube`; translated into `kopf.TemporaryError`
(try again later) or `kopf.PermanentError` (stop until the spec changes) by `to_kopf`, which
only `handlers` calls. Messages name objects and fields, never secret values.
"""

from __future__ import annotations

import dataclasses

import kopf


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
    """Base of the domain errors. `reason` is the CamelCase reason used in conditions/events."""

    reason = "ReconcileError"


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


class NameConflict(OperatorError):
    """A child's name is taken by an object this Agent does not control. Stalled."""

    reason = "NameConflict"


class ApiConflict(OperatorError):
    """The API server answered 409 Conflict (a concurrent writer). Retried soon."""

    reason = "ApiConflict"


class ApiUnavailable(OperatorError):
    """The API server could not be reached or answered 5xx/429. Retried with backoff."""

    reason = "ApiUnavailable"


def backoff(retry: int, base: float, cap: float) -> float:
    """Exponential backoff for the `retry`-th retry (0-based): base, 2*base, ... up to cap."""
    return float(min(cap, base * (2 ** min(retry, 30))))


def to_kopf(error: OperatorError, retry: int, base: float, cap: float) -> Exception:
    """The Kopf exception that makes Kopf do the right next thing for `error`."""
    if isinstance(error, InvalidSpec | NameConflict):
        return kopf.PermanentError(str(error))
    if isinstance(error, ApiConflict):
        return kopf.TemporaryError(str(error), delay=1)
    return kopf.TemporaryError(str(error), delay=backoff(retry, base, cap))
