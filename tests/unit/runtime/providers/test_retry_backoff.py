"""Backoff math: exponential with equal jitter, capped; Retry-After honoured when short."""

from __future__ import annotations

import random

import pytest

from corral.runtime.providers.backoff import RetryPolicy, retry_delay


class Extremes(random.Random):
    """uniform() returns the low or the high end, to pin the jitter's bounds."""

    def __init__(self, high: bool) -> None:
        super().__init__(0)
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


POLICY = RetryPolicy(attempts=5, base_delay=0.1, max_delay=1.0, max_retry_after=5.0)


@pytest.mark.parametrize(
    ("retry", "low", "high"),
    [(1, 0.05, 0.1), (2, 0.1, 0.2), (3, 0.2, 0.4), (4, 0.4, 0.8), (5, 0.5, 1.0), (9, 0.5, 1.0)],
)
def test_delay_doubles_per_retry_within_half_to_full_of_the_capped_ceiling(
    retry: int, low: float, high: float
) -> None:
    assert retry_delay(POLICY, retry, None, Extremes(high=False)) == pytest.approx(low)
    assert retry_delay(POLICY, retry, None, Extremes(high=True)) == pytest.approx(high)


def test_jitter_spreads_delays_of_concurrent_retries() -> None:
    rng = random.Random(7)
    delays = {retry_delay(POLICY, 3, None, rng) for _ in range(50)}
    assert len(delays) > 40
    assert all(0.2 <= d <= 0.4 for d in delays if d is not None)


def test_a_short_retry_after_is_waited_out_plus_a_little_jitter() -> None:
    assert retry_delay(POLICY, 1, 2.0, Extremes(high=False)) == pytest.approx(2.0)
    assert retry_delay(POLICY, 1, 2.0, Extremes(high=True)) == pytest.approx(2.1)


def test_a_retry_after_longer_than_the_policy_waits_means_do_not_retry_this_model() -> None:
    assert retry_delay(POLICY, 1, 5.01, random.Random(1)) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"attempts": 0}, {"base_delay": 3.0, "max_delay": 1.0}, {"max_retry_after": -1.0}],
    ids=["no-attempts", "base-above-max", "negative-retry-after"],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
