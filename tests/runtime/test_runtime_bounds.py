"""Bounds that hold across a request: each model's maxTokens, and agents calling agents.

Two and three real runtimes on loopback, each over its own scripted model: a cycle A -> B -> A
and a chain deeper than `maxCallDepth` become tool errors the model reads, and a runtime
refuses a call chain that already names it or is too deep, whoever sent it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from runtime_harness import AGENT, Running, agent_config

from corral.api.runtimeconfig import RuntimeConfig
from fakes import scripts
from fakes.openai_server import FakeOpenAI

USER = [{"role": "user", "content": "Refund order 7?"}]
NOWHERE = "http://127.0.0.1:9/v1"  # refused before any connection is tried


def agent_tool(name: str, base_url: str, model: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"Ask the {model} agent",
        "parameters": {"type": "object", "properties": {"question": {"type": "string"}}},
        "agent": {"baseURL": base_url, "model": model},
    }


def tool_result(model: FakeOpenAI, request: int = 1) -> str:
    (message,) = [m for m in model.requests[request].body["messages"] if m["role"] == "tool"]
    content: str = message["content"]
    return content


def test_a_cycle_between_agents_is_a_tool_error_for_the_agent_that_would_close_it(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    with FakeOpenAI() as billing_model:
        billing = serve(
            agent_config(
                billing_model.base_url,
                agent="billing",
                tools=[agent_tool("ask_support", NOWHERE, AGENT)],
            )
        )
        front = serve(
            agent_config(
                upstream.base_url, tools=[agent_tool("ask_billing", billing.base_url, "billing")]
            )
        )
        upstream.enqueue(
            scripts.tool_calls(scripts.call("ask_billing", {"question": "refund?"})),
            scripts.text("Billing could not decide."),
        )
        billing_model.enqueue(
            scripts.tool_calls(scripts.call("ask_support", {"question": "may I?"})),
            scripts.text("I cannot ask support back."),
        )

        answer = front.client().chat.completions.create(model=AGENT, messages=USER)

        assert answer.choices[0].message.content == "Billing could not decide."
        assert tool_result(billing_model) == (
            "error: calling default/support would make a cycle:"
            " default/support -> default/billing -> default/support"
        )
    assert tool_result(upstream) == "I cannot ask support back."


def test_a_chain_deeper_than_max_call_depth_is_a_tool_error(
    serve: Callable[..., Running], upstream: FakeOpenAI
) -> None:
    with FakeOpenAI() as billing_model:
        billing = serve(
            agent_config(
                billing_model.base_url,
                agent="billing",
                maxCallDepth=2,
                tools=[agent_tool("ask_ledger", NOWHERE, "ledger")],
            )
        )
        front = serve(
            agent_config(
                upstream.base_url, tools=[agent_tool("ask_billing", billing.base_url, "billing")]
            )
        )
        upstream.enqueue(
            scripts.tool_calls(scripts.call("ask_billing", {"question": "refund?"})),
            scripts.text("done"),
        )
        billing_model.enqueue(
            scripts.tool_calls(scripts.call("ask_ledger", {"question": "balance?"})),
            scripts.text("The ledger is out of reach."),
        )

        front.client().chat.completions.create(model=AGENT, messages=USER)

        assert tool_result(billing_model) == (
            "error: calling default/ledger would make the chain default/support ->"
            " default/billing -> default/ledger deeper than maxCallDepth 2"
        )


@pytest.mark.parametrize(
    ("chain", "code"),
    [
        ("default/other,default/support", "call_cycle"),
        ("default/a,default/b,default/c", "call_depth_exceeded"),
    ],
)
def test_a_runtime_refuses_a_chain_that_loops_back_or_is_too_deep(
    agent: Running, upstream: FakeOpenAI, chain: str, code: str
) -> None:
    answer = agent.post(
        "/v1/chat/completions",
        json={"model": AGENT, "messages": USER},
        headers={"x-corral-call-chain": chain},
    )

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == code
    assert upstream.requests == []


def bounded_config(primary: str, fallback: str) -> RuntimeConfig:
    return RuntimeConfig.model_validate(
        {
            "agent": AGENT,
            "namespace": "default",
            "models": [
                {"provider": "openai", "name": "small", "baseURL": primary, "maxTokens": 50},
                {"provider": "openai", "name": "big", "baseURL": fallback},
            ],
        }
    )


@pytest.mark.parametrize(
    ("requested", "primary", "fallback"), [(500, 50, 500), (20, 20, 20), (None, 50, None)]
)
def test_each_model_gets_the_request_s_max_tokens_capped_by_its_own_bound(
    serve: Callable[..., Running],
    upstream: FakeOpenAI,
    requested: int | None,
    primary: int | None,
    fallback: int | None,
) -> None:
    with FakeOpenAI(scripts.text("from the fallback")) as big:
        agent = serve(bounded_config(upstream.base_url, big.base_url))
        upstream.enqueue(scripts.error(500), scripts.error(500), scripts.error(500))
        extra = {} if requested is None else {"max_tokens": requested}

        agent.client().chat.completions.create(model=AGENT, messages=USER, **extra)

        assert {r.body.get("max_tokens") for r in upstream.requests} == {primary}
        assert big.requests[0].body.get("max_tokens") == fallback
