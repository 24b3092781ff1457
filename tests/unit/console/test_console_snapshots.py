"""The metrics snapshot from the runtime's exposition text (pure)."""

from __future__ import annotations

import pytest

from corral.console import snapshots

POD_A = """\
# HELP corral_requests_total HTTP requests by route and status.
# TYPE corral_requests_total counter
corral_requests_total{route="/v1/chat/completions",status="200"} 8.0
corral_requests_total{route="/v1/chat/completions",status="429"} 1.0
corral_requests_total{route="/v1/chat/completions",status="502"} 1.0
corral_requests_total{route="/healthz",status="200"} 50.0
# HELP corral_tokens_total Tokens used, by direction (prompt, completion).
# TYPE corral_tokens_total counter
corral_tokens_total{direction="prompt"} 300.0
corral_tokens_total{direction="completion"} 120.0
# HELP corral_request_duration_seconds Time from request to the last byte of the answer, by route.
# TYPE corral_request_duration_seconds histogram
corral_request_duration_seconds_bucket{le="0.1",route="/v1/chat/completions"} 0.0
corral_request_duration_seconds_bucket{le="0.5",route="/v1/chat/completions"} 6.0
corral_request_duration_seconds_bucket{le="1.0",route="/v1/chat/completions"} 10.0
corral_request_duration_seconds_bucket{le="+Inf",route="/v1/chat/completions"} 10.0
corral_request_duration_seconds_count{route="/v1/chat/completions"} 10.0
corral_request_duration_seconds_sum{route="/v1/chat/completions"} 4.0
corral_request_duration_seconds_bucket{le="0.1",route="/healthz"} 50.0
corral_request_duration_seconds_bucket{le="+Inf",route="/healthz"} 50.0
"""

POD_B = """\
# TYPE corral_requests_total counter
corral_requests_total{route="/v1/chat/completions",status="200"} 10.0
# TYPE corral_tokens_total counter
corral_tokens_total{direction="prompt"} 100.0
# TYPE corral_request_duration_seconds histogram
corral_request_duration_seconds_bucket{le="0.1",route="/v1/chat/completions"} 0.0
corral_request_duration_seconds_bucket{le="0.5",route="/v1/chat/completions"} 10.0
corral_request_duration_seconds_bucket{le="1.0",route="/v1/chat/completions"} 10.0
corral_request_duration_seconds_bucket{le="+Inf",route="/v1/chat/completions"} 10.0
"""


def test_one_pod_counts_chat_requests_errors_refusals_and_tokens() -> None:
    sample = snapshots.parse(POD_A)
    assert (sample.requests, sample.errors, sample.rejected) == (10.0, 1.0, 1.0)
    assert (sample.prompt_tokens, sample.completion_tokens) == (300.0, 120.0)
    assert sample.buckets == ((0.1, 0.0), (0.5, 6.0), (1.0, 10.0), (float("inf"), 10.0))


def test_pods_add_up_and_p95_is_interpolated_in_the_summed_buckets() -> None:
    snap = snapshots.combine([snapshots.parse(POD_A), snapshots.parse(POD_B)])
    assert (snap.pods, snap.requests, snap.prompt_tokens) == (2, 20.0, 400.0)
    # 20 observations, rank 19: 16 are <= 0.5, 20 <= 1.0 -> 0.5 + 0.5 * (19 - 16) / 4.
    assert snap.p95_seconds == pytest.approx(0.875)


def test_the_p95_of_one_pod_matches_histogram_quantile() -> None:
    # rank 9.5 of 10: 6 <= 0.5, 10 <= 1.0 -> 0.5 + 0.5 * 3.5 / 4
    assert snapshots.combine([snapshots.parse(POD_A)]).p95_seconds == pytest.approx(0.9375)


def test_no_observations_no_p95() -> None:
    assert snapshots.combine([snapshots.parse("")]).p95_seconds is None
    assert snapshots.quantile(0.95, []) is None


def test_observations_above_every_finite_bucket_report_the_highest_bound() -> None:
    buckets = [(1.0, 0.0), (2.0, 1.0), (float("inf"), 10.0)]
    assert snapshots.quantile(0.95, buckets) == 2.0


def test_text_that_is_not_prometheus_says_so() -> None:
    with pytest.raises(snapshots.NotExposition, match="not Prometheus text"):
        snapshots.parse("<html>502 Bad Gateway</html>\n{")
