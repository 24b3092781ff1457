"""One limit and one session store for an Agent's real pods, through a real redis-server.

The store is Debian's redis-server on this host, serving TLS only with a CA of its own, its
port forwarded to the pods (the node's bridge address, as the README's `hack/cluster.py
expose` does). Two Agents of three replicas each point `spec.stateStore` at it over
rediss://, with the password and the CA from Secrets. The official openai SDK chats through
the Agent's Service (kube-proxy spreads the calls over the pods): the pods together admit the
one rate limit and refuse the rest with 429; and a conversation goes from pod to pod, each
turn answered with the whole history.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from pods_e2e import Release, agent, apply, get, pods, service_url, wait_ready

import redisserver
from fakes.openai_server import FakeOpenAI
from localcluster import handles, images, node, nodeconfigs, settings

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
PASSWORD = "pods-store-password"
SECRET = "corral-redis"
LIMIT = 4  # requests per minute, for all replicas together
REPLICAS = 3


@dataclass(frozen=True)
class Shared:
    namespace: str
    model: FakeOpenAI
    store: redisserver.RedisServer


@pytest.fixture(scope="module")
def shared(
    cluster: handles.Cluster,
    release: Release,
    image: images.Image,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Shared]:
    """The TLS store and the fake model on this host, both reachable from pods; the Secret of
    the store's password and CA; the two Agents Ready."""
    gateway = nodeconfigs.gateway(cluster.config)
    pki = tmp_path_factory.mktemp("store-pki")
    tls = redisserver.Tls.issue(pki, [settings.HOST, gateway])
    namespace = release.watched
    with redisserver.RedisServer(password=PASSWORD, tls=tls) as store, FakeOpenAI() as model:
        store_at = node.expose_host_port(cluster.config, store.port)
        model_at = node.expose_host_port(cluster.config, model.port)
        cluster.kubectl(
            "create", "secret", "generic", SECRET, "-n", namespace,
            f"--from-literal=password={PASSWORD}", f"--from-file=ca.crt={tls.ca}",
        )  # fmt: skip
        state_store = {
            "url": f"rediss://{store_at}/0",
            "passwordSecretRef": {"name": SECRET, "key": "password"},
            "caSecretRef": {"name": SECRET, "key": "ca.crt"},
        }
        base_url = f"http://{model_at}/v1"
        common: dict[str, Any] = {"replicas": REPLICAS, "stateStore": state_store}
        apply(
            cluster,
            namespace,
            agent(
                "limited", base_url, "fake-model", rateLimit={"requestsPerMinute": LIMIT}, **common
            ),
            agent("remembers", base_url, "fake-model", memory={"enabled": True}, **common),
        )
        for name in ("limited", "remembers"):
            wait_ready(cluster, namespace, name)
        yield Shared(namespace, model, store)
        cluster.kubectl("delete", "agent", "limited", "remembers", "-n", namespace, check=False)
        cluster.kubectl("delete", "secret", SECRET, "-n", namespace, check=False)


def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)


def served(cluster: handles.Cluster, namespace: str, pod: str) -> dict[str, int]:
    """The pod's own count of chat answers by status, from its /metrics (the API server's pod
    proxy: the one pod, not the Service)."""
    text = cluster.kubectl(
        "get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}:8080/proxy/metrics"
    ).stdout
    counts: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith("corral_requests_total{") and "/v1/chat/completions" in line:
            status = line.split('status="', 1)[1].split('"', 1)[0]
            counts[status] = counts.get(status, 0) + int(float(line.rsplit(" ", 1)[1]))
    return counts


def test_the_pods_of_an_agent_admit_one_shared_rate_limit(
    cluster: handles.Cluster, shared: Shared
) -> None:
    url = service_url(cluster, shared.namespace, "limited")
    sent = LIMIT * REPLICAS * 2
    statuses: list[int] = []
    refusals: list[tuple[str | None, str | None]] = []
    started = time.monotonic()
    for _ in range(sent):
        # A client (so a connection) per call: kube-proxy picks a pod per connection.
        try:
            with client(url) as chat:
                chat.chat.completions.create(
                    model="limited", messages=[{"role": "user", "content": "hi"}]
                )
            statuses.append(200)
        except openai.RateLimitError as refused:
            refusals.append((refused.code, refused.response.headers.get("retry-after")))
            statuses.append(429)
    # The bucket refills LIMIT per minute: what it could have refilled while we sent.
    refilled = int((time.monotonic() - started) * LIMIT / 60)

    admitted = statuses.count(200)
    assert all(code == "rate_limit_exceeded" and int(after or 0) >= 1 for code, after in refusals)
    assert LIMIT <= admitted <= LIMIT + refilled, statuses
    assert statuses[:LIMIT] == [200] * LIMIT  # the first LIMIT pass, whichever pod takes them
    assert len(shared.model.requests) == admitted
    per_pod = {
        p["metadata"]["name"]: served(cluster, shared.namespace, p["metadata"]["name"])
        for p in pods(cluster, shared.namespace, "limited")
    }
    assert len(per_pod) == REPLICAS
    assert sum(c.get("200", 0) for c in per_pod.values()) == admitted
    assert sum(c.get("429", 0) for c in per_pod.values()) == sent - admitted
    # Several pods answered: with a limit per pod, each would have admitted LIMIT on its own.
    assert sum(1 for c in per_pod.values() if c) >= 2, per_pod
    with shared.store.client() as store:
        assert any(store.scan_iter(match=f"corral:{{{shared.namespace}/limited}}:*"))


def test_a_session_continues_from_pod_to_pod(cluster: handles.Cluster, shared: Shared) -> None:
    """Each turn goes to another pod (by its own address), the last through the Service; every
    model call carries the whole conversation, so each pod read what the others wrote."""
    found = pods(cluster, shared.namespace, "remembers")
    assert len(found) == REPLICAS
    assert all(p["spec"]["nodeName"] == nodeconfigs.NAME for p in found)
    addresses = [f"http://{p['status']['podIP']}:8080/v1" for p in found]
    session = {"x-session-id": "pods-conversation"}
    answer = "Hello from the fake."

    def say(base_url: str, text: str) -> list[str]:
        with client(base_url) as chat:
            chat.chat.completions.create(
                model="remembers",
                messages=[{"role": "user", "content": text}],
                extra_headers=session,
            )
        return [m["content"] for m in shared.model.requests[-1].body["messages"]]

    assert say(addresses[0], "one") == ["one"]
    assert say(addresses[1], "two") == ["one", answer, "two"]
    assert say(addresses[2], "three") == ["one", answer, "two", answer, "three"]
    through_service = say(service_url(cluster, shared.namespace, "remembers"), "four")
    assert through_service == ["one", answer, "two", answer, "three", answer, "four"]
    with shared.store.client() as store:
        keys = list(store.scan_iter(match=f"corral:{{{shared.namespace}/remembers}}:*"))
        assert keys
        assert all(store.pttl(key) > 0 for key in keys)  # sessions expire when idle
    status = get(cluster, shared.namespace, "agent", "remembers")["status"]
    assert PASSWORD not in str(status)
