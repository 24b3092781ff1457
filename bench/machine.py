"""What the benchmarks ran on: CPU, cores, memory, kernel, load, and the versions that matter.

`describe()` reads /proc/cpuinfo, runs `nproc` and `free -m`, reads the installed package
versions and the git commit; the operator suite adds the control-plane versions. Called by
`bench.__main__` at the start and end of a run; file and process I/O.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

PACKAGES = (
    "corral",
    "uvicorn",
    "fastapi",
    "starlette",
    "pydantic",
    "openai",
    "httpx",
    "h11",
    "kopf",
    "kubernetes-asyncio",
    "uvloop",
    "httptools",
)


def _run(*argv: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=30, check=False, cwd=cwd
        )
    except OSError as err:
        return f"unavailable ({err.strerror})"
    return done.stdout.strip() if done.returncode == 0 else f"unavailable ({done.returncode})"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def memory_total() -> str:
    """The `Mem:` line of `free -m`, as `total MiB`."""
    for line in _run("free", "-m").splitlines():
        if line.startswith("Mem:"):
            return f"{line.split()[1]} MiB"
    return "unknown"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version() + f" ({sys.implementation.name})"}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def commit(repo: Path) -> str:
    head = _run("git", "rev-parse", "--short", "HEAD", cwd=repo)
    dirty = _run("git", "status", "--porcelain", "--untracked-files=no", cwd=repo)
    return f"{head} (uncommitted changes)" if dirty and not dirty.startswith("unavail") else head


def describe(repo: Path) -> dict[str, str]:
    return {
        "CPU": cpu_model(),
        "cores (nproc)": _run("nproc"),
        "memory (free -m)": memory_total(),
        "kernel": platform.release(),
        "OS": os_name(),
        "git commit": commit(repo),
    }
