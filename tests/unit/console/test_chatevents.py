"""The chat's pure parts: chunks to events, the Agent and Service to a target, and the
messages that failures of the API server's proxy and of the runtime become."""

from __future__ import annotations

from typing import Any

import pytest

from corral.console import chatevents
from corral.console.chatevents import Answered, Content, ToolCall, ToolCalls, Usage


def agent(ready: str | None = "True", **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"endpoint": "http://support-svc.shop.svc:8080/v1"}
    if ready is not None:
        status["conditions"] = [
            {"type": "Ready", "status": ready, "reason": "RollingOut", "message": "0/1 available"}
        ]
    return {"metadata": {"name": "support", "namespace": "shop"}, "spec": spec, "status": status}


def service(*ports: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "support-svc"}, "spec": {"ports": list(ports)}}


TARGET = chatevents.target_of(agent(), service({"name": "http", "port": 8080}))


def test_a_content_chunk_is_text() -> None:
    chunk = {"model": "support", "choices": [{"index": 0, "delta": {"content": "Hel"}}]}
    assert chatevents.events_of(chunk) == [Content("Hel")]


def test_the_role_chunk_and_the_finish_chunk_carry_no_event() -> None:
    assert (
        chatevents.events_of({"choices": [{"delta": {"role": "assistant", "content": ""}}]}) == []
    )
    assert chatevents.events_of({"choices": [{"delta": {}, "finish_reason": "stop"}]}) == []


def test_the_runtimes_activity_chunks_are_tool_calls_and_the_answering_model() -> None:
    calls = {
        "model": "support",
        "choices": [],
        "corral": {
            "tool_calls": [
                {"id": "c1", "name": "order-lookup", "arguments": '{"id":"7"}', "outcome": "ok"},
                {"id": "c2", "name": "refund", "arguments": "{}", "outcome": "timeout"},
            ]
        },
    }
    model = {"model": "support", "choices": [], "corral": {"model": "gemini-2.5-flash"}}
    assert chatevents.events_of(calls) == [
        ToolCalls(
            (ToolCall("order-lookup", '{"id":"7"}', "ok"), ToolCall("refund", "{}", "timeout"))
        )
    ]
    assert chatevents.events_of(model) == [Answered("gemini-2.5-flash", "support")]


def test_the_usage_chunk_is_usage() -> None:
    chunk = {
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }
    assert chatevents.events_of(chunk) == [Usage(12, 5, 17)]


def test_events_become_json_with_their_type() -> None:
    assert chatevents.event_dict(Content("hi")) == {"type": "content", "text": "hi"}
    assert chatevents.event_dict(ToolCalls((ToolCall("t", "{}", "ok"),))) == {
        "type": "tool_calls",
        "calls": [{"name": "t", "arguments": "{}", "outcome": "ok"}],
    }


def test_the_target_is_the_services_http_port_through_the_api_servers_proxy() -> None:
    target = chatevents.target_of(
        agent(memory={"enabled": True}),
        service({"name": "metrics", "port": 9090}, {"name": "http", "port": 8080}),
    )
    assert target.proxy_path() == "/api/v1/namespaces/shop/services/support-svc:http/proxy/v1"
    assert (target.ready, target.memory) == (True, True)


def test_an_unnamed_port_is_used_by_its_number() -> None:
    target = chatevents.target_of(agent(), service({"port": 8081}))
    assert target.port == "8081"


def test_the_service_name_comes_from_the_endpoint_or_the_agent() -> None:
    assert chatevents.service_name(agent()) == "support-svc"
    assert chatevents.service_name({"metadata": {"name": "support"}, "status": {}}) == "support"


def test_an_agent_not_ready_says_why() -> None:
    target = chatevents.target_of(agent(ready="False"), service({"name": "http", "port": 8080}))
    assert not target.ready
    assert target.reason == "RollingOut: 0/1 available"
    fresh = chatevents.target_of(agent(ready=None), service({"name": "http", "port": 8080}))
    assert not fresh.ready
    assert "not reported Ready" in fresh.reason


def test_rbac_refusal_by_the_proxy_names_the_permission_to_ask_for() -> None:
    status = {
        "kind": "Status",
        "message": 'services "support-svc:http" is forbidden: User "alice" cannot create'
        ' resource "services/proxy"',
        "reason": "Forbidden",
        "code": 403,
    }
    error = chatevents.http_error(403, status, TARGET)
    assert error.kind == "forbidden"
    assert 'User "alice" cannot create resource "services/proxy"' in error.message
    assert "'create' on services/proxy in namespace shop" in error.message


def test_no_endpoints_says_no_pod_is_ready() -> None:
    status = {"kind": "Status", "message": 'no endpoints available for service "support-svc"'}
    error = chatevents.http_error(503, status, TARGET)
    assert error.kind == "unavailable"
    assert "no pod ready to answer" in error.message
    assert "no endpoints available" in error.message


@pytest.mark.parametrize(
    ("status", "envelope", "expected"),
    [
        (429, {"message": "tokens per minute exceeded", "code": "rate_limited"}, "(rate_limited)"),
        (401, {"message": "invalid API key", "code": "invalid_api_key"}, "kubectl port-forward"),
    ],
)
def test_the_runtimes_openai_errors_keep_their_message(
    status: int, envelope: dict[str, Any], expected: str
) -> None:
    error = chatevents.http_error(status, {"error": envelope}, TARGET)
    assert error.kind == "rejected"
    assert envelope["message"] in error.message
    assert expected in error.message
    assert "shop/support" in error.message


def test_an_error_event_mid_stream_keeps_the_runtimes_message() -> None:
    for body in ({"message": "took too long"}, {"error": {"message": "took too long"}}):
        error = chatevents.stream_error(body, TARGET)
        assert error.message == "agent shop/support stopped answering: took too long"
