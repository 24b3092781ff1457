"""The Debian packages the real node and the image build run: installed with apt-get if missing.

Does I/O: asks dpkg which packages are installed and runs `apt-get install` (as root, the only
way the node runs anyway) for the missing ones. Called by `node.start` and `images.ensure`.
Binaries that Debian ships well and that need no pinning beside the Kubernetes version come
from here: runc (containerd's runtime), iptables and conntrack (kube-proxy and the CNI bridge
plugin), buildah (the daemonless image builder) and mmdebstrap (the Python base image).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterable

from localcluster import output, settings

NODE = ("runc", "iptables", "conntrack")
IMAGES = ("buildah", "mmdebstrap")


class PackageError(RuntimeError):
    """apt-get could not install a package; the message says which and why."""


def missing(packages: Iterable[str]) -> list[str]:
    """The `packages` dpkg does not report as installed."""
    wanted = list(packages)
    result = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\\n", *wanted],
        capture_output=True,
        text=True,
    )
    installed = {
        line.split()[0] for line in result.stdout.splitlines() if line.split()[1:] == ["installed"]
    }
    return [p for p in wanted if p not in installed]


def ensure(config: settings.Settings, packages: Iterable[str], log: output.Log) -> None:
    """Install whichever of `packages` is missing (once per machine; then only a dpkg query)."""
    todo = missing(packages)
    if not todo:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise PackageError(
            f"the Debian packages {todo} are missing and cannot be installed here "
            "(needs apt-get and root): install them, then run this again"
        )
    lock_file = config.cache_dir / "locks" / "apt.lock"
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        todo = missing(todo)
        if not todo:
            return
        log(f"installing Debian packages {' '.join(todo)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *todo],
        ):
            result = subprocess.run(argv, env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise PackageError(
                    f"`{' '.join(argv)}` failed (exit {result.returncode}):\n"
                    f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
                )
