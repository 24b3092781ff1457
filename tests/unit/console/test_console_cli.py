"""`corral console` hands only the flags given to the settings, so CORRAL_CONSOLE_* apply."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import cli
from corral.console import main as console_main
from corral.console import settings


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[settings.Settings]:
    seen: list[settings.Settings] = []

    def run(given: settings.Settings) -> int:
        seen.append(given)
        return 0

    monkeypatch.setattr(console_main, "run", run)
    return seen


def test_flags_become_settings(started: list[settings.Settings]) -> None:
    argv = ["console", "--port", "9000", "--kubeconfig", "/k", "--context", "dev"]
    assert cli.main([*argv, "-n", "a", "-n", "b", "--read-only"]) == 0
    assert started[0].port == 9000
    assert started[0].kubeconfig == Path("/k")
    assert started[0].context == "dev"
    assert started[0].namespaces == ("a", "b")
    assert started[0].read_only is True
    assert started[0].host == "127.0.0.1"


def test_the_environment_fills_what_the_flags_do_not_say(
    started: list[settings.Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORRAL_CONSOLE_HOST", "0.0.0.0")
    monkeypatch.setenv("CORRAL_CONSOLE_READ_ONLY", "true")
    cli.main(["console"])
    assert (started[0].host, started[0].port, started[0].read_only) == ("0.0.0.0", 8090, True)
