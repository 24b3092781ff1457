"""The wheel, installed the way the Dockerfile installs it, starts both entrypoints.

Builds the wheel with `uv build --wheel`, exports the locked runtime requirements with the same
`uv export` flags the Dockerfile uses, installs both into a fresh virtualenv (offline, from
uv's cache, which `make venv` fills) and runs the installed `corral`: its help, the operator's
help (no cluster needed), and the runtime serving /healthz until SIGTERM. Loopback only.
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
DEFAULT_UV = Path.home() / ".cache" / "corral" / "uv-0.13.8" / "bin" / "uv"
# Kept word for word in the Dockerfile (test_dockerfile_installs_what_this_test_installs).
EXPORT = ("export", "--frozen", "--no-default-groups", "--no-emit-project")
BUILD = ("build", "--wheel")
COMMANDS = ("operator", "runtime", "render", "crds")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


def uv() -> Path:
    found = Path(os.environ.get("UV") or DEFAULT_UV)
    assert found.is_file(), f"uv not found at {found}: run `make venv` (or set UV=/path/to/uv)"
    return found


def clean_env() -> dict[str, str]:
    """The environment without anything pointing at the checkout's virtualenv or sources."""
    drop = {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CORRAL_")}
    return env | {"UV_PYTHON_DOWNLOADS": "never", "UV_OFFLINE": "1", "NO_COLOR": "1"}


def run(argv: Sequence[str | Path], cwd: Path, timeout: float = 120) -> str:
    """Run `argv`; its stdout, or a failure showing the command and everything it printed."""
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=clean_env(),
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
    work = tmp_path_factory.mktemp("wheel")
    dist, requirements, env_dir = work / "dist", work / "requirements.txt", work / "venv"
    run([uv(), *BUILD, "--out-dir", dist], cwd=REPO)
    run([uv(), *EXPORT, "--quiet", "--output-file", requirements], cwd=REPO)
    run([uv(), "venv", "--quiet", "--python", sys.executable, env_dir], cwd=work)
    python = env_dir / "bin" / "python"
    install: list[str | Path] = [uv(), "pip", "install", "--quiet", "--python", python, "--no-deps"]
    run([*install, "--require-hashes", "--requirement", requirements], cwd=work)
    wheels = sorted(dist.glob("corral-*.whl"))
    assert len(wheels) == 1, f"expected one corral wheel in {dist}, found {wheels}"
    run([*install, wheels[0]], cwd=work)
    return env_dir


def test_dockerfile_installs_what_this_test_installs() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for args in (EXPORT, BUILD):
        assert f"uv {' '.join(args)} " in dockerfile, f"the Dockerfile no longer runs uv {args}"


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
