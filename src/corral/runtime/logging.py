"""Structured JSON logs: one object per line on stderr, carrying the current request id.

`configure` installs the formatter on the root logger and routes uvicorn's loggers through it
(uvicorn's own access log is off: the middleware writes one access line per request, with
route, status, duration and request id, never a prompt, key or session id). `request_id` is a
context variable set by the middleware, so every log line written while serving a request
carries it. The access line is written on every request, so `configure` also turns off what
the formatter never prints (a record's caller, thread and process: the switches of the logging
HOWTO's "Optimization" section) and the encoder is built once. Called by `main` at startup;
writes to stderr.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "corral_request_id", default=None
)

# LogRecord attributes that are not user-supplied `extra=` fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
    "taskName",
}
_encode = json.JSONEncoder(default=str, ensure_ascii=False).encode


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", "request_id"?, ...extra fields, "exc"?}`; the line
    passes through `redact` (the identity until `redact_with`) before it is written."""

    redact: Callable[[str], str] = staticmethod(lambda line: line)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        current = request_id.get()
        if current is not None:
            entry["request_id"] = current
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return self.redact(_encode(entry))


def redact_with(redact: Callable[[str], str]) -> None:
    """From now on, every line the JSON formatter writes passes through `redact`."""
    JsonFormatter.redact = staticmethod(redact)


def configure(level: str = "INFO") -> None:
    """Send every log record, uvicorn's included, as JSON to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # The SDKs and their HTTP libraries log every request's URL and retries at INFO; keep
    # them to warnings.
    for name in ("httpx", "httpx2", "httpcore", "aiohttp", "openai", "google_genai"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.WARNING))
