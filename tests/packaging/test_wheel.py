"""The wheel, installed the way the Dockerfile installs it, starts both entrypoints.

Runs the Dockerfile's two `uv sync` commands (the locked runtime dependencies, then the project
built as a wheel) into a fresh virtualenv, offline. That needs only the wheels that `make venv`
put in uv's cache: `uv sync` installs the lock's exact files by URL and hash and never asks the
package index, so it passes on a new machine (a `uv pip install` of exported requirements would
need uv's index cache, which only an earlier `uv lock` fills). Then runs the installed `corral`:
its help, the operator's help (no cluster needed), the runtime serving /healthz until SIGTERM,
and the console serving its stylesheet and scripts from the wheel (package data). Loopback only.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from corral.api.runtimeconfig import RuntimeConfig

REPO = Path(__file__).resolve().parents[2]
UV_VERSION = "0.13.8"  # the Makefile's UV_VERSION; `make test` passes its uv as $UV
# Kept word for word in the Dockerfile (test_dockerfile_installs_what_this_test_installs).
DEPENDENCIES = ("sync", "--frozen", "--no-default-groups", "--no-install-project")
PROJECT = ("sync", "--frozen", "--no-default-groups", "--no-editable")
COMMANDS = ("operator", "runtime", "render", "crds", "console")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def uv() -> Path:
    cache = Path(os.environ.get("CORRAL_CACHE") or Path.home() / ".cache" / "corral")
    found = Path(os.environ.get("UV") or cache / f"uv-{UV_VERSION}" / "bin" / "uv")
    assert found.is_file(), f"uv not found at {found}: run `make venv` (or set UV=/path/to/uv)"
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything pointing at the checkout's virtualenv or sources."""
    drop = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CORRAL_")}
    return env | {"UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1", "NO_COLOR": "1"} | extra


def run(
    argv: Sequence[str | Path], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> str:
    """Run `argv`; its stdout, or a failure showing the command and everything it printed."""
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env or clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    command = shlex.join(str(a) for a in argv)
    assert result.returncode == 0, (
        f"`{command}` exited {result.returncode} (offline installs need uv's cache: `make venv`)"
        f"\n{result.stdout}{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the locked runtime dependencies and the wheel, nothing else."""
    env_dir = tmp_path_factory.mktemp("wheel") / "venv"
    env = clean_env(UV_PROJECT_ENVIRONMENT=str(env_dir))
    for step in (DEPENDENCIES, PROJECT):
        run([uv(), *step, "--quiet", "--python", sys.executable], cwd=REPO, env=env)
    installed = run([uv(), "pip", "list", "--python", env_dir / "bin" / "python"], REPO, env=env)
    for dev_tool in ("pytest", "ruff", "mypy"):
        assert f"\n{dev_tool} " not in installed, f"a dev tool was installed:\n{installed}"
    return env_dir


def test_dockerfile_installs_what_this_test_installs() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for args in (DEPENDENCIES, PROJECT):
        assert f"RUN uv {' '.join(args)}\n" in dockerfile, (
            f"the Dockerfile no longer runs uv {args}"
        )
    assert "UV_PROJECT_ENVIRONMENT=/opt/corral" in dockerfile


def test_installed_package_comes_from_the_wheel_not_the_checkout(venv: Path) -> None:
    location = run([venv / "bin" / "python", "-c", "import corral; print(corral.__file__)"], venv)
    assert Path(location.strip()).is_relative_to(venv), location


def test_corral_help_lists_every_command(venv: Path) -> None:
    out = run([venv / "bin" / "corral", "--help"], cwd=venv)
    for command in COMMANDS:
        assert command in out, f"`corral --help` does not mention {command}:\n{out}"


def test_corral_operator_help_works_without_a_cluster(venv: Path) -> None:
    out = run([venv / "bin" / "corral", "operator", "--help"], cwd=venv)
    assert "--all-namespaces" in out
    assert "--namespace" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def runtime_config(tmp_path: Path) -> Path:
    """A minimal valid runtime config: one keyless OpenAI-compatible model, no tools."""
    config = RuntimeConfig.model_validate(
        {
            "agent": "probe",
            "namespace": "default",
            "models": [
                {"provider": "openai", "name": "probe-model", "baseURL": "http://127.0.0.1:9/v1"}
            ],
        }
    )
    path = tmp_path / "runtime.json"
    path.write_text(config.to_json())
    return path


@pytest.fixture
def runtime(
    venv: Path, runtime_config: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """The installed `corral runtime` serving `runtime_config` on a free loopback port."""
    port = free_port()
    log = tmp_path / "runtime.log"
    argv = [venv / "bin" / "corral", "runtime", "--config", runtime_config]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*map(str, argv), "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for_healthz(process: subprocess.Popen[bytes], base: str, log: Path) -> httpx.Response:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`corral runtime` exited {process.returncode}:\n{log.read_text()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(
        f"`corral runtime` did not serve /healthz within {START_TIMEOUT}s:\n{log.read_text()}"
    )


def test_corral_runtime_serves_healthz_and_exits_cleanly_on_sigterm(
    runtime: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, base, log = runtime
    response = wait_for_healthz(process, base, log)
    assert response.status_code == 200, response.text
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(
            f"`corral runtime` still running {STOP_TIMEOUT}s after SIGTERM:\n{log.read_text()}"
        )
    assert code == 0, f"`corral runtime` exited {code} after SIGTERM:\n{log.read_text()}"


def test_corral_console_serves_its_assets_from_the_wheel(venv: Path, tmp_path: Path) -> None:
    """The console's templates, stylesheet and scripts are inside the wheel: `pip install`
    is all it needs. A kubeconfig is read at start-up only; no API server is contacted."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    port = free_port()
    log = tmp_path / "console.log"
    argv = [venv / "bin" / "corral", "console", "--kubeconfig", kubeconfig, "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*map(str, argv)],
            cwd=tmp_path,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for_healthz(process, base, log).status_code == 200
        for asset, marker in (("console.css", "--accent"), ("registry.js", "EventSource")):
            response = httpx.get(f"{base}/static/{asset}", timeout=5)
            assert response.status_code == 200, f"{asset}: {response.status_code}"
            assert marker in response.text
        package = run(
            [venv / "bin" / "python", "-c", "import corral.console as c; print(c.__file__)"], venv
        )
        templates = Path(package.strip()).parent / "templates"
        assert {"base.html", "registry.html", "agent.html", "form.html"} <= {
            p.name for p in templates.iterdir()
        }
    finally:
        process.terminate()
        process.wait(timeout=STOP_TIMEOUT)
