"""The Makefile keeps every cache under CORRAL_CACHE, so a rehearsal with empty caches is real.

hack/rehearse-fresh.sh points CORRAL_CACHE at an empty directory; if a target still reached for
~/.cache/corral, the rehearsal would quietly use this machine's warm cache. `make --dry-run`
prints the commands without running them: no I/O beyond reading the Makefile.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def dry_run(target: str, **env: str) -> str:
    result = subprocess.run(
        ["make", "--dry-run", "--always-make", "--no-print-directory", target],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "CORRAL_CACHE"} | env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_uv_is_bootstrapped_into_corral_cache_when_it_is_set(tmp_path: Path) -> None:
    out = dry_run("venv", CORRAL_CACHE=str(tmp_path))
    assert f"python3 -m venv {tmp_path}/uv-" in out, out
    assert ".cache/corral" not in out, out


def test_make_test_hands_pytest_the_same_uv(tmp_path: Path) -> None:
    out = dry_run("test", CORRAL_CACHE=str(tmp_path))
    assert f"UV={tmp_path}/uv-" in out, out


def test_the_cache_defaults_to_the_home_directory(tmp_path: Path) -> None:
    out = dry_run("venv", HOME=str(tmp_path))
    assert f"python3 -m venv {tmp_path}/.cache/corral/uv-" in out, out
