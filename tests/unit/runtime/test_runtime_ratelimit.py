"""Token buckets per caller: admission, refill, reservation and settlement (clock injected)."""

from __future__ import annotations

import pytest

from corral.api.agents import RateLimitSpec
from corral.runtime import errors, ratelimit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, rpm: int | None = None, tpm: int | None = None) -> ratelimit.RateLimiter:
    return ratelimit.RateLimiter(
        RateLimitSpec(requests_per_minute=rpm, tokens_per_minute=tpm), clock
    )


def test_without_limits_everything_is_admitted_with_no_headers() -> None:
    unlimited = ratelimit.RateLimiter(None)

    for _ in range(1000):
        assert unlimited.admit("agent", 10**6).headers == {}


def test_requests_are_admitted_up_to_the_limit_then_refused_with_retry_after() -> None:
    clock = Clock()
    limits = limiter(clock, rpm=3)

    for remaining in ("2", "1", "0"):
        assert limits.admit("k", 0).headers["x-ratelimit-remaining-requests"] == remaining
    with pytest.raises(errors.RateLimited) as caught:
        limits.admit("k", 0)

    assert caught.value.kind == "requests"
    assert caught.value.headers["retry-after"] == "20"  # one request per 60/3 s
    assert caught.value.headers["x-ratelimit-limit-requests"] == "3"


def test_the_allowance_refills_continuously() -> None:
    clock = Clock()
    limits = limiter(clock, rpm=60)
    for _ in range(60):
        limits.admit("k", 0)

    clock.now += 0.5
    with pytest.raises(errors.RateLimited):
        limits.admit("k", 0)
    clock.now += 0.5
    limits.admit("k", 0)


def test_callers_have_separate_buckets() -> None:
    limits = limiter(Clock(), rpm=1)

    limits.admit("key-0", 0)
    limits.admit("key-1", 0)
    with pytest.raises(errors.RateLimited):
        limits.admit("key-0", 0)


def test_a_token_reservation_is_taken_whole_or_not_at_all() -> None:
    limits = limiter(Clock(), rpm=100, tpm=1000)
    limits.admit("k", 600)

    with pytest.raises(errors.RateLimited) as caught:
        limits.admit("k", 600)

    assert caught.value.kind == "tokens"
    assert caught.value.type == "tokens"
    admitted = limits.admit("k", 400)
    assert admitted.headers["x-ratelimit-remaining-tokens"] == "0"
    assert admitted.headers["x-ratelimit-remaining-requests"] == "98"  # the refusal took none


def test_settling_refunds_unused_tokens() -> None:
    limits = limiter(Clock(), tpm=1000)
    held = limits.admit("k", 900)

    limits.settle(held, 100)
    limits.settle(held, 100)  # twice is once

    assert limits.admit("k", 0).headers["x-ratelimit-remaining-tokens"] == "900"


def test_settling_more_than_reserved_leaves_debt_that_delays_the_next_request() -> None:
    clock = Clock()
    limits = limiter(clock, tpm=600)  # 10 tokens per second
    held = limits.admit("k", 100)

    limits.settle(held, 700)

    with pytest.raises(errors.RateLimited) as caught:
        limits.admit("k", 100)
    assert caught.value.headers["retry-after"] == "20"  # from -100 back up to 100 tokens


def test_a_reservation_larger_than_the_whole_limit_can_never_pass() -> None:
    limits = limiter(Clock(), tpm=100)

    with pytest.raises(errors.PayloadTooLarge):
        limits.admit("k", 101)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.0, "0ms"), (0.02, "20ms"), (1.5, "1.5s"), (42.2, "43s"), (360, "6m0s")]
)
def test_reset_durations_use_openais_format(seconds: float, text: str) -> None:
    assert ratelimit.duration(seconds) == text
