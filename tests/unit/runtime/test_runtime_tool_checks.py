"""Tool calls checked before any I/O: URL templating, the origin rule, argument validation."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from corral.api.runtimeconfig import HttpCall, RuntimeTool
from corral.runtime import callchain, httptools, tools
from corral.runtime.providers import base

SCHEMA = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
    "required": ["id"],
}


def target(url: str, **http: Any) -> httptools.HttpTarget:
    return httptools.HttpTarget("t", HttpCall(url=url, **http), {})


def runner(*specs: RuntimeTool, record: list[tuple[str, str]] | None = None) -> tools.ToolRunner:
    seen = record if record is not None else []
    toolset = httptools.ToolSet(list(specs), {})
    # No request in these tests reaches the network: validation refuses them first.
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(599)))
    return tools.ToolRunner(toolset, client, lambda name, outcome, s: seen.append((name, outcome)))


def spec(**fields: Any) -> RuntimeTool:
    return RuntimeTool.model_validate(
        {"name": "lookup", "description": "d", "parameters": SCHEMA,
         "http": {"url": "http://orders.local:8080/orders/{id}"}, **fields}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("A7", "/orders/A7"),
        ("a/b", "/orders/a%2Fb"),
        ("x?admin=1#f", "/orders/x%3Fadmin%3D1%23f"),
        ("@evil.com", "/orders/%40evil.com"),
        (42, "/orders/42"),
        (True, "/orders/true"),
    ],
)
def test_url_placeholders_are_percent_encoded_so_values_stay_one_segment(
    value: object, path: str
) -> None:
    url = target("http://orders.local:8080/orders/{id}").url_for({"id": value})

    assert url.raw_path.decode() == path
    assert (url.host, url.port) == ("orders.local", 8080)


@pytest.mark.parametrize("value", ["..", ".", ""])
def test_dot_segments_and_empty_values_are_refused(value: str) -> None:
    with pytest.raises(tools.ToolFailed) as caught:
        target("http://h/orders/{id}/items").url_for({"id": value})

    assert caught.value.outcome == "invalid_arguments"


def test_a_missing_url_argument_is_refused() -> None:
    with pytest.raises(tools.ToolFailed, match="missing argument 'id'"):
        target("http://h/orders/{id}").url_for({})


def test_a_placeholder_in_the_host_is_a_config_error() -> None:
    with pytest.raises(tools.ToolConfigError, match="host"):
        target("http://{tenant}.orders.local/x")


def test_a_header_secret_missing_from_the_environment_is_a_config_error() -> None:
    with pytest.raises(tools.ToolConfigError, match=r"\$TOKEN"):
        httptools.HttpTarget(
            "t", HttpCall(url="http://h/", header_envs={"authorization": "TOKEN"}), {}
        )


def test_the_toolset_offers_openai_function_definitions() -> None:
    (definition,) = httptools.ToolSet([spec()], {}).definitions

    assert definition == {
        "type": "function",
        "function": {"name": "lookup", "description": "d", "parameters": SCHEMA},
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "arguments", "outcome", "says"),
    [
        ("lookup", "{not json", "invalid_arguments", "not valid JSON"),
        ("lookup", "[1]", "invalid_arguments", "must be a JSON object"),
        ("lookup", '{"n": 2}', "invalid_arguments", "'id' is a required property"),
        ("lookup", '{"id": "7", "n": 0}', "invalid_arguments", "at n"),
        ("delete_everything", "{}", "unknown_tool", "tools: lookup"),
    ],
)
async def test_bad_calls_become_error_results_for_the_model(
    name: str, arguments: str, outcome: str, says: str
) -> None:
    seen: list[tuple[str, str]] = []

    (result,) = await runner(spec(), record=seen).run(
        [base.ToolCall("c1", name, arguments)], callchain.parse(None, "shop/support", 3)
    )

    assert result.outcome == outcome
    assert result.content.startswith("error: ")
    assert says in result.content
    assert result.message() == {"role": "tool", "tool_call_id": "c1", "content": result.content}
    assert seen == [(name, outcome)]
