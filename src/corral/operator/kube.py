"""A small JSON client for the Kubernetes API on top of kubernetes-asyncio.

Does I/O. Created once at operator startup (`connect`) and shared. Reconciles only write
through it: they read everything from the watch caches (`indexing`); the one cache Kopf does
not keep, the children's, is filled by `list_page` and `watch` (`watching`). Writes are
server-side apply (field manager `corral`), JSON merge patches of `/status`, deletes and Event
creation; each returns what the API server answered, so the caller knows the resourceVersion
of its own write. Only `applying`, `reconciling`, `referenced` and `posting` call them. API
failures become the domain errors of `errors`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from corral.api import groups
from corral.operator import errors, kinds, naming

APPLY_PATCH: Final = "application/apply-patch+yaml"
MERGE_PATCH: Final = "application/merge-patch+json"
READ_BUFFER: Final = 2**21
"""kubernetes-asyncio's read buffer: a watch event of a large object fits."""

# apiVersion/kind -> URL prefix and plural, for the kinds the operator touches.
_RESOURCES: Final = {
    ("v1", "Secret"): ("/api/v1", "secrets"),
    ("v1", "Event"): ("/api/v1", "events"),
    **{(c.api_version, c.kind): (c.url_prefix, c.plural) for c in kinds.CHILDREN},
    **{
        (groups.API_VERSION, kind): (f"/apis/{groups.API_VERSION}", plural)
        for kind, plural in groups.PLURALS.items()
    },
}


def path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
    """The URL path of a namespaced object (or of its collection when `name` is None)."""
    prefix, plural = _RESOURCES[(api_version, kind)]
    collection = f"{prefix}/namespaces/{namespace}/{plural}"
    return collection if name is None else f"{collection}/{name}"


def path_of(manifest: Mapping[str, Any]) -> str:
    meta = manifest["metadata"]
    return path(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])


