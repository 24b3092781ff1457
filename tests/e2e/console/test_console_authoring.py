"""The forms in a real browser: an invalid edit is refused next to its field and changes
nothing; a new Tool is reviewed (diff), applied as `corral-console`, and shows in the registry;
an Agent made in the form is served by the operator.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from console_e2e import ConsoleProcess
from playwright.sync_api import Locator, Page, expect

from e2e.operator import operator_manifests as manifests
from e2e.operator.operator_e2e import Cluster, OperatorProcess, wait_ready
from localcluster import handles

pytestmark = pytest.mark.cluster


def live(cluster: handles.Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl(
        "get", "-n", namespace, kind, name, "-o", "json", "--show-managed-fields"
    ).stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def field(page: Page, path: str) -> Locator:
    return page.locator(f'.field[data-field="{path}"]')


def test_an_invalid_persona_edit_shows_the_api_servers_message_at_the_field_and_changes_nothing(
    cluster: handles.Cluster, console_namespace: str, console: ConsoleProcess, page: Page
) -> None:
    cluster.kubectl(
        "apply", "-n", console_namespace, "-f", "-", input=yaml.safe_dump(manifests.persona("tone"))
    )
    before = live(cluster, console_namespace, "persona", "tone")

    page.goto(f"{console.url}/author/personas/{console_namespace}/tone")
    prompt = field(page, "spec.systemPrompt")
    expect(prompt.locator("textarea")).to_have_value("You are a concise support engineer.")
    prompt.locator("textarea").fill("")
    field(page, "spec.description").locator("input").fill("edited, but never applied")
    page.click("#review")

    error = prompt.locator(".field-error")
    expect(error).to_contain_text("spec.systemPrompt")
    expect(error).to_contain_text("should be at least 1 chars long")
    expect(prompt).to_have_class("field invalid")
    expect(page.locator("#general-errors")).to_contain_text("nothing was changed")
    # What the user typed is still there to fix.
    expect(field(page, "spec.description").locator("input")).to_have_value(
        "edited, but never applied"
    )
    after = live(cluster, console_namespace, "persona", "tone")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["spec"] == before["spec"]


def test_a_tool_error_from_a_cel_rule_is_shown_at_the_field_it_names(
    console_namespace: str, console: ConsoleProcess, page: Page
) -> None:
    page.goto(f"{console.url}/author/tools/new?namespace={console_namespace}")
    field(page, "metadata.name").locator("input").fill("lookup")
    field(page, "spec.description").locator("textarea").fill("Look up an order")
    field(page, "spec.http.url").locator("input").fill("http://orders.shop.svc/orders/{missing}")
    page.click("#review")

    expect(field(page, "spec.http.url").locator(".field-error")).to_contain_text(
        "every {placeholder} in spec.http.url must name a property"
    )


def test_creating_a_tool_reviews_the_diff_applies_it_and_it_appears_in_the_registry(
    cluster: handles.Cluster, console_namespace: str, console: ConsoleProcess, page: Page
) -> None:
    page.goto(f"{console.url}/author/tools/new?namespace={console_namespace}")
    field(page, "metadata.name").locator("input").fill("order-lookup")
    field(page, "spec.description").locator("textarea").fill("Look up an order by id")
    field(page, "spec.parameters").locator("textarea").fill(
        "type: object\nproperties:\n  order_id: {type: string}\nrequired: [order_id]\n"
    )
    field(page, "spec.http.url").locator("input").fill("http://orders.shop.svc/orders/{order_id}")
    field(page, "spec.http.method").locator("select").select_option("GET")
    page.click("#review")

    diff = page.locator("#diff")
    expect(diff).to_contain_text("+++ applied/order-lookup")
    expect(diff).to_contain_text("url: http://orders.shop.svc/orders/{order_id}")
    # The dry-run stored nothing.
    missing = cluster.kubectl("get", "-n", console_namespace, "tool", "order-lookup", check=False)
    assert missing.returncode != 0, missing.stdout

    page.click("#apply")

    expect(page.locator("#applied")).to_contain_text(f"Tool {console_namespace}/order-lookup")
    expect(page.locator(f"#row-tool-{console_namespace}-order-lookup")).to_be_visible()
    tool = live(cluster, console_namespace, "tool", "order-lookup")
    # Whoever else writes (an operator's status patches) writes the status subresource only.
    spec_managers = {
        (m["manager"], m["operation"])
        for m in tool["metadata"]["managedFields"]
        if m.get("subresource") != "status"
    }
    assert spec_managers == {("corral-console", "Apply")}
    assert tool["spec"]["http"]["method"] == "GET"


def test_editing_keeps_fields_the_form_does_not_show_and_the_review_shows_only_the_change(
    cluster: handles.Cluster, console_namespace: str, console: ConsoleProcess, page: Page
) -> None:
    cluster.kubectl(
        "apply", "-n", console_namespace, "-f", "-", input=yaml.safe_dump(manifests.http_tool())
    )
    page.goto(f"{console.url}/author/tools/{console_namespace}/order-lookup")
    other = field(page, "spec.*").locator("textarea")
    expect(other).to_contain_text("headersFrom")
    field(page, "spec.http.timeoutSeconds").locator("input").fill("20")
    page.click("#review")

    diff = page.locator("#diff")
    expect(diff.locator(".del")).to_contain_text(["timeoutSeconds: 10"])
    expect(diff.locator(".add")).to_contain_text(["timeoutSeconds: 20"])
    page.click("#apply")
    expect(page.locator("#applied")).to_be_visible()

    tool = live(cluster, console_namespace, "tool", "order-lookup")
    assert tool["spec"]["http"]["timeoutSeconds"] == 20
    assert tool["spec"]["http"]["headersFrom"][0]["name"] == "Authorization"


def test_an_agent_created_in_the_form_opens_its_page_and_the_operator_serves_it(
    cluster: handles.Cluster,
    console_operator: OperatorProcess,
    console_namespace: str,
    console: ConsoleProcess,
    page: Page,
) -> None:
    cluster.kubectl(
        "apply", "-n", console_namespace, "-f", "-", input=yaml.safe_dump(manifests.persona("tone"))
    )
    page.goto(f"{console.url}/author/agents/new?namespace={console_namespace}")
    field(page, "metadata.name").locator("input").fill("formed")
    field(page, "spec.personaRef.name").locator("input").fill("tone")
    field(page, "spec.model.provider").locator("select").select_option("openai")
    field(page, "spec.model.name").locator("input").fill("gpt-4o-mini")
    field(page, "spec.model.baseURL").locator("input").fill("http://127.0.0.1:9/v1")
    field(page, "spec.model.temperature").locator("input").fill("0.3")
    field(page, "spec.replicas").locator("input").fill("1")
    field(page, "spec.*").locator("textarea").fill("memory: {enabled: true, maxMessages: 20}\n")
    page.click("#review")
    expect(page.locator("#diff")).to_contain_text("maxMessages: 20")
    page.click("#apply")

    expect(page).to_have_url(f"{console.url}/agents/{console_namespace}/formed")
    formed = live(cluster, console_namespace, "agent", "formed")
    assert formed["spec"]["model"]["temperature"] == 0.3
    assert formed["spec"]["memory"]["enabled"] is True
    assert formed["spec"]["memory"]["maxMessages"] == 20
    wait_ready(Cluster(cluster), console_operator, console_namespace, "formed")
    page.reload()
    expect(page.locator("#conditions tr", has_text="Ready")).to_contain_text("Available")


def test_an_out_of_range_temperature_is_refused_at_its_field(
    console_namespace: str, console: ConsoleProcess, page: Page
) -> None:
    page.goto(f"{console.url}/author/agents/new?namespace={console_namespace}")
    field(page, "metadata.name").locator("input").fill("hot")
    field(page, "spec.model.name").locator("input").fill("gpt-4o-mini")
    field(page, "spec.model.temperature").locator("input").fill("5")
    page.click("#review")

    expect(field(page, "spec.model.temperature").locator(".field-error")).to_contain_text(
        "spec.model.temperature"
    )
    expect(field(page, "spec.model.name").locator(".field-error")).to_have_count(0)
