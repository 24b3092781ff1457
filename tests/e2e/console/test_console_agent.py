"""The Agent page in a real browser: conditions with messages, Events, the rollout, and the
Persona it uses with the Persona's own status; a missing Tool is shown as missing."""

from __future__ import annotations

import pytest
import yaml
from console_e2e import ConsoleProcess
from playwright.sync_api import Page, expect
from test_console_registry import agent

from e2e.operator import operator_manifests as manifests
from e2e.operator.operator_e2e import Cluster, OperatorProcess, wait_for, wait_ready
from localcluster import handles

pytestmark = pytest.mark.cluster


def test_the_agent_page_shows_conditions_events_rollout_and_the_personas_status(
    cluster: handles.Cluster,
    console_operator: OperatorProcess,
    console_namespace: str,
    console: ConsoleProcess,
    page: Page,
) -> None:
    docs = [manifests.persona("tone"), agent("helper", persona="tone")]
    cluster.kubectl("apply", "-n", console_namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    wait_ready(Cluster(cluster), console_operator, console_namespace, "helper")
    # A new Agent's first rollout posts no Event of the Agent's own (its status tells it); a
    # child deleted by hand and created again does.
    cluster.kubectl("delete", "service", "helper", "-n", console_namespace)
    wait_for(
        "an Event of Agent helper",
        lambda: "Agent" in cluster.kubectl(
            "get", "events", "-n", console_namespace,
            "--field-selector", "involvedObject.name=helper",
            "-o", "jsonpath={.items[*].involvedObject.kind}",
        ).stdout,
        90,
        console_operator.log_tail,
    )  # fmt: skip

    page.goto(f"{console.url}/agents/{console_namespace}/helper")

    ready = page.locator("#conditions tr", has_text="Ready")
    expect(ready).to_contain_text("True")
    expect(ready).to_contain_text("Available")
    events = page.locator("#events tbody")
    expect(events).to_contain_text("Agent/helper")
    persona = page.locator('#references tr[data-kind="Persona"][data-name="tone"]')
    expect(persona).to_contain_text("Ready")
    expect(page.locator("#rollout")).to_contain_text("Available")
    expect(page.locator("#pods tbody tr")).to_have_count(1)
    expect(page.locator("#spec")).to_contain_text("personaRef")
    expect(page.locator("#chat-link")).to_have_attribute(
        "href", f"/agents/{console_namespace}/helper/chat"
    )
    # kwok's pods serve nothing: the snapshot says which pod could not be read, the page stays.
    expect(page.locator("#metrics")).not_to_contain_text("Reading the pods")


def test_the_agent_page_names_a_missing_tool_and_the_reason_the_agent_is_not_ready(
    cluster: handles.Cluster,
    console_operator: OperatorProcess,
    console_namespace: str,
    console: ConsoleProcess,
    page: Page,
) -> None:
    broken = agent("lonely")
    broken["spec"]["tools"] = [{"name": "absent-tool"}]
    cluster.kubectl("apply", "-n", console_namespace, "-f", "-", input=yaml.safe_dump(broken))

    kube = Cluster(cluster)
    wait_for(
        "the operator to say the Tool is missing",
        lambda: "absent-tool" in str((kube.agent(console_namespace, "lonely") or {}).get("status")),
        90,
        console_operator.log_tail,
    )

    page.goto(f"{console.url}/agents/{console_namespace}/lonely")

    tool = page.locator('#references tr[data-kind="Tool"][data-name="absent-tool"]')
    expect(tool).to_contain_text("Missing")
    expect(tool).to_contain_text("does not exist")
    ready = page.locator("#conditions tr", has_text="Ready")
    expect(ready).to_contain_text("False")
    expect(ready).to_contain_text("absent-tool")
    expect(page.locator("h1 .pill")).to_have_text("Not ready")
