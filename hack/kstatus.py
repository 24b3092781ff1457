"""The `kstatus` tool: build it from hack/gomod/kstatus and ask it for an object's verdict.

kstatus (github.com/fluxcd/cli-utils) is the library Helm 4 `--wait` and Flux read to decide
whether an object is InProgress, Current or Failed. The GitOps tests feed it Agent, Persona and
Tool objects to prove what those tools will report.

Does I/O: runs the machine's `go` once to build `<cache>/bin/kstatus-<version>` (like the
cluster binaries: built in a temp dir next to the cache, renamed into place, under a file lock
so concurrent callers wait for one build), then runs the binary. Called by the gitops tests and
by hand: `python hack/kstatus.py build`, or `python hack/kstatus.py < object.yaml`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from localcluster import binaries, settings

# The fluxcd/cli-utils release whose kstatus Helm 4.3.1 and Flux vendor; go.mod pins the same.
VERSION = "1.2.2"
MODULE = "github.com/fluxcd/cli-utils"
GOMOD_DIR = settings.REPO_ROOT / "hack" / "gomod" / "kstatus"


def path(config: settings.Settings) -> Path:
    """Where the kstatus binary lives in the cache (whether or not it is built yet)."""
    return config.bin_dir / f"kstatus-{VERSION}"


def ensure(config: settings.Settings | None = None) -> Path:
    """Build the kstatus binary unless the cache has it; its path."""
    config = config or settings.Settings.from_env()
    target = path(config)
    if target.is_file():
        return target
    config.bin_dir.mkdir(parents=True, exist_ok=True)
    with _lock(config.bin_dir / ".kstatus.lock"):
        if not target.is_file():  # another process may have built it meanwhile
            _build(target)
    return target


def compute(binary: Path, obj: Mapping[str, Any]) -> dict[str, str]:
    """kstatus' verdict on `obj`: {"status": InProgress|Current|Failed|Terminating, "message"}."""
    result = subprocess.run(
        [str(binary)],
        input=json.dumps(obj),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{binary} failed (exit {result.returncode}): {result.stderr.strip()}")
    verdict: dict[str, str] = json.loads(result.stdout)
    return verdict


def _build(target: Path) -> None:
    _check_pin()
    go = binaries.find_go()
    env = dict(os.environ)
    env["PATH"] = f"{go.parent}{os.pathsep}{env.get('PATH', '')}"
    tmp = Path(tempfile.mkdtemp(prefix=".build-kstatus-", dir=target.parent))
    argv = [str(go), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp / "kstatus"), "."]
    try:
        print(f"building kstatus {VERSION} with {go}", file=sys.stderr)
        result = subprocess.run(
            argv,
            cwd=GOMOD_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise binaries.BuildError(
                f"building kstatus failed (exit {result.returncode}) in {GOMOD_DIR}:\n"
                f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}"
            )
        os.replace(tmp / "kstatus", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _check_pin() -> None:
    gomod = GOMOD_DIR / "go.mod"
    pattern = rf"^\s*(require\s+)?{re.escape(MODULE)} v{re.escape(VERSION)}\s"
    if not re.search(pattern, gomod.read_text(), re.MULTILINE):
        raise binaries.BuildError(
            f"{gomod} does not require {MODULE} v{VERSION} (hack/kstatus.py): bump both together"
        )


@contextlib.contextmanager
def _lock(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str]) -> int:
    if argv == ["build"]:
        print(ensure())
        return 0
    if argv:
        print("usage: kstatus.py build | kstatus.py < object.yaml", file=sys.stderr)
        return 2
    # Pass the object through untouched: the Go side parses YAML and JSON alike.
    return subprocess.run([str(ensure())], stdin=sys.stdin, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
