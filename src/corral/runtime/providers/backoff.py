"""How long the failover chain waits before retrying the same model. Pure.

Exponential backoff with "equal jitter" (half fixed, half random, so concurrent retries spread
out but never fire at once), capped; an upstream's `Retry-After` is honoured when it is short,
and when it is longer than we are willing to hold a request, the chain stops retrying that
model and fails over at once. Called by `failover.FailoverChain`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one model before moving to the next.

    attempts         calls per model, the first included (1 = never retry)
    base_delay       seconds before the first retry (before jitter)
    max_delay        cap on the exponential delay
    max_retry_after  longest upstream Retry-After we wait out; longer means fail over now
    """

    attempts: int = 2
    base_delay: float = 0.1
    max_delay: float = 2.0
    max_retry_after: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError("RetryPolicy needs 0 <= base_delay <= max_delay")
        if self.max_retry_after < 0:
            raise ValueError("RetryPolicy.max_retry_after must not be negative")


def retry_delay(
    policy: RetryPolicy, retry: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds to sleep before retry number `retry` (1 = the first retry) of one model,
    or None when that model should not be retried now (Retry-After longer than we wait)."""
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        # A little jitter on top, so clients told the same Retry-After do not stampede.
        return retry_after + rng.uniform(0, policy.base_delay)
    ceiling = min(policy.max_delay, policy.base_delay * 2 ** (retry - 1))
    return rng.uniform(ceiling / 2, ceiling)
