"""Fixtures for the console's browser tests: CRDs, an operator, `corral console` processes and
a headless Chromium driven by Playwright.

`browser` (per module) is Debian's Chromium (installed by `make browser`, hack/browser.py) launched
through Playwright's `executable_path`: Playwright's own browser downloads are never used. `page`
is a fresh browser context per test. `console` is `corral console` with the admin kubeconfig;
`console_factory` starts more (another kubeconfig, other flags). `operator` watches every
namespace named `<PREFIX>-*`, which `console_namespace` creates, so Agents turn Ready as in the
operator's end-to-end tests (kwok makes the pods Ready).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import console_e2e
import pytest
from console_e2e import CORRAL, ConsoleProcess
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from e2e.operator.operator_e2e import OperatorProcess, running
from localcluster import handles

pytestmark = pytest.mark.cluster
PREFIX = f"e2econ-{uuid.uuid4().hex[:6]}"
VIEWPORT = {"width": 1280, "height": 860}
# Waits for the cluster (an operator reconcile, kwok's pods) are bounded, not measured: a busy
# machine may take far longer than Playwright's default 5 seconds.
expect.set_options(timeout=90_000)


@pytest.fixture(scope="session")
def console_crds(cluster: handles.Cluster) -> None:
    """Every Corral CRD as `corral crds` prints it, established."""
    text = subprocess.run([str(CORRAL), "crds"], check=True, capture_output=True, text=True).stdout
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)
    names = [f"crd/{plural}.corral.dev" for plural in ("agents", "personas", "tools", "mcpservers")]
    cluster.kubectl("wait", "--for=condition=Established", *names, "--timeout=60s")


@pytest.fixture(scope="session")
def console_operator(
    cluster: handles.Cluster, console_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("console-operator") / "operator.log"
    with running(OperatorProcess(cluster, [f"{PREFIX}-*"], log)) as operator:
        yield operator


@pytest.fixture
def console_namespace(
    cluster: handles.Cluster, console_crds: None, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh namespace under the prefix the console's operator watches."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30].strip("-")
    name = cluster.create_namespace(
        f"{PREFIX}-{slug}-{uuid.uuid4().hex[:4]}", labels={"corral.dev/test-namespace": "true"}
    )
    yield name
    cluster.delete_namespace(name)


@pytest.fixture
def console_factory(
    cluster: handles.Cluster, console_crds: None, tmp_path: Path
) -> Iterator[Callable[..., ConsoleProcess]]:
    """Start `corral console` processes (default: the admin kubeconfig); stopped at the end."""
    started: list[ConsoleProcess] = []

    def start(kubeconfig: Path | None = None, args: tuple[str, ...] = ()) -> ConsoleProcess:
        log = tmp_path / f"console-{len(started)}.log"
        process = ConsoleProcess(kubeconfig or cluster.kubeconfig, log, args)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def console(console_factory: Callable[..., ConsoleProcess]) -> ConsoleProcess:
    return console_factory()


# Module scope, not session: while Playwright's sync API runs, this thread has a running event
# loop, so every later test calling asyncio.run() (the unit and runtime tests do) would fail.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    launched = console_e2e.launch(playwright_driver)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    opened = context.new_page()
    yield opened
    context.close()
