"""The registry in a real browser: live updates from a watch, the empty state, RBAC.

Each test starts `corral console` as a process and drives Debian's Chromium with Playwright.
"Without a reload" is proved by a marker set on `window` after the page loaded: a reload (or a
navigation) would drop it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from console_e2e import ConsoleProcess, reader_kubeconfig
from playwright.sync_api import Page, expect

from e2e.operator import operator_manifests as manifests
from e2e.operator.operator_e2e import OperatorProcess
from localcluster import handles

pytestmark = pytest.mark.cluster


def agent(name: str, persona: str | None = None) -> dict[str, object]:
    spec: dict[str, object] = {
        "model": {"provider": "openai", "name": "m", "baseURL": "http://127.0.0.1:9/v1"},
        "replicas": 1,
    }
    if persona:
        spec["personaRef"] = {"name": persona}
    return {"apiVersion": manifests.API, "kind": "Agent", "metadata": {"name": name}, "spec": spec}


def apply(cluster: handles.Cluster, namespace: str, *docs: dict[str, object]) -> None:
    import yaml

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def mark_loaded(page: Page) -> None:
    page.evaluate("window.__loadedOnce = 'yes'")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__loadedOnce") == "yes", "the page was reloaded"


def test_registry_shows_an_agent_turning_ready_without_a_reload(
    cluster: handles.Cluster,
    console_operator: OperatorProcess,
    console_namespace: str,
    console: ConsoleProcess,
    page: Page,
) -> None:
    page.goto(f"{console.url}/?namespace={console_namespace}")
    expect(page.locator("#live")).to_have_text("live")
    mark_loaded(page)

    apply(cluster, console_namespace, agent("watched"))

    row = page.locator(f"#row-agent-{console_namespace}-watched")
    expect(row).to_be_visible()
    expect(row.locator("td.ready")).to_have_text("Ready", timeout=120_000)
    expect(row.locator("td.reason")).to_have_text("Available")
    expect(row).to_have_attribute("data-ready", "True")
    assert_not_reloaded(page)


def test_registry_drops_a_deleted_object_and_filters_by_text_and_kind(
    cluster: handles.Cluster, console_namespace: str, console: ConsoleProcess, page: Page
) -> None:
    apply(cluster, console_namespace, manifests.persona("tone-a"), manifests.persona("tone-b"))
    page.goto(f"{console.url}/?kind=personas&namespace={console_namespace}&q=tone-a")
    expect(page.locator("#live")).to_have_text("live")
    mark_loaded(page)
    expect(page.locator(f"#row-persona-{console_namespace}-tone-a")).to_be_visible()
    expect(page.locator(f"#row-persona-{console_namespace}-tone-b")).to_have_count(0)

    cluster.kubectl("delete", "-n", console_namespace, "persona", "tone-a")

    expect(page.locator(f"#row-persona-{console_namespace}-tone-a")).to_have_count(0)
    expect(page.locator("#no-match")).to_be_visible()
    assert_not_reloaded(page)


def test_the_empty_state_says_what_to_apply_first_and_leaves_when_an_object_arrives(
    cluster: handles.Cluster,
    console_namespace: str,
    console_factory: Callable[..., ConsoleProcess],
    page: Page,
    tmp_path: Path,
) -> None:
    # Only a user who sees nothing but this fresh namespace has an empty registry to look at.
    kubeconfig = reader_kubeconfig(
        cluster, console_namespace, [console_namespace], "viewer", tmp_path / "viewer.kubeconfig"
    )
    console = console_factory(kubeconfig)
    page.goto(console.url)
    empty = page.locator("#empty")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("kubectl apply -n " + console_namespace)
    expect(empty).to_contain_text("examples/persona-support-tone.yaml")
    expect(page.locator("#registry")).to_be_hidden()
    expect(page.locator("#live")).to_have_text("live")
    mark_loaded(page)

    apply(cluster, console_namespace, manifests.persona("first"))

    expect(page.locator(f"#row-persona-{console_namespace}-first")).to_be_visible()
    expect(empty).to_be_hidden()
    assert_not_reloaded(page)


def test_a_user_who_may_read_one_namespace_sees_only_it_and_is_told_so(
    cluster: handles.Cluster,
    console_namespace: str,
    console_factory: Callable[..., ConsoleProcess],
    page: Page,
    tmp_path: Path,
) -> None:
    other = cluster.create_namespace(f"{console_namespace[:50]}-other")
    try:
        apply(cluster, console_namespace, manifests.persona("mine"))
        apply(cluster, other, manifests.persona("theirs"))
        kubeconfig = reader_kubeconfig(
            cluster, console_namespace, [console_namespace], "reader", tmp_path / "r.kubeconfig"
        )
        console = console_factory(kubeconfig)

        page.goto(console.url)

        expect(page.locator(f"#row-persona-{console_namespace}-mine")).to_be_visible()
        expect(page.locator(f"#row-persona-{other}-theirs")).to_have_count(0)
        notice = page.locator("#notice")
        expect(notice).to_contain_text("across all namespaces")
        expect(notice).to_contain_text(console_namespace)
        namespaces = page.locator("select[name=namespace] option").all_inner_texts()
        assert other not in namespaces
        # The per-namespace watch is live too.
        expect(page.locator("#live")).to_have_text("live")
        apply(cluster, console_namespace, manifests.persona("later"))
        expect(page.locator(f"#row-persona-{console_namespace}-later")).to_be_visible()
    finally:
        cluster.delete_namespace(other)


def test_namespaces_given_with_n_are_the_ones_shown_to_a_user_who_may_not_list_all(
    cluster: handles.Cluster,
    console_namespace: str,
    console_factory: Callable[..., ConsoleProcess],
    page: Page,
    tmp_path: Path,
) -> None:
    second = cluster.create_namespace(f"{console_namespace[:50]}-two")
    try:
        apply(cluster, console_namespace, manifests.persona("home"))
        apply(cluster, second, manifests.persona("away"))
        kubeconfig = reader_kubeconfig(
            cluster, console_namespace, [console_namespace, second], "two", tmp_path / "two.kc"
        )
        console = console_factory(kubeconfig, ("-n", second))

        page.goto(console.url)

        expect(page.locator(f"#row-persona-{second}-away")).to_be_visible()
        expect(page.locator(f"#row-persona-{console_namespace}-home")).to_have_count(0)
        expect(page.locator("#notice")).to_contain_text(second)
    finally:
        cluster.delete_namespace(second)
