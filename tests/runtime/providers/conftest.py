"""Fake upstreams for the provider tests: started once per module, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from fakes import scripts
from fakes.gemini_server import FakeGemini
from fakes.openai_server import FakeOpenAI

OPENAI_KEY = "sk-fake-openai"
GEMINI_KEY = "fake-gemini-key"
F = TypeVar("F", FakeOpenAI, FakeGemini)


@pytest.fixture(scope="module")
def _openai_servers() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI(api_key=OPENAI_KEY) as primary, FakeOpenAI() as fallback:
        yield primary, fallback


@pytest.fixture(scope="module")
def _gemini_server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


def _fresh(fake: F, text: str) -> F:
    fake.reset()
    fake.default = scripts.text(text)
    return fake


@pytest.fixture
def openai_upstream(_openai_servers: tuple[FakeOpenAI, FakeOpenAI]) -> FakeOpenAI:
    """An OpenAI-compatible fake that requires OPENAI_KEY; answers "primary here" by default."""
    return _fresh(_openai_servers[0], "primary here")


@pytest.fixture
def fallback_upstream(_openai_servers: tuple[FakeOpenAI, FakeOpenAI]) -> FakeOpenAI:
    """A second, keyless OpenAI-compatible fake; answers "fallback here" by default."""
    return _fresh(_openai_servers[1], "fallback here")


@pytest.fixture
def gemini_upstream(_gemini_server: FakeGemini) -> FakeGemini:
    """A Gemini fake that requires GEMINI_KEY; answers "gemini here" by default."""
    return _fresh(_gemini_server, "gemini here")
