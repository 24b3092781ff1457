"""The API client's request shapes and error mapping, settings validation, Kopf settings."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import kopf
import pytest
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config import kube_config as k8s_kube_config
from operator_testkit import make_settings

from corral.operator import errors, kube, main, settings, starting


@dataclasses.dataclass
class StubApi:
    """Records call_api calls; answers with `result` or raises `error`."""

    result: Any = None
    error: BaseException | None = None
    calls: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    async def call_api(self, url: str, method: str, **kwargs: Any) -> Any:
        self.calls.append({"url": url, "method": method} | kwargs)
        if self.error is not None:
            raise self.error
        return self.result


def client(stub: StubApi, writes: list[tuple[str, str]] | None = None) -> kube.Kube:
    on_write = (lambda kind, verb: writes.append((kind, verb))) if writes is not None else None
    return kube.Kube(api=stub, request_timeout=30, connect_timeout=5, on_write=on_write)  # type: ignore[arg-type]


def api_error(status: int, message: str = "boom") -> ApiException:
    exc = ApiException(status=status, reason="Reason")
    exc.body = (f'{{"message": "{message}"}}').encode()
    return exc


MANIFEST = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "support", "namespace": "shop"},
}


@pytest.mark.anyio
async def test_apply_is_a_forced_server_side_apply_by_the_corral_field_manager() -> None:
    stub, writes = StubApi(result={"kind": "Deployment"}), []
    await client(stub, writes).apply(MANIFEST)
    call = stub.calls[0]
    assert (call["method"], call["url"]) == (
        "PATCH",
        "/apis/apps/v1/namespaces/shop/deployments/support",
    )
    assert call["header_params"]["Content-Type"] == "application/apply-patch+yaml"
    assert call["query_params"] == [("fieldManager", "corral"), ("force", "true")]
    assert writes == [("Deployment", "apply")]


@pytest.mark.anyio
async def test_status_is_a_merge_patch_of_the_status_subresource() -> None:
    stub = StubApi(result={})
    await client(stub).patch_status(
        "Agent", "/apis/corral.dev/v1alpha1/namespaces/a/agents/b", {"x": 1}
    )
    assert stub.calls[0]["url"].endswith("/agents/b/status")
    assert stub.calls[0]["header_params"]["Content-Type"] == "application/merge-patch+json"
    assert stub.calls[0]["body"] == {"status": {"x": 1}}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (api_error(409), errors.ApiConflict),
        (api_error(422, "spec.template: Invalid value"), errors.InvalidSpec),
        (api_error(500), errors.ApiUnavailable),
        (api_error(403), errors.ApiUnavailable),
        (aiohttp.ClientConnectionError("refused"), errors.ApiUnavailable),
        (TimeoutError(), errors.ApiUnavailable),
    ],
)
async def test_api_failures_become_domain_errors(error: BaseException, expected: type) -> None:
    with pytest.raises(expected):
        await client(StubApi(error=error)).apply(MANIFEST)


@pytest.mark.anyio
async def test_an_unforced_apply_says_so_and_a_handover_uses_its_own_field_manager() -> None:
    stub = StubApi(result={})
    await client(stub).apply(MANIFEST, force=False)
    await client(stub).apply(MANIFEST, manager="corral-handover")
    queries = [dict(call["query_params"]) for call in stub.calls]
    assert queries == [
        {"fieldManager": "corral", "force": "false"},
        {"fieldManager": "corral-handover", "force": "true"},
    ]


def test_grace_period_must_exceed_the_drain_time() -> None:
    with pytest.raises(ValueError, match="must exceed"):
        settings.load(drain_seconds=30, termination_grace_seconds=30)


def test_settings_come_from_corral_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_IMAGE", "example/corral:7")
    monkeypatch.setenv("CORRAL_DRIFT_INTERVAL_SECONDS", "12")
    loaded = settings.load()
    assert (loaded.image, loaded.drift_interval_seconds) == ("example/corral:7", 12)


@pytest.mark.parametrize(
    ("error", "delay", "stalled"),
    [
        (errors.MissingReference([errors.Reference("Persona", "p")]), 20.0, False),
        (errors.ApiUnavailable("down"), 20.0, False),
        (errors.ApiConflict("409"), 1.0, False),
        (RuntimeError("a bug"), 20.0, False),
        (errors.InvalidSpec("bad"), None, True),
        (errors.NameConflict("taken"), None, True),
    ],
)
def test_each_error_class_says_whether_and_when_to_retry(
    error: Exception, delay: float | None, stalled: bool
) -> None:
    assert errors.retry_delay(error, attempt=2, base=5, cap=300) == delay
    assert getattr(error, "permanent", False) is stalled


def test_a_lease_that_could_let_two_replicas_lead_is_refused() -> None:
    with pytest.raises(ValueError, match="never lead"):
        settings.load(lease_duration_seconds=5, lease_renew_deadline_seconds=6)


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [errors.backoff(r, 5, 60) for r in range(6)] == [5, 10, 20, 40, 60, 60]


def test_kopf_posts_as_corral_and_watches_with_the_configured_timeouts() -> None:
    kopf_settings = kopf.OperatorSettings()
    starting.configure(kopf_settings, make_settings())
    assert kopf_settings.posting.reporting_component == "corral"
    assert kopf_settings.posting.level == logging.ERROR
    assert kopf_settings.peering.standalone is True
    assert kopf_settings.watching.server_timeout == 300
    assert kopf_settings.watching.client_timeout == 330


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    names = ("", "kubernetes_asyncio", "kopf.objects", "aiohttp.access")
    saved = {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers


@pytest.mark.usefixtures("_restore_logging")
@pytest.mark.parametrize("verbose", [True, False])
def test_api_client_bodies_are_never_logged_even_when_verbose(verbose: bool) -> None:
    main.configure_logging(verbose)
    assert not logging.getLogger("kubernetes_asyncio.client.rest").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("corral.operator").isEnabledFor(logging.INFO)


def kubeconfig(path: Any, server: str) -> str:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("no_proxy", "expected"),
    [("", "http://proxy.test:3128"), ("127.0.0.1,.svc", None)],
)
@pytest.mark.anyio
async def test_the_proxy_environment_is_read_once_at_connect_not_per_request(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, no_proxy: str, expected: str | None
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    config = kubeconfig(tmp_path / "config", "https://127.0.0.1:6443")
    monkeypatch.setattr(k8s_kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", config)  # read at import
    client = await kube.connect(request_timeout=30, connect_timeout=5)
    try:
        rest = client.api.rest_client
        assert rest.proxy == expected
        assert rest.pool_manager.trust_env is False, "no per-request env or ~/.netrc lookups"
        assert not rest.pool_manager.closed
    finally:
        await client.close()
