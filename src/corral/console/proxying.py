"""An HTTP client that talks to the API server as the user: their CA, client certificate and
bearer token (exec plugins and in-cluster tokens refreshed as kubernetes_asyncio refreshes
them), for the `openai` SDK to reach an Agent through the API server's service proxy.

Called by `chatting`. Builds clients only (no request is made here). The SDK's own
`Authorization: Bearer <api key>` is replaced by the user's token, or dropped when the user
authenticates with a certificate: the API server authenticates the request, not the Agent.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator

import httpx2
from kubernetes_asyncio import client as k8s

# Connecting is quick or broken; an answer may take as long as the Agent's own deadline.
TIMEOUT = httpx2.Timeout(300.0, connect=10.0)


class KubeAuth(httpx2.Auth):
    """Sets each request's Authorization from the kubernetes_asyncio configuration (which runs
    its refresh hook first), or removes it when the user has no token."""

    def __init__(self, configuration: k8s.Configuration) -> None:
        self._configuration = configuration

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        settings = await self._configuration.auth_settings()
        token = (settings.get("BearerToken") or {}).get("value")
        if token:
            request.headers["Authorization"] = str(token)
        else:
            request.headers.pop("Authorization", None)
        yield request


def ssl_context(configuration: k8s.Configuration) -> ssl.SSLContext:
    """TLS as the kubeconfig says: its CA (else the system's), its client certificate, and
    no verification only when the kubeconfig asks for insecure-skip-tls-verify."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def http_client(configuration: k8s.Configuration) -> httpx2.AsyncClient:
    """A client for the API server of `configuration` (its proxy-url too, when it has one)."""
    return httpx2.AsyncClient(
        auth=KubeAuth(configuration),
        verify=ssl_context(configuration),
        proxy=configuration.proxy or None,
        timeout=TIMEOUT,
        trust_env=False,
        follow_redirects=False,
    )
