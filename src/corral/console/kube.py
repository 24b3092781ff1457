"""The console's Kubernetes client: the user's credentials, JSON in and out, and watches.

Does I/O. One `Kube` is created at startup (`connect`) and reached through the app's typed
dependency (`deps`). Reads are GET/list/watch, writes are server-side apply with field manager
`corral-console` (optionally `dryRun=All`), and pod metrics are read through the API server's
pods proxy. Failures become `KubeError` carrying the API server's Status (message and field
causes), which the routes turn into pages and the forms into messages next to fields.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from corral.console import settings as settings_mod

MANAGER: Final = "corral-console"
APPLY_PATCH: Final = "application/apply-patch+yaml"


@dataclasses.dataclass(frozen=True)
class Cause:
    """One field the API server named in a rejection (`details.causes[]` of a Status)."""

    field: str
    message: str


class KubeError(Exception):
    """The API server answered an error (or could not be reached: status 0)."""

    def __init__(self, status: int, message: str, causes: Sequence[Cause] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.causes = tuple(causes)

    @property
    def forbidden(self) -> bool:
        return self.status == 403

    @property
    def not_found(self) -> bool:
        return self.status == 404


class ConfigError(RuntimeError):
    """No usable credentials: the message says which file or setting to fix."""


@dataclasses.dataclass
class Kube:
    """The user's API client and the namespace their context points at."""

    api: k8s.ApiClient
    namespace: str
    request_timeout: float
    watch_timeout: int

    async def get(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        return json.loads(await self._text("GET", path, query))  # type: ignore[no-any-return]

    async def find(self, path: str) -> dict[str, Any] | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return await self.get(path)
        except KubeError as err:
            if err.not_found:
                return None
            raise

    async def apply(self, manifest: Mapping[str, Any], path: str, dry_run: bool) -> dict[str, Any]:
        """Server-side apply of `manifest` as `corral-console`. Conflicts with other managers
        are forced: an edit in the console is the user's explicit decision, as with
        `kubectl apply --server-side --force-conflicts`."""
        query = {"fieldManager": MANAGER, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        text = await self._text("PATCH", path, query, body=dict(manifest), content=APPLY_PATCH)
        return json.loads(text)  # type: ignore[no-any-return]

    async def proxy_text(self, path: str, seconds: float = 5.0) -> str:
        """GET through the API server's proxy (`.../pods/NAME:PORT/proxy/metrics`): raw text.
        A short timeout: a pod that does not answer must not hold up the page."""
        return await self._text("GET", path, None, accept="*/*", seconds=seconds)

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        """The watch events of `path` from `resource_version` until the server ends the watch.

        Raises KubeError(410) when the version is too old (the caller lists again)."""
        query = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_timeout),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.request_timeout)
        response = await self._open("GET", path, query, None, "application/json", "*/*", timeout)
        try:
            async for line in lines(response.content.iter_any()):
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise KubeError(int(status.get("code", 500)), str(status.get("message", "")))
                yield event
        finally:
            response.release()

    async def close(self) -> None:
        await self.api.close()

    async def _text(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Any = None,
        content: str = "application/json",
        accept: str = "application/json",
        seconds: float | None = None,
    ) -> str:
        timeout = aiohttp.ClientTimeout(total=seconds or self.request_timeout)
        response = await self._open(method, path, query, body, content, accept, timeout)
        try:
            return await response.text()
        finally:
            response.release()

    async def _open(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Any,
        content: str,
        accept: str,
        limits: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        try:
            response: aiohttp.ClientResponse = await self.api.call_api(
                path,
                method,
                query_params=list((query or {}).items()),
                header_params={"Accept": accept, "Content-Type": content},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=limits,
            )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise KubeError(
                0, f"the API server did not answer: {type(exc).__name__} {exc}"
            ) from exc
        if response.status >= 400:
            text = await response.text()
            response.release()
            raise status_error(response.status, text)
        return response


async def lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Non-empty lines of any length (aiohttp's own line reader caps a line at 128 KiB, and
    one watch event, an MCPServer with many tools say, may be longer)."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def status_error(status: int, text: str) -> KubeError:
    """A KubeError from the API server's answer: its Status message and field causes."""
    try:
        body = json.loads(text)
    except ValueError:
        return KubeError(status, text.strip()[:500] or f"HTTP {status}")
    if not isinstance(body, dict):
        return KubeError(status, text.strip()[:500])
    causes = [
        Cause(field=str(c.get("field", "")), message=str(c.get("message", "")))
        for c in (body.get("details") or {}).get("causes") or []
        if isinstance(c, dict)
    ]
    return KubeError(status, str(body.get("message") or f"HTTP {status}"), causes)


async def connect(settings: settings_mod.Settings) -> Kube:
    """A client with the user's credentials, found as kubectl finds them: --kubeconfig, else
    $KUBECONFIG or ~/.kube/config when present, else the pod's in-cluster ServiceAccount."""
    configuration = k8s.Configuration()
    explicit = settings.kubeconfig is not None or settings.context is not None
    kubeconfig_file = _kubeconfig_file(settings.kubeconfig)
    if explicit or kubeconfig_file is not None:
        if kubeconfig_file is None:
            raise ConfigError("no kubeconfig found: pass --kubeconfig PATH or set KUBECONFIG")
        namespace = await _load_kubeconfig(configuration, kubeconfig_file, settings.context)
    else:
        load_incluster: Callable[..., None] = k8s_config.load_incluster_config
        account = settings.serviceaccount_dir
        try:
            load_incluster(
                client_configuration=configuration,
                token_filename=str(account / "token"),
                cert_filename=str(account / "ca.crt"),
            )
        except k8s_config.ConfigException as exc:
            raise ConfigError(
                "no credentials: no kubeconfig ($KUBECONFIG, ~/.kube/config) and not running in"
                f" a pod ({exc}); pass --kubeconfig PATH"
            ) from exc
        namespace = _incluster_namespace(account / "namespace")
    return Kube(
        api=k8s.ApiClient(configuration),
        namespace=namespace,
        request_timeout=settings.request_timeout_seconds,
        watch_timeout=settings.watch_timeout_seconds,
    )


def _kubeconfig_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--kubeconfig {explicit}: no such file")
        return explicit
    for candidate in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if candidate and Path(candidate).expanduser().is_file():
            return Path(candidate).expanduser()
    default = Path("~/.kube/config").expanduser()
    return default if default.is_file() else None


async def _load_kubeconfig(
    configuration: k8s.Configuration, path: Path, context: str | None
) -> str:
    """Load `path` (context `context`) into `configuration`; return the context's namespace.
    Never writes the file back (the console stores nothing)."""
    try:
        contexts, current = k8s_config.list_kube_config_contexts(str(path))
        chosen = current
        if context is not None:
            chosen = next((c for c in contexts if c.get("name") == context), None)
            if chosen is None:
                names = ", ".join(str(c.get("name")) for c in contexts)
                raise ConfigError(f"--context {context}: not in {path} (it has: {names})")
        await k8s_config.load_kube_config(
            config_file=str(path),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except k8s_config.ConfigException as exc:
        raise ConfigError(f"kubeconfig {path}: {exc}") from exc
    namespace = ((chosen or {}).get("context") or {}).get("namespace")
    return str(namespace or "default")


def _incluster_namespace(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text().strip() or "default"
    return "default"