@dataclasses.dataclass
class Kube:
    """The operator's API client. Counts writes by kind and verb via `on_write`."""

    api: k8s.ApiClient
    request_timeout: float
    connect_timeout: float
    on_write: Callable[[str, str], None] | None = None

    async def apply(
        self, manifest: Mapping[str, Any], force: bool = True, manager: str = naming.MANAGER
    ) -> dict[str, Any]:
        """Server-side apply: we own exactly the fields in `manifest`. `force` takes fields back
        from other managers (reverting hand edits); without it, fields another manager set to
        other values make the API server answer 409 (`errors.ApiConflict`)."""
        self._count(manifest["kind"], "apply")
        return await self._call(
            "PATCH",
            path_of(manifest),
            body=manifest,
            query={"fieldManager": manager, "force": "true" if force else "false"},
            content_type=APPLY_PATCH,
        )

    async def patch_status(self, kind: str, url: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """JSON merge patch of `/status`; the object as the API server answered."""
        self._count(kind, "patch-status")
        return await self._call(
            "PATCH", f"{url}/status", body={"status": status}, content_type=MERGE_PATCH
        )

    async def get(self, url: str) -> dict[str, Any] | None:
        """The one read: a Secret's values for an MCPServer's discovery (the watch cache keeps
        only their digests). None when the object is absent."""
        try:
            return await self._call("GET", url)
        except NotFound:
            return None

    async def delete(self, kind: str, url: str) -> None:
        self._count(kind, "delete")
        with contextlib.suppress(NotFound):
            await self._call("DELETE", url, body={"propagationPolicy": "Background"})

    async def create(self, kind: str, url: str, obj: Mapping[str, Any]) -> None:
        self._count(kind, "create")
        await self._call("POST", url, body=obj)

    async def list_page(self, url: str, query: Mapping[str, str]) -> dict[str, Any]:
        """One page of a collection (`limit`, `continue`): the watch cache's listing."""
        return await self._call("GET", url, query=query)

    async def watch(
        self, url: str, query: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of a watch of the collection at `url` (`query` holds its
        resourceVersion), parsed, until the API server ends it. `Gone` when that
        resourceVersion is too old (the caller lists again)."""
        try:
            response = await self.api.call_api(
                url,
                "GET",
                query_params=[("watch", "true"), *query.items()],
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.connect_timeout, sock_read=read_timeout
                ),
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.ApiUnavailable(f"WATCH {url}: {type(exc).__name__}: {exc}") from exc
        async with response:
            if response.status != 200:
                text = await response.text()
                raise _status_error("WATCH", url, response.status, _message(text, response.reason))
            pending = b""
            try:
                async for chunk in response.content.iter_any():
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _event(url, json.loads(line))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise errors.ApiUnavailable(f"WATCH {url}: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self.api.close()

    def _count(self, kind: str, verb: str) -> None:
        if self.on_write is not None:
            self.on_write(kind, verb)

    async def _call(
        self,
        method: str,
        url: str,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        try:
            result = await self.api.call_api(
                url,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                response_types_map={200: "object", 201: "object", 202: "object"},
                _return_http_data_only=True,
                _request_timeout=aiohttp.ClientTimeout(
                    total=self.request_timeout, connect=self.connect_timeout
                ),
            )
        except ApiException as exc:
            raise _api_error(method, url, exc) from exc
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise errors.ApiUnavailable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        return dict(result or {})


class NotFound(errors.OperatorError):
    """404: the object is gone (`get` returns None instead)."""

    reason = "NotFound"


class Gone(errors.OperatorError):
    """410: a watch's resourceVersion is older than the API server keeps: list again."""

    reason = "Gone"


def _event(url: str, event: dict[str, Any]) -> dict[str, Any]:
    """A watch event, or the error the API server reported in the stream instead."""
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        code = int(status.get("code") or 500)
        raise _status_error("WATCH", url, code, str(status.get("message", "")))
    return event


def _api_error(method: str, url: str, exc: ApiException) -> errors.OperatorError:
    return _status_error(method, url, int(exc.status or 0), _message(exc.body, exc.reason))


def _status_error(method: str, url: str, status: int, message: str) -> errors.OperatorError:
    where = f"{method} {url}: {status} {message}"
    if status == 404:
        return NotFound(where)
    if status == 409:
        return errors.ApiConflict(where)
    if status == 410:
        return Gone(where)
    if status in (400, 422):
        # The API server rejected what we rendered from the Agent: only a spec change helps.
        return errors.InvalidSpec(f"the API server rejected {url.rsplit('/', 2)[-2]}: {message}")
    return errors.ApiUnavailable(where)


def _message(body: Any, reason: Any) -> str:
    try:
        return str(json.loads(body or b"{}").get("message", reason))
    except (TypeError, ValueError, AttributeError):
        return str(reason)


async def connect(request_timeout: float, connect_timeout: float) -> Kube:
    """A client from the in-cluster service account, else from KUBECONFIG / ~/.kube/config."""
    configuration = k8s.Configuration()
    load_incluster: Callable[..., None] = k8s_config.load_incluster_config
    try:
        load_incluster(client_configuration=configuration)
    except k8s_config.ConfigException:
        await k8s_config.load_kube_config(client_configuration=configuration)
    api = k8s.ApiClient(configuration)
    _resolve_env_once(api)
    return Kube(api=api, request_timeout=request_timeout, connect_timeout=connect_timeout)


def _resolve_env_once(api: k8s.ApiClient) -> None:
    """Read the proxy environment once, not per request. kubernetes-asyncio's session trusts
    the environment, so aiohttp looks up HTTPS_PROXY/NO_PROXY and ~/.netrc in a thread for
    every request (measured: a sixth of the operator's CPU while 1,000 Agents are applied).
    The API server's proxy (the kubeconfig's `proxy-url`, else the environment's, honouring
    NO_PROXY, with any credentials in its URL) is resolved here; the API server's own
    credentials come from the kubeconfig or the service account, never from ~/.netrc, as with
    kubectl."""
    rest = api.rest_client
    session: aiohttp.ClientSession = rest.pool_manager
    server = urllib.parse.urlsplit(str(api.configuration.host))
    proxy = urllib.request.getproxies().get(server.scheme)
    if not rest.proxy and proxy and not urllib.request.proxy_bypass(server.hostname or ""):
        rest.proxy = proxy
    connector = session.connector
    session.detach()  # the new session takes the connector (and its TLS context) over
    rest.pool_manager = aiohttp.ClientSession(
        connector=connector, trust_env=False, read_bufsize=READ_BUFFER
    )
