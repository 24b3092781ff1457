"""When did each object reach a state: a list-then-watch of one collection in a thread.

`Watcher(client, path, reached)` lists the collection, then watches it from that
resourceVersion (re-listing after a 410), and records, per object name, the first
time.monotonic() at which `reached(obj)` was true. The benchmark starts a watcher before it
applies, so each time is the moment the change became visible to any client. `wait(names,
timeout)` blocks until all named objects have reached the state, or fails saying how many have
not. Used by `operator_suite`; HTTPS to the API server with the admin client certificate.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from typing import Any

from bench import procs

Predicate = Callable[[dict[str, Any]], bool]
WATCH_SECONDS = 10
# How long the API server may be unreachable before a watcher gives up.
OUTAGE = 90.0


class Watcher:
    def __init__(self, server: str, tls: ssl.SSLContext, path: str, reached: Predicate) -> None:
        self._server = server
        self._tls = tls
        self._path = path
        self._reached = reached
        self.times: dict[str, float] = {}
        self._stop = threading.Event()
        self._listed = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        if not self._listed.wait(60):
            raise procs.BenchError(f"could not list {self._path}: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=WATCH_SECONDS + 30)

    def wait(self, names: Collection[str], timeout: float, what: str) -> dict[str, float]:
        """The times of `names` once every one has reached the state."""
        deadline = time.monotonic() + timeout
        while True:
            missing = [n for n in names if n not in self.times]
            if not missing:
                return {n: self.times[n] for n in names}
            if self._error is not None and not self._thread.is_alive():
                raise procs.BenchError(f"watching {self._path} failed: {self._error!r}")
            if time.monotonic() > deadline:
                raise procs.BenchError(
                    f"{what}: {len(missing)} of {len(names)} not there after {timeout:.0f}s"
                    f" (e.g. {', '.join(sorted(missing)[:3])})"
                )
            time.sleep(0.2)

    def _get(self, query: str, timeout: float) -> Any:
        request = urllib.request.Request(
            f"{self._server}{self._path}?{query}", headers={"Accept": "application/json"}
        )
        return urllib.request.urlopen(request, timeout=timeout, context=self._tls)

    def _see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in self.times and self._reached(obj):
            self.times[name] = time.monotonic()

    def _list(self) -> str:
        """List (recording what has already reached the state); the resourceVersion."""
        with self._get("limit=0", 60) as answer:
            listed = json.loads(answer.read())
        for item in listed["items"]:
            self._see(item)
        version: str = listed["metadata"]["resourceVersion"]
        return version

    def _run(self) -> None:
        version: str | None = None
        failing_since: float | None = None
        while not self._stop.is_set():
            try:
                version = self._watch(version) if version else self._list()
                self._listed.set()
                failing_since = None
            except (OSError, ValueError, KeyError) as err:
                # The API server of a shared control plane may restart under us: re-list.
                self._error = err
                version = None
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > OUTAGE:
                    self._listed.set()
                    return
                time.sleep(1.0)

    def _watch(self, version: str) -> str | None:
        """One watch request; the resourceVersion to go on from, or None to re-list."""
        query = (
            f"watch=1&resourceVersion={version}&allowWatchBookmarks=true"
            f"&timeoutSeconds={WATCH_SECONDS}"
        )
        try:
            with self._get(query, WATCH_SECONDS + 30) as stream:
                for line in stream:
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        return None
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._see(obj)
        except urllib.error.HTTPError as err:
            if err.code == 410:
                return None
            raise
        return version


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return None


def agent_ready(obj: dict[str, Any]) -> bool:
    """Ready=True for the Agent's current generation."""
    status = obj.get("status") or {}
    ready = condition(obj, "Ready")
    return (
        ready is not None
        and ready.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"].get("generation")
    )


def deployment_available(obj: dict[str, Any]) -> bool:
    """Available=True for the Deployment's current generation."""
    status = obj.get("status") or {}
    available = condition(obj, "Available")
    return (
        available is not None
        and available.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"].get("generation")
        and status.get("availableReplicas", 0) >= obj["spec"].get("replicas", 1)
    )


def deployment_rolled(obj: dict[str, Any]) -> bool:
    """The current generation is fully rolled out: every replica updated and available, no
    old one left (what `kubectl rollout status` waits for)."""
    status = obj.get("status") or {}
    want = int(obj["spec"].get("replicas", 1))
    return bool(
        status.get("observedGeneration") == obj["metadata"].get("generation")
        and status.get("updatedReplicas", 0) == want
        and status.get("replicas", 0) == want
        and status.get("availableReplicas", 0) == want
    )


def template_annotation(obj: dict[str, Any], key: str) -> str | None:
    annotations = obj["spec"]["template"].get("metadata", {}).get("annotations") or {}
    value = annotations.get(key)
    return None if value is None else str(value)
