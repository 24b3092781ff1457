"""The app without a cluster: read-only mode, an unreachable API server shown as a page, and
the guards against other sites (CSRF, DNS rebinding, framing).

The kube client points at a closed loopback port, so every request it makes fails the way an
unreachable API server does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from kubernetes_asyncio import client as k8s

from corral.console import app, kube, settings

BASE = "http://127.0.0.1:8090"
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def unreachable(_: settings.Settings) -> kube.Kube:
    configuration = k8s.Configuration()
    configuration.host = "http://127.0.0.1:9"
    return kube.Kube(
        api=k8s.ApiClient(configuration), namespace="team-a", request_timeout=5, watch_timeout=5
    )


@pytest.fixture
def read_only() -> Iterator[TestClient]:
    console = app.create_app(settings.Settings(read_only=True), unreachable)
    with TestClient(console, base_url=BASE) as client:
        yield client


@pytest.fixture
def writable() -> Iterator[TestClient]:
    with TestClient(app.create_app(settings.Settings(), unreachable), base_url=BASE) as client:
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
        headers=FORM,
    )
    assert response.status_code == 422
    assert "a name is required" in response.text


def test_healthz(writable: TestClient) -> None:
    assert writable.get("/healthz").json() == {"status": "ok"}


def test_another_site_cannot_post_a_form(writable: TestClient) -> None:
    body = b"metadata.name=x&metadata.namespace=team-a&spec.systemPrompt=hi"
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        response = writable.post("/author/personas/review", content=body, headers=FORM | headers)
        assert response.status_code == 403, headers
        assert "cross-site request" in response.text
    same = writable.post(
        "/author/personas/review", content=b"metadata.name=", headers=FORM | {"origin": BASE}
    )
    assert same.status_code == 422  # reached the form (and refused there: no name)


def test_a_rebound_host_name_is_refused_on_loopback(writable: TestClient) -> None:
    response = writable.get("/healthz", headers={"host": "evil.example:8090"})
    assert response.status_code == 403
    assert "DNS rebinding" in response.text
    assert writable.get("/healthz", headers={"host": "localhost:8090"}).status_code == 200


def test_a_console_bound_to_every_address_answers_any_host_name() -> None:
    console = app.create_app(settings.Settings(host="0.0.0.0"), unreachable)
    with TestClient(console, base_url="http://corral-console.corral-system.svc:8090") as client:
        assert client.get("/healthz").status_code == 200


def test_no_page_may_be_framed(writable: TestClient) -> None:
    response = writable.get("/healthz")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
