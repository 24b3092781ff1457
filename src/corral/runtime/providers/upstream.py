"""How an upstream's HTTP failure becomes one of our `ProviderError` classes. Pure.

Used by the `openai` and `gemini` providers: the status decides retryable or not (timeouts,
429 and 5xx are; other 4xx are the caller's fault), and `Retry-After` (seconds or an HTTP
date; OpenAI's `retry-after-ms`; Google's RetryInfo `retryDelay` such as "27s") becomes
`retry_after` seconds for the failover chain to honour. The upstream's own error text is
bounded and redacted (`redaction.Redactor.excerpt`) before it goes into our error: an upstream
may echo the key it was sent, and that text reaches the client's answer and the log.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

from corral.runtime import redaction
from corral.runtime.providers import base

# 408 request timeout and 409 conflict are transient too (the OpenAI SDK retries them).
RETRYABLE_STATUSES = frozenset({408, 409, 429})
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


class Headers(Protocol):
    """Case-insensitive response headers (httpx2.Headers, a plain dict of lower-case names)."""

    def get(self, key: str, /) -> str | None: ...


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_STATUSES


def error_for_status(
    provider: str,
    status: int,
    message: str,
    retry_after: float | None = None,
    redact: redaction.Redactor | None = None,
) -> base.ProviderError:
    """The ProviderError for an HTTP error answer from upstream, its text made safe to show."""
    safe = (redact or redaction.Redactor()).excerpt(message)
    text = f"HTTP {status} from upstream: {safe}"
    if status == 408:
        return base.ProviderTimeout(text, provider=provider, status=status)
    if is_retryable_status(status):
        return base.ProviderUnavailable(
            text, provider=provider, status=status, retry_after=retry_after
        )
    return base.ProviderRejected(text, provider=provider, status=status)


def retry_after_from_headers(
    headers: Headers | None, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (delta or HTTP date).
    Unparseable values count as absent, negative ones as zero; never raises."""
    if headers is None:
        return None
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now())


def retry_after_from_google_details(details: Any) -> float | None:
    """Seconds from a google.rpc.RetryInfo entry (`{"retryDelay": "27s"}`) in an error body."""
    if not isinstance(details, list):
        return None
    for entry in details:
        if isinstance(entry, dict) and str(entry.get("@type", "")).endswith("RetryInfo"):
            return parse_duration(entry.get("retryDelay"))
    return None


def parse_duration(value: Any) -> float | None:
    """A protobuf JSON Duration ("1.5s") in seconds, or None."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    return float(match.group(1)) if match else None


def _number(raw: Any) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return max(0.0, value)
