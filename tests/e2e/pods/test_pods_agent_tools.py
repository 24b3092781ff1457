"""An `agent` Tool in real pods: the caller's runtime reaches the callee Agent by its Service's
cluster DNS name (`http://callee.<namespace>.svc:8080/v1`, resolved by CoreDNS, routed by
kube-proxy), and the callee's answer comes back into the caller's reply. A scripted model
decides the calls, so the path, not a tiny model's whims, is what is tested."""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI
from pods_e2e import API, PodModel, Release, agent, apply, get, service_url, wait_ready

from fakes import scripts
from fakes.openai_server import FakeOpenAI
from fakes.serving import RecordedRequest
from localcluster import handles

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
QUESTION = "What is the answer?"


def scripted(request: RecordedRequest) -> scripts.Reply:
    body: dict[str, Any] = request.body
    if body["model"] == "callee-model":
        return scripts.text("The answer is 42.")
    tool_results = [m["content"] for m in body["messages"] if m["role"] == "tool"]
    if tool_results:
        return scripts.text(f"callee said: {tool_results[-1]}")
    return scripts.tool_calls(scripts.call("ask-callee", {"question": QUESTION}))


def test_an_agent_tool_calls_another_agent_through_cluster_dns(
    cluster: handles.Cluster, release: Release, fake_model: tuple[FakeOpenAI, PodModel]
) -> None:
    fake, model = fake_model
    fake.default = scripted
    namespace = release.watched
    tool = {
        "apiVersion": API,
        "kind": "Tool",
        "metadata": {"name": "ask-callee"},
        "spec": {
            "description": "Ask the callee Agent a question.",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
            },
            "agent": {"name": "callee"},
        },
    }
    apply(
        cluster,
        namespace,
        agent("callee", model.base_url, model="callee-model"),
        tool,
        agent("caller", model.base_url, model="caller-model", tools=[{"name": "ask-callee"}]),
    )
    wait_ready(cluster, namespace, "callee")
    wait_ready(cluster, namespace, "caller")
    endpoint = get(cluster, namespace, "agent", "callee")["status"]["endpoint"]
    assert endpoint == f"http://callee.{namespace}.svc:8080/v1"

    client = OpenAI(base_url=service_url(cluster, namespace, "caller"), api_key="unused")
    answer = client.chat.completions.create(
        model="caller", messages=[{"role": "user", "content": "Ask the callee."}]
    )

    assert answer.choices[0].message.content == "callee said: The answer is 42.", fake.requests
    (to_callee,) = [r for r in fake.requests if r.body["model"] == "callee-model"]
    assert to_callee.body["messages"][-1] == {"role": "user", "content": QUESTION}
