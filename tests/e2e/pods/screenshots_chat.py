"""The test chat's screenshot in docs/ (docs/console-chat.png), taken with the chat tests'
fixtures: an Agent on the real node whose scripted model calls a Tool, `corral console` on this
host, Debian's Chromium.

Not collected by `make test` (the name does not start with test_); `make screenshots` runs it
explicitly, next to the console's own (tests/e2e/console/screenshots_console.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from chatting_e2e import ANSWER
from playwright.sync_api import Page
from pods_e2e import Release

from e2e.console.console_e2e import ConsoleProcess

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
DOCS = Path(os.environ.get("CORRAL_SCREENSHOTS_DIR") or Path(__file__).parents[3] / "docs")


def test_screenshot_the_test_chat(
    release: Release, tooled: str, consoles: Callable[..., ConsoleProcess], page: Page
) -> None:
    console = consoles()
    page.goto(f"{console.url}/agents/{release.watched}/{tooled}/chat")
    page.fill("#message", "Is the model server up? Which models does it list?")
    page.click("#send")
    page.wait_for_selector(".turn.assistant[data-done=true]")
    assert page.locator(".turn.assistant .text").inner_text() == ANSWER
    page.fill("#message", "Thanks! Anything else I should know?")
    DOCS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS / "console-chat.png"), full_page=True)
