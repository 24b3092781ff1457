"""The app without a cluster: read-only mode, and an unreachable API server shown as a page.

The kube client points at a closed loopback port, so every request it makes fails the way an
unreachable API server does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from kubernetes_asyncio import client as k8s

from corral.console import app, kube, settings


async def unreachable(_: settings.Settings) -> kube.Kube:
    configuration = k8s.Configuration()
    configuration.host = "http://127.0.0.1:9"
    return kube.Kube(
        api=k8s.ApiClient(configuration), namespace="team-a", request_timeout=5, watch_timeout=5
    )


@pytest.fixture
def read_only() -> Iterator[TestClient]:
    with TestClient(app.create_app(settings.Settings(read_only=True), unreachable)) as client:
        yield client


@pytest.fixture
def writable() -> Iterator[TestClient]:
    with TestClient(app.create_app(settings.Settings(), unreachable)) as client:
        yield client


def test_a_read_only_console_refuses_the_forms(read_only: TestClient) -> None:
    for path in ("/author/agents/new", "/author/tools/team-a/lookup"):
        assert read_only.get(path).status_code == 403
    assert read_only.post("/author/personas/apply", content=b"manifest=%7B%7D").status_code == 403


def test_an_unknown_kind_has_no_form(writable: TestClient) -> None:
    response = writable.get("/author/secrets/new")
    assert response.status_code == 404
    assert "agents, personas or tools" in response.text


def test_a_new_form_starts_in_the_contexts_namespace(writable: TestClient) -> None:
    response = writable.get("/author/personas/new")
    assert response.status_code == 200
    assert 'name="metadata.namespace" type="text" value="team-a"' in response.text


def test_an_unreachable_api_server_is_a_page_that_says_so(writable: TestClient) -> None:
    response = writable.get("/")
    assert response.status_code == 502
    assert "the API server did not answer" in response.text


def test_an_edit_whose_name_is_missing_is_refused_before_any_request(writable: TestClient) -> None:
    response = writable.post(
        "/author/personas/review",
        content=b"metadata.name=&metadata.namespace=team-a&spec.systemPrompt=hi",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert "a name is required" in response.text


def test_healthz(writable: TestClient) -> None:
    assert writable.get("/healthz").json() == {"status": "ok"}
