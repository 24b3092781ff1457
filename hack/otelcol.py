#!/usr/bin/env python3
"""A real OpenTelemetry receiver for tests: the Collector on loopback, and the spans it received.

The binary is the pinned `otelcol` of `localcluster.binaries` (OTLP receiver + file exporter,
built from hack/gomod/otelcol into `<cache>/bin/otelcol-<version>`, once per machine: a missing
binary is built, so a test never skips). `Collector` writes a config into a temp dir, runs the
collector as a child process with OTLP/HTTP (and optionally gRPC) on free 127.0.0.1 ports, and
waits until the OTLP/HTTP receiver accepts an (empty) export. The file exporter writes each
export it receives as one OTLP JSON line; `spans()` polls that file and parses it into flat
`Span` records (`parse` is the pure half). Stopped by its PID: SIGTERM, then SIGKILL after a
grace period. Does I/O: may run `go build`, writes the temp dir, spawns and signals a process,
polls its HTTP port and reads its output file. Called by the `otel_collector` pytest fixture
(tests/conftest.py) and by hand:

    with otelcol.Collector() as collector:       # OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint
        ...                                      # export spans over OTLP/HTTP
        spans = collector.spans(until=lambda spans: len(spans) >= 3)

    python hack/otelcol.py build                 # build the pinned collector (idempotent)
    python hack/otelcol.py serve [--port 4318]   # receive until Ctrl-C, then list the spans
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import childproc
from childproc import HOST, free_port
from localcluster import binaries, output, settings

NAME = "otelcol"
START_TIMEOUT = 30.0
# The file exporter buffers writes; this is how often it flushes them (its default is 1s).
FLUSH_INTERVAL = "50ms"
POLL_INTERVAL = 0.05

# OTLP's enum numbers, named as the SDKs name them (opentelemetry.trace.SpanKind / StatusCode).
SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")


@dataclasses.dataclass(frozen=True)
class Span:
    """One received span, flattened out of its resource and scope."""

    trace_id: str  # 32 lowercase hex digits
    span_id: str  # 16 lowercase hex digits
    parent_span_id: str | None  # None for a root span
    name: str
    kind: str  # one of SPAN_KINDS
    attributes: dict[str, Any]
    status_code: str  # one of STATUS_CODES
    status_message: str
    service_name: str | None  # the resource's service.name
    start_time_unix_nano: int
    end_time_unix_nano: int


def parse(lines: Iterable[str]) -> list[Span]:
    """The spans in OTLP JSON lines (ExportTraceServiceRequests, as the file exporter writes)."""
    spans: list[Span] = []
    for line in lines:
        if not line.strip():
            continue
        for resource_spans in json.loads(line).get("resourceSpans", []):
            resource = attributes(resource_spans.get("resource", {}).get("attributes", []))
            service = resource.get("service.name")
            for scope_spans in resource_spans.get("scopeSpans", []):
                spans.extend(_span(raw, service) for raw in scope_spans.get("spans", []))
    return spans


def attributes(key_values: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """OTLP JSON KeyValues as a plain dict of typed Python values."""
    return {kv["key"]: value(kv.get("value", {})) for kv in key_values}


def value(any_value: dict[str, Any]) -> Any:
    """One OTLP JSON AnyValue as a Python value (ints arrive as strings, bytes as base64)."""
    if "stringValue" in any_value:
        return any_value["stringValue"]
    if "boolValue" in any_value:
        return bool(any_value["boolValue"])
    if "intValue" in any_value:
        return int(any_value["intValue"])
    if "doubleValue" in any_value:
        return float(any_value["doubleValue"])
    if "arrayValue" in any_value:
        return [value(v) for v in any_value["arrayValue"].get("values", [])]
    if "kvlistValue" in any_value:
        return attributes(any_value["kvlistValue"].get("values", []))
    if "bytesValue" in any_value:
        return base64.b64decode(any_value["bytesValue"])
    return None


def _span(raw: dict[str, Any], service: str | None) -> Span:
    status = raw.get("status", {})
    return Span(
        trace_id=raw["traceId"],
        span_id=raw["spanId"],
        parent_span_id=raw.get("parentSpanId") or None,
        name=raw["name"],
        kind=SPAN_KINDS[int(raw.get("kind", 0))],
        attributes=attributes(raw.get("attributes", [])),
        status_code=STATUS_CODES[int(status.get("code", 0))],
        status_message=status.get("message", ""),
        service_name=service,
        start_time_unix_nano=int(raw.get("startTimeUnixNano", 0)),
        end_time_unix_nano=int(raw.get("endTimeUnixNano", 0)),
    )


def config(spans_file: Path, http_port: int, grpc_port: int | None) -> dict[str, Any]:
    """The collector config: OTLP in, every export appended to `spans_file` as a JSON line."""
    protocols: dict[str, Any] = {"http": {"endpoint": f"{HOST}:{http_port}"}}
    if grpc_port is not None:
        protocols["grpc"] = {"endpoint": f"{HOST}:{grpc_port}"}
    return {
        "receivers": {"otlp": {"protocols": protocols}},
        # No batch processor: each export reaches the file as it arrives.
        "exporters": {
            "file": {"path": str(spans_file), "format": "json", "flush_interval": FLUSH_INTERVAL}
        },
        "service": {
            # The default would serve the collector's own metrics on :8888, shared by every
            # collector on the machine.
            "telemetry": {"metrics": {"level": "none"}},
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}},
        },
    }


class Collector:
    """The OpenTelemetry Collector as a child process on loopback ports."""

    def __init__(
        self,
        port: int | None = None,
        grpc: bool = False,
        start_timeout: float = START_TIMEOUT,
        config: settings.Settings | None = None,
        log: output.Log | None = None,
    ) -> None:
        self.http_port = port or free_port()
        self.grpc_port = free_port() if grpc else None
        self.start_timeout = start_timeout
        self._settings = config or settings.Settings.from_env()
        self._build_log = log
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._child: childproc.Child | None = None

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL, as OTEL_EXPORTER_OTLP_ENDPOINT wants it (no /v1/traces)."""
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str | None:
        """host:port of the OTLP/gRPC receiver (insecure), if it was asked for."""
        return None if self.grpc_port is None else f"{HOST}:{self.grpc_port}"

    @property
    def spans_file(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the collector is not started")
        return Path(self._dir.name) / "spans.jsonl"

    def start(self) -> Collector:
        """Spawn the collector, wait until OTLP/HTTP accepts exports; raise with its log tail."""
        binary = binaries.ensure(self._settings, [NAME], log=self._build_log)[NAME]
        self._dir = tempfile.TemporaryDirectory(prefix="corral-otelcol-")
        config_file = Path(self._dir.name) / "config.yaml"
        # JSON is YAML: no YAML writer needed.
        config_file.write_text(json.dumps(config(self.spans_file, self.http_port, self.grpc_port)))
        self._child = childproc.Child("otelcol", [str(binary), f"--config=file:{config_file}"])
        try:
            self._child.wait_ready(
                self._accepts_exports,
                self.start_timeout,
                f"accepting OTLP/HTTP on {self.endpoint}",
                poll=POLL_INTERVAL,
            )
        except RuntimeError:
            self.stop()
            raise
        return self

    def spans(
        self, timeout: float = 10.0, until: Callable[[Sequence[Span]], bool] = bool
    ) -> list[Span]:
        """Every span received so far, once `until(spans)` holds (default: there is one).

        Raises TimeoutError, naming what did arrive, if it does not hold within `timeout`.
        """
        deadline = time.monotonic() + timeout
        while True:
            spans = self._read_spans()
            if until(spans):
                return spans
            if time.monotonic() > deadline:
                names = [span.name for span in spans]
                raise TimeoutError(
                    f"after {timeout:g}s the collector had {len(spans)} spans {names}, "
                    f"and the condition still did not hold; collector log:\n{self.log()}"
                )
            time.sleep(POLL_INTERVAL)

    def terminate(self) -> None:
        """SIGTERM the child (it flushes the file); SIGKILL it after the grace period.

        The temp dir stays, so `spans()` still reads everything it received.
        """
        if self._child is not None:
            self._child.terminate()

    def stop(self) -> None:
        """Terminate the child and remove its temp dir (config, spans file) and log."""
        if self._child is not None:
            self._child.close()
            self._child = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def log(self, limit: int = 4000) -> str:
        """The last `limit` characters the collector printed."""
        return "" if self._child is None else self._child.log(limit)

    def _read_spans(self) -> list[Span]:
        try:
            text = self.spans_file.read_text()
        except FileNotFoundError:
            return []
        # A flush can end mid-line; only whole lines are whole exports.
        complete, _, _partial = text.rpartition("\n")
        return parse(complete.splitlines())

    def _accepts_exports(self) -> bool:
        # An export with no spans: answered 200 once the receiver (and so the pipeline behind
        # it, which starts first) runs, and writes nothing to the file.
        request = urllib.request.Request(
            f"{self.endpoint}/v1/traces",
            data=b"{}",
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        # Straight to loopback, whatever *_proxy variables the environment has.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the pinned OpenTelemetry Collector.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="build the pinned collector (idempotent)")
    serve = commands.add_parser("serve", help="receive OTLP until Ctrl-C, then list the spans")
    serve.add_argument("--port", type=int, default=4318, help="the OTLP/HTTP port")
    args = parser.parse_args()
    if args.command == "build":
        print(binaries.ensure(settings.Settings.from_env(), [NAME])[NAME])
        return 0
    # Ctrl-C or a SIGTERM ends the wait (a shell's background job starts with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with Collector(port=args.port, grpc=True) as collector:
        print(f"OTEL_EXPORTER_OTLP_ENDPOINT={collector.endpoint}", file=sys.stderr, flush=True)
        print(f"OTLP/gRPC on {collector.grpc_endpoint}; Ctrl-C to stop", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
        collector.terminate()
        for span in collector.spans(timeout=0, until=lambda _: True):
            parent = span.parent_span_id or "-"
            print(f"{span.trace_id} {span.span_id} {parent:<16} {span.service_name} {span.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
