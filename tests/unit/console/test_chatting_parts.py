"""The chat's small parts with no cluster: the credentials the proxy client sends, its TLS
settings, and the footer `corral chat` prints after each answer."""

from __future__ import annotations

import ssl

import httpx2
import pytest
from kubernetes_asyncio import client as k8s

from corral.console import chatevents, chatterm, proxying


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _authorization(configuration: k8s.Configuration) -> str | None:
    request = httpx2.Request(
        "POST", "https://api.example:6443/x", headers={"Authorization": "Bearer sdk-key"}
    )
    flow = proxying.KubeAuth(configuration).async_auth_flow(request)
    sent = await anext(flow)
    return sent.headers.get("Authorization")


@pytest.mark.anyio
async def test_the_users_token_replaces_the_sdks_key_and_is_refreshed_each_request() -> None:
    configuration = k8s.Configuration()
    configuration.api_key["BearerToken"] = "Bearer first"
    tokens = iter(["Bearer second", "Bearer third"])

    def refresh(config: k8s.Configuration) -> None:
        config.api_key["BearerToken"] = next(tokens)

    configuration.refresh_api_key_hook = refresh
    assert await _authorization(configuration) == "Bearer second"
    assert await _authorization(configuration) == "Bearer third"


@pytest.mark.anyio
async def test_without_a_token_no_authorization_header_is_sent() -> None:
    assert await _authorization(k8s.Configuration()) is None  # client certificates only


def test_tls_verifies_unless_the_kubeconfig_says_insecure() -> None:
    configuration = k8s.Configuration()
    assert proxying.ssl_context(configuration).verify_mode == ssl.CERT_REQUIRED
    configuration.verify_ssl = False
    insecure = proxying.ssl_context(configuration)
    assert insecure.verify_mode == ssl.CERT_NONE
    assert not insecure.check_hostname


def test_the_footer_names_the_model_and_the_tokens() -> None:
    footer = chatterm.footer(
        chatevents.Answered("gemini-2.5-flash", "support"), chatevents.Usage(40, 2, 42)
    )
    assert footer == "[model gemini-2.5-flash · 40 prompt + 2 completion = 42 tokens]"
    assert chatterm.footer(None, None) == "[model unknown]"
