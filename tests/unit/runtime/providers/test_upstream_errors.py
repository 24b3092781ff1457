"""Upstream HTTP failures classified into our errors, and Retry-After in all its spellings."""

from __future__ import annotations

import email.utils

import pytest

from corral.runtime.providers import base, upstream


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (500, base.ProviderUnavailable, True),
        (502, base.ProviderUnavailable, True),
        (503, base.ProviderUnavailable, True),
        (429, base.ProviderUnavailable, True),
        (409, base.ProviderUnavailable, True),
        (408, base.ProviderTimeout, True),
        (400, base.ProviderRejected, False),
        (401, base.ProviderRejected, False),
        (403, base.ProviderRejected, False),
        (404, base.ProviderRejected, False),
        (413, base.ProviderRejected, False),
        (422, base.ProviderRejected, False),
    ],
)
def test_status_decides_the_error_class_and_whether_to_retry(
    status: int, kind: type[base.ProviderError], retryable: bool
) -> None:
    error = upstream.error_for_status("openai", status, "nope", retry_after=3.0)
    assert type(error) is kind
    assert error.retryable is retryable
    assert error.status == status
    assert error.provider == "openai"
    assert "nope" in str(error)


def test_retry_after_is_kept_only_where_a_retry_can_use_it() -> None:
    assert upstream.error_for_status("x", 429, "m", 2.5).retry_after == 2.5
    assert upstream.error_for_status("x", 400, "m", 2.5).retry_after is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_in_seconds_or_milliseconds(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert upstream.retry_after_from_headers(headers) == seconds


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 42, usegmt=True)
    assert upstream.retry_after_from_headers({"retry-after": date}, now=lambda: now) == 42.0
    past = email.utils.formatdate(now - 42, usegmt=True)
    assert upstream.retry_after_from_headers({"retry-after": past}, now=lambda: now) == 0.0


def test_google_retry_info_detail_gives_the_delay() -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27.5s"},
    ]
    assert upstream.retry_after_from_google_details(details) == 27.5
    assert upstream.retry_after_from_google_details([{"retryDelay": "3s"}]) is None
    assert upstream.retry_after_from_google_details(None) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("3s", 3.0), ("0.25s", 0.25), ("3", None), (7, None)]
)
def test_protobuf_durations(text: object, seconds: float | None) -> None:
    assert upstream.parse_duration(text) == seconds
