"""Unit tests of the operator: asyncio only, and settings only from defaults and arguments."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_corral_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the developer's shell exports, CORRAL_* settings take their defaults here."""
    for name in list(os.environ):
        if name.startswith("CORRAL_") and name != "CORRAL_UPDATE_GOLDEN":
            monkeypatch.delenv(name)
