"""Fixtures for Agents running as real pods on the local cluster's real node.

`image`: the project's image, built from the Dockerfile (cached by content) and loaded into the
node. `pods_namespace`: one namespace whose pods go to the real node (its annotations add the
node's toleration and selector). `release`: the Helm chart installed with that image, the
operator running as a pod on the real node and watching `pods_namespace` only (other tests run
operators of their own elsewhere). `llama` and `fake_model`: model servers on this host's
loopback, with the address pods reach them at (the node forwards the port). `tooled` and
`talker`: Agents for the chat tests, one whose scripted model calls a Tool, one on llama.cpp.
`chromium`, `page` and `consoles`: Debian's Chromium driven by Playwright, and `corral console`
processes on this host, for the test chat in a browser.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chatting_e2e import scripted, tool_agent
from playwright.sync_api import Browser, Page, sync_playwright
from pods_e2e import PodModel, Release, agent, apply, wait_ready

import llamaserver
from e2e.console import console_e2e
from e2e.console.console_e2e import ConsoleProcess
from fakes.openai_server import FakeOpenAI
from localcluster import handles, images, node, nodeconfigs

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "corral"


@pytest.fixture(scope="session")
def image(cluster: handles.Cluster) -> images.Image:
    built = images.corral(cluster.config)
    node.load_image(cluster.config, built)
    return built


@pytest.fixture(scope="session")
def pods_namespace(cluster: handles.Cluster) -> Iterator[str]:
    name = cluster.create_namespace(
        f"pods-{uuid.uuid4().hex[:6]}",
        labels={"corral.dev/test-namespace": "true"},
        annotations=nodeconfigs.namespace_annotations(),
    )
    yield name
    cluster.delete_namespace(name)


@pytest.fixture(scope="session")
def release(
    cluster: handles.Cluster, image: images.Image, pods_namespace: str
) -> Iterator[Release]:
    """`helm install` of the chart with the local image, the operator placed on the real node
    by the chart's own nodeSelector and tolerations."""
    cluster.kubectl(
        "apply", "--server-side", "--field-manager=corral-crds", "-f", str(ROOT / "crds")
    )
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
    found = Release("corral-pods", f"{pods_namespace}-system", pods_namespace)
    values = {
        "image": {"repository": image.repository, "tag": image.tag},
        "runtime": {"image": {"repository": image.repository, "tag": image.tag}},
        "watch": {"allNamespaces": False, "namespaces": [pods_namespace]},
        "crds": {"install": False},
        "operator": {
            "nodeSelector": dict([nodeconfigs.LABEL]),
            "tolerations": [nodeconfigs.TOLERATION],
        },
    }
    cluster.helm(
        "install", found.name, str(CHART), "-n", found.namespace, "--create-namespace",
        "--wait", "--timeout=180s", "--values", "-", input=json.dumps(values),
    )  # fmt: skip
    cluster.kubectl(
        "rollout", "status", f"deployment/{found.name}", "-n", found.namespace, "--timeout=180s"
    )
    yield found
    cluster.helm("uninstall", found.name, "-n", found.namespace, check=False)
    cluster.delete_namespace(found.namespace)


@pytest.fixture(scope="session")
def llama(cluster: handles.Cluster) -> Iterator[PodModel]:
    with llamaserver.LlamaServer() as server:
        address = node.expose_host_port(cluster.config, server.port)
        yield PodModel(f"http://{address}/v1")


@pytest.fixture
def fake_model(cluster: handles.Cluster) -> Iterator[tuple[FakeOpenAI, PodModel]]:
    with FakeOpenAI() as fake:
        address = node.expose_host_port(cluster.config, fake.port)
        yield fake, PodModel(f"http://{address}/v1")


@pytest.fixture(scope="session")
def scripted_model(cluster: handles.Cluster) -> Iterator[tuple[FakeOpenAI, PodModel]]:
    with FakeOpenAI() as fake:
        fake.default = scripted
        address = node.expose_host_port(cluster.config, fake.port)
        yield fake, PodModel(f"http://{address}/v1")


@pytest.fixture(scope="session")
def tooled(
    cluster: handles.Cluster, release: Release, scripted_model: tuple[FakeOpenAI, PodModel]
) -> str:
    """An Agent whose scripted model calls an HTTP Tool, then answers."""
    apply(cluster, release.watched, *tool_agent("tooled", scripted_model[1]))
    wait_ready(cluster, release.watched, "tooled")
    return "tooled"


@pytest.fixture(scope="session")
def talker(cluster: handles.Cluster, release: Release, llama: PodModel) -> str:
    apply(cluster, release.watched, agent("talker", llama.base_url))
    wait_ready(cluster, release.watched, "talker")
    return "talker"


# Module scope: Playwright's sync API keeps an event loop running while it is open, which
# would break every later test that runs asyncio (here and in other directories).
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as driver:
        launched = console_e2e.launch(driver)
        yield launched
        launched.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(90_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def consoles(cluster: handles.Cluster, tmp_path: Path) -> Iterator[Callable[..., ConsoleProcess]]:
    """`corral console` processes with a kubeconfig (the admin's by default)."""
    started: list[ConsoleProcess] = []

    def start(kubeconfig: Path | None = None) -> ConsoleProcess:
        process = ConsoleProcess(kubeconfig or cluster.kubeconfig, tmp_path / f"{len(started)}.log")
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
