"""Rollouts of real pods: a Persona change rolls the Agent's pods while 20 streams are in flight
through its Service, and every stream completes with every byte (preStop, then the runtime's
drain, under the kubelet's real SIGTERM); rotating a referenced Secret rolls the pods and the
new pods see, and send, the new value."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from openai import OpenAI
from pods_e2e import (
    PodModel,
    Release,
    agent,
    agent_events,
    apply,
    exec_in,
    get,
    is_ready,
    persona,
    pods,
    service_url,
    wait_ready,
)

from fakes import scripts
from fakes.openai_server import FakeOpenAI
from localcluster import handles, probes

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
STREAMS = 20
WORDS = 40
CHUNK_DELAY = 0.4  # 40 chunks: each stream lasts ~16 s, longer than preStop + rollout


def _wait(what: str, check: Callable[[], bool], detail: Callable[[], str], timeout: float) -> None:
    probes.wait_for(what, check, timeout, detail, interval=0.5)


class Streams:
    """STREAMS concurrent streamed chats, each on its own thread and connection."""

    def __init__(self, base_url: str, model: str) -> None:
        self.texts: list[str | None] = [None] * STREAMS
        self.errors: list[BaseException] = []
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i, base_url, model), daemon=True)
            for i in range(STREAMS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def done(self) -> int:
        with self._lock:
            return sum(text is not None for text in self.texts) + len(self.errors)

    def join(self, timeout: float) -> None:
        for thread in self._threads:
            thread.join(timeout)
            assert not thread.is_alive(), "a stream did not finish"

    def _run(self, index: int, base_url: str, model: str) -> None:
        client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
        try:
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": f"stream {index}"}], stream=True
            )
            pieces = []
            for number, chunk in enumerate(stream):
                if number == 0:
                    self.started.release()
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
            with self._lock:
                self.texts[index] = "".join(pieces)
        except BaseException as error:  # reported by the test, not lost on the thread
            with self._lock:
                self.errors.append(error)
            self.started.release()


def test_a_persona_change_rolls_the_pods_while_20_streams_complete_whole(
    cluster: handles.Cluster, release: Release, fake_model: tuple[FakeOpenAI, PodModel]
) -> None:
    fake, model = fake_model
    expected = "".join(f"word{i} " for i in range(WORDS))
    fake.default = scripts.text(expected, chunk_delay=CHUNK_DELAY)
    namespace = release.watched
    apply(
        cluster,
        namespace,
        persona("rolling-tone", "You are tone one."),
        agent("roller", model.base_url, personaRef={"name": "rolling-tone"}, replicas=2),
    )
    wait_ready(cluster, namespace, "roller")
    old = {p["metadata"]["name"] for p in pods(cluster, namespace, "roller")}
    assert len(old) == 2

    streams = Streams(service_url(cluster, namespace, "roller"), "roller")
    streams.start()
    for _ in range(STREAMS):
        assert streams.started.acquire(timeout=60), "a stream never started"
    assert not streams.errors, streams.errors
    apply(cluster, namespace, persona("rolling-tone", "You are tone two."))

    def old_pod_terminating() -> bool:
        found = get(cluster, namespace, "pods")["items"]
        terminating = {
            p["metadata"]["name"] for p in found if p["metadata"].get("deletionTimestamp")
        }
        gone = old - {p["metadata"]["name"] for p in found}
        return bool((terminating | gone) & old)

    _wait(
        "an old pod terminating",
        old_pod_terminating,
        lambda: agent_events(cluster, namespace, "roller"),
        timeout=60,
    )
    # The kubelet is stopping an old pod now, and streams are still open on it.
    assert streams.done() < STREAMS
    streams.join(timeout=120)

    assert not streams.errors, streams.errors
    assert streams.texts == [expected] * STREAMS
    _wait(
        "the rollout to finish and the old pods to be gone",
        lambda: (
            not ({p["metadata"]["name"] for p in get(cluster, namespace, "pods")["items"]} & old)
            and is_ready(get(cluster, namespace, "agent", "roller"))
        ),
        lambda: agent_events(cluster, namespace, "roller"),
        timeout=120,
    )
    client = OpenAI(base_url=service_url(cluster, namespace, "roller"), api_key="unused")
    client.chat.completions.create(model="roller", messages=[{"role": "user", "content": "hi"}])
    system = fake.requests[-1].body["messages"][0]
    assert system["role"] == "system"
    assert "tone two" in system["content"]


def test_rotating_a_referenced_secret_rolls_the_pods_and_new_pods_see_the_new_value(
    cluster: handles.Cluster, release: Release, fake_model: tuple[FakeOpenAI, PodModel]
) -> None:
    fake, model = fake_model
    fake.default = scripts.text("ok")
    namespace = release.watched

    def secret(value: str) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "rotating-key"},
            "stringData": {"api-key": value},
        }

    ref = {"name": "rotating-key", "key": "api-key"}
    spec = agent("rotator", model.base_url)
    spec["spec"]["model"]["apiKeySecretRef"] = ref
    apply(cluster, namespace, secret("key-before"), spec)
    wait_ready(cluster, namespace, "rotator")
    (before,) = pods(cluster, namespace, "rotator")
    (env,) = [
        e["name"]
        for e in before["spec"]["containers"][0]["env"]
        if e.get("valueFrom", {}).get("secretKeyRef") == ref
    ]
    assert (
        exec_in(cluster, namespace, before["metadata"]["name"], "printenv", env) == "key-before\n"
    )

    apply(cluster, namespace, secret("key-after"))

    def rolled() -> bool:
        # The old pod gone, not only terminating: until then it may still serve (preStop).
        now = pods(cluster, namespace, "rotator")
        every = {p["metadata"]["name"] for p in get(cluster, namespace, "pods")["items"]}
        return (
            len(now) == 1
            and before["metadata"]["name"] not in every
            and is_ready(now[0])
            and is_ready(get(cluster, namespace, "agent", "rotator"))
        )

    _wait("a new pod", rolled, lambda: agent_events(cluster, namespace, "rotator"), timeout=180)
    (after,) = pods(cluster, namespace, "rotator")
    assert exec_in(cluster, namespace, after["metadata"]["name"], "printenv", env) == "key-after\n"
    client = OpenAI(base_url=service_url(cluster, namespace, "rotator"), api_key="unused")
    client.chat.completions.create(model="rotator", messages=[{"role": "user", "content": "hi"}])
    assert fake.requests[-1].headers["authorization"] == "Bearer key-after"
