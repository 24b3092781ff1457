"""The console's test chat in a real browser (Debian's Chromium, headless, driven by
Playwright), against an Agent running as a real pod: the answer streams into the page (parts
of it show before the whole), with the tool the Agent ran, the model that answered and the
token usage; a second question continues the conversation; a user whom RBAC refuses the
service proxy reads the API server's reason in the page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from chatting_e2e import ANSWER, TOOL, limited_kubeconfig
from playwright.sync_api import Page
from pods_e2e import PodModel, Release

from e2e.console.console_e2e import ConsoleProcess
from fakes.openai_server import FakeOpenAI
from localcluster import handles

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
READ_AGENTS = {"apiGroups": ["corral.dev"], "resources": ["agents"], "verbs": ["get"]}
READ_SERVICES = {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}
# Records every text the answer showed, so a test can see it grow (no clock involved).
WATCH_ANSWER = """() => {
  window.shown = [];
  new MutationObserver(() => {
    const texts = document.querySelectorAll('.turn.assistant .text');
    if (texts.length) window.shown.push(texts[texts.length - 1].textContent);
  }).observe(document.getElementById('turns'),
             {subtree: true, childList: true, characterData: true});
}"""


def ask(page: Page, question: str, answers: int) -> None:
    page.fill("#message", question)
    page.click("#send")
    page.wait_for_selector(f".turn.assistant[data-done=true] >> nth={answers - 1}")


def test_the_test_chat_streams_an_answer_with_its_tool_calls_model_and_usage(
    release: Release,
    tooled: str,
    scripted_model: tuple[FakeOpenAI, PodModel],
    consoles: Callable[..., ConsoleProcess],
    page: Page,
) -> None:
    console = consoles()
    page.goto(f"{console.url}/agents/{release.watched}/{tooled}/chat")
    page.evaluate(WATCH_ANSWER)

    ask(page, "Status?", answers=1)

    answer = page.locator(".turn.assistant").first
    assert answer.locator(".text").inner_text() == ANSWER
    assert answer.locator(".tools li").all_inner_texts() == [f"tool {TOOL}({{}}) → ok"]
    footer = answer.locator(".footer").inner_text()
    assert footer.startswith("model scripted-model · ")
    assert footer.endswith(" tokens")
    shown: list[str] = page.evaluate("window.shown")
    partial = [text for text in shown if text and text != ANSWER]
    assert partial, f"the page never showed part of the answer: {shown}"
    assert all(ANSWER.startswith(text) for text in partial)

    ask(page, "And now?", answers=2)
    users = [
        m["content"] for m in scripted_model[0].requests[-1].body["messages"] if m["role"] == "user"
    ]
    assert users == ["Status?", "And now?"]  # the page kept the conversation


def test_a_user_refused_the_service_proxy_reads_the_reason_in_the_page(
    cluster: handles.Cluster,
    release: Release,
    tooled: str,
    consoles: Callable[..., ConsoleProcess],
    page: Page,
    tmp_path: Path,
) -> None:
    config = limited_kubeconfig(
        cluster, release.watched, "web-no-proxy", [READ_AGENTS, READ_SERVICES], tmp_path / "kc"
    )
    console = consoles(config)
    page.goto(f"{console.url}/agents/{release.watched}/{tooled}/chat")
    page.fill("#message", "Hi")
    page.click("#send")
    error = page.wait_for_selector(".turn.error").inner_text()
    assert 'cannot create resource "services/proxy"' in error
    assert "'create' on services/proxy" in error
