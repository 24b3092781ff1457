"""A metrics snapshot of an Agent from its pods' Prometheus exposition. Pure.

`parse` reads one pod's `/metrics` text (prometheus_client's parser) into the few numbers the
Agent page shows; `combine` adds the pods up and estimates the p95 latency of chat requests
from the summed histogram buckets, as PromQL's histogram_quantile does. The series names are
the runtime's (docs/metrics.md); they are named here, not imported, because the console never
imports the runtime. Called by `details`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

CHAT_ROUTE: Final = "/v1/chat/completions"
REQUESTS: Final = "corral_requests_total"
DURATION_BUCKET: Final = "corral_request_duration_seconds_bucket"
TOKENS: Final = "corral_tokens_total"


@dataclasses.dataclass(frozen=True)
class PodSample:
    """What one pod reported since it started."""

    requests: float = 0.0
    errors: float = 0.0  # 5xx answers
    rejected: float = 0.0  # 4xx answers (bad requests, auth, rate limits)
    prompt_tokens: float = 0.0
    completion_tokens: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # (upper bound, cumulative count)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The Agent's numbers, summed over the pods that answered."""

    pods: int
    requests: float
    errors: float
    rejected: float
    prompt_tokens: float
    completion_tokens: float
    p95_seconds: float | None


class NotExposition(ValueError):
    """The text is not the Prometheus exposition format (a proxy's error page, say)."""


def parse(text: str) -> PodSample:
    """One pod's sample from its exposition text."""
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as err:
        raise NotExposition(f"not Prometheus text: {err}") from err
    requests = errors = rejected = prompt = completion = 0.0
    buckets: dict[float, float] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name == REQUESTS and labels.get("route") == CHAT_ROUTE:
                requests += sample.value
                status = labels.get("status", "")
                errors += sample.value if status.startswith("5") else 0.0
                rejected += sample.value if status.startswith("4") else 0.0
            elif sample.name == TOKENS:
                direction = labels.get("direction")
                prompt += sample.value if direction == "prompt" else 0.0
                completion += sample.value if direction == "completion" else 0.0
            elif sample.name == DURATION_BUCKET and labels.get("route") == CHAT_ROUTE:
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return PodSample(
        requests=requests,
        errors=errors,
        rejected=rejected,
        prompt_tokens=prompt,
        completion_tokens=completion,
        buckets=tuple(sorted(buckets.items())),
    )


def combine(samples: Iterable[PodSample]) -> Snapshot:
    samples = list(samples)
    merged: dict[float, float] = {}
    for s in samples:
        for bound, count in s.buckets:
            merged[bound] = merged.get(bound, 0.0) + count
    return Snapshot(
        pods=len(samples),
        requests=sum(s.requests for s in samples),
        errors=sum(s.errors for s in samples),
        rejected=sum(s.rejected for s in samples),
        prompt_tokens=sum(s.prompt_tokens for s in samples),
        completion_tokens=sum(s.completion_tokens for s in samples),
        p95_seconds=quantile(0.95, sorted(merged.items())),
    )


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile from cumulative buckets (sorted by bound, ending at +Inf), with linear
    interpolation inside the bucket as histogram_quantile does; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                # Above the highest finite bucket: its bound is the best estimate (as PromQL).
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
