"""Metrics declared once with bounded labels, the provider observer, and JSON logs."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from corral.runtime import logging as jsonlog
from corral.runtime import metrics, redaction
from corral.runtime.providers import base, circuit


def samples(recorder: metrics.Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(recorder.render().decode())
        for s in family.samples
    }


def test_each_app_has_its_own_registry() -> None:
    first, second = metrics.Metrics(), metrics.Metrics()
    first.request("/v1/models", 200, 0.01)

    assert samples(first)[("corral_requests_total", (("route", "/v1/models"), ("status", "200")))]
    assert not any(name == "corral_requests_total" for name, _ in samples(second))


def test_labels_outside_the_config_collapse_to_bounded_values() -> None:
    recorder = metrics.Metrics(models=["gpt"], tools=["lookup"])
    recorder.request("/v1/whatever/user-123", 404, 0.01)
    recorder.tool_call("invented_by_model", "unknown_tool", 0.0)
    recorder.provider_call("openai", "gpt-4o-2024-08-06", "ok", 0.2)

    labels = {value for _, pairs in samples(recorder) for _, value in pairs}
    assert "other" in labels
    assert "unknown" in labels
    assert not {"/v1/whatever/user-123", "invented_by_model", "gpt-4o-2024-08-06"} & labels


def test_repeated_recordings_add_up_in_their_own_series() -> None:
    recorder = metrics.Metrics(models=["a", "b"])
    for _ in range(3):
        recorder.request("/v1/chat/completions", 200, 0.01)
        recorder.provider_call("openai", "a", "ok", 0.1)
        recorder.usage("openai", "a", 5, 2)
    recorder.request("/v1/chat/completions", 429, 0.01)
    recorder.request("/v1/elsewhere", 200, 0.01)
    recorder.provider_call("openai", "a", "timeout", 1.0)
    recorder.provider_call("openai", "b", "ok", 0.1)
    recorder.usage("openai", "b", 1, 1)

    found = samples(recorder)
    route = ("route", "/v1/chat/completions")
    assert found[("corral_requests_total", (route, ("status", "200")))] == 3
    assert found[("corral_requests_total", (route, ("status", "429")))] == 1
    assert found[("corral_requests_total", (("route", "other"), ("status", "200")))] == 1
    assert found[("corral_request_duration_seconds_count", (route,))] == 4
    calls = "corral_provider_calls_total"
    assert found[(calls, (("model", "a"), ("outcome", "ok"), ("provider", "openai")))] == 3
    assert found[(calls, (("model", "a"), ("outcome", "timeout"), ("provider", "openai")))] == 1
    assert found[(calls, (("model", "b"), ("outcome", "ok"), ("provider", "openai")))] == 1
    errors = [key for key in found if key[0] == "corral_provider_errors_total"]
    assert errors == [
        (
            "corral_provider_errors_total",
            (("error_type", "timeout"), ("model", "a"), ("provider", "openai")),
        )
    ]
    assert found[("corral_tokens_total", (("direction", "prompt"),))] == 16
    assert found[("corral_tokens_total", (("direction", "completion"),))] == 7


def test_the_observer_records_attempts_failovers_and_circuit_states() -> None:
    recorder = metrics.Metrics(models=["a", "b"])
    observer = metrics.ProviderObserver(recorder)

    observer.on_attempt("openai", "a", "timeout", 1.5)
    observer.on_failover("a", "b", "timeout")
    observer.on_circuit("openai", "a", circuit.State.OPEN)
    observer.on_attempt("gemini", "b", "ok", 0.3)
    metrics.usage_recorder(recorder, ("openai", "a"))(base.Usage(7, 3))

    found = samples(recorder)
    assert (
        found[
            (
                "corral_provider_errors_total",
                (("error_type", "timeout"), ("model", "a"), ("provider", "openai")),
            )
        ]
        == 1
    )
    assert found[("corral_provider_failovers_total", (("from_model", "a"), ("to_model", "b")))] == 1
    assert found[("corral_circuit_state", (("model", "a"), ("provider", "openai")))] == 2
    assert (
        found[
            (
                "gen_ai_client_token_usage_sum",
                (
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_provider_name", "gemini"),
                    ("gen_ai_request_model", "b"),
                    ("gen_ai_token_type", "input"),
                ),
            )
        ]
        == 7
    )
    assert (
        found[
            (
                "gen_ai_client_operation_duration_seconds_count",
                (
                    ("error_type", "timeout"),
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_provider_name", "openai"),
                    ("gen_ai_request_model", "a"),
                ),
            )
        ]
        == 1
    )
    assert found[("corral_tokens_total", (("direction", "completion"),))] == 3  # fmt: skip


def test_log_lines_are_json_with_the_request_id_and_extra_fields() -> None:
    record = logging.LogRecord("corral.test", logging.INFO, "f.py", 1, "served %s", ("ok",), None)
    record.status = 200
    token = jsonlog.request_id.set("req-1")
    try:
        line = json.loads(jsonlog.JsonFormatter().format(record))
    finally:
        jsonlog.request_id.reset(token)

    assert line["msg"] == "served ok"
    assert (line["level"], line["logger"], line["request_id"], line["status"]) == (
        "info", "corral.test", "req-1", 200
    )  # fmt: skip


def test_the_http_libraries_do_not_log_each_upstream_url_at_info() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        jsonlog.configure("INFO")
        for name in ("httpx2", "httpx", "aiohttp", "openai"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger("corral.runtime").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_log_line_never_carries_a_configured_secret() -> None:
    record = logging.LogRecord(
        "corral.test", logging.WARNING, "f.py", 1, "upstream said: %s", ("bad key s3cr3t-v4lue",),
        None,
    )  # fmt: skip
    formatter = jsonlog.JsonFormatter()
    try:
        jsonlog.redact_with(redaction.Redactor(["s3cr3t-v4lue"]))
        line = json.loads(formatter.format(record))
    finally:
        jsonlog.redact_with(lambda text: text)

    assert line["msg"] == "upstream said: bad key [redacted]"
