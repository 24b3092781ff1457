#!/usr/bin/env python3
"""A real Redis for tests and benchmarks: Debian's redis-server, unpacked into the cache.

Nothing is assumed on the machine. `install()` fetches Debian's `redis-tools` package (the
server binary) and `redis-server` (the name it must be started by) and those of its libraries
the machine lacks with `apt-get download` (running `apt-get update` once when the package lists
do not know it), unpacks them with `dpkg -x` into `<cache>/redis-<version>` and checks that the
server starts; the libraries are found through LD_LIBRARY_PATH, so nothing is installed
system-wide. Once per machine: a cached copy is reused. `RedisServer` runs it as a child process
on a free 127.0.0.1 port (optionally with a password), waits until it answers PING, and can be
stopped and started again on the same port and data directory: a SIGTERM makes Redis save its
data, so a restart keeps the counts, as a restarted Redis with persistence does in production.
With `tls` (a `Tls`: a CA of its own and a server certificate it signed, made with openssl by
localcluster.pki) it serves TLS only (`--port 0 --tls-port P`) and its URL is rediss://;
clients are not asked for a certificate (as managed Redis services do).
Does I/O: runs apt-get and dpkg, spawns and signals processes. Called by the `redis_server`
fixture (tests/runtime/conftest.py), bench/ and by hand:

    python hack/redisserver.py install          # idempotent
    python hack/redisserver.py serve [--port P]  # until Ctrl-C
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import redis

import childproc
from childproc import HOST, free_port
from localcluster import pki

PACKAGE = "redis-tools"
# Always unpacked: system packages never mixed in. Other dependencies only when missing.
LIBRARIES = ("libjemalloc2", "liblzf1")
START_TIMEOUT = 20.0

Log = Callable[[str], None]


def cache_root() -> Path:
    env = os.environ
    return Path(env.get("CORRAL_CACHE") or Path.home() / ".cache" / "corral").absolute()


def installed(root: Path | None = None) -> Path | None:
    """The unpacked tree of a verified install (newest first), or None."""
    root = root or cache_root()
    found = sorted(root.glob("redis-*/.verified"), reverse=True)
    return found[0].parent if found else None


def binary(tree: Path) -> Path:
    return tree / "usr" / "bin" / "redis-server"


def library_path(tree: Path) -> str:
    return os.pathsep.join(str(p) for p in sorted((tree / "usr" / "lib").glob("*-linux-gnu")))


def install(log: Log | None = None) -> Path:
    """The unpacked redis-server, fetching and unpacking it first when the cache has none."""
    say = log or (lambda line: print(line, file=sys.stderr))
    ready = installed()
    if ready is not None:
        return ready
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".redis-download-") as scratch:
        work = Path(scratch)
        say(f"redis: fetching Debian's {PACKAGE} and its libraries with apt-get download")
        packages = [PACKAGE, "redis-server", *_missing_dependencies()]
        _download(packages, work)
        version = _version(work)
        tree = work / "tree"
        for deb in sorted(work.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(tree)], check=True)
        _verify(tree)
        (tree / ".verified").write_text(version + "\n")
        target = root / f"redis-{version}"
        if target.exists():
            shutil.rmtree(target)
        tree.rename(target)
    say(f"redis: installed {target}")
    return target


def _apt(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _download(packages: list[str], into: Path) -> None:
    done = _apt(["download", *packages], cwd=into)
    if done.returncode != 0:
        # A bare machine may have no package lists yet (or stale ones): refresh once.
        update = _apt(["update"])
        if update.returncode != 0:
            raise RuntimeError(f"apt-get update failed:\n{update.stderr[-2000:]}")
        done = _apt(["download", *packages], cwd=into)
    if done.returncode != 0:
        raise RuntimeError(f"apt-get download {' '.join(packages)} failed:\n{done.stderr[-2000:]}")


def _missing_dependencies() -> list[str]:
    """redis-tools' direct dependencies: the always-unpacked ones, plus any other library the
    machine does not have installed."""

    def depends() -> str:
        argv = ["apt-cache", "depends", "--no-recommends", "--no-suggests", PACKAGE]
        shown = subprocess.run(argv, capture_output=True, text=True, check=False)
        return shown.stdout if shown.returncode == 0 else ""

    listed = depends()
    if "Depends:" not in listed and _apt(["update"]).returncode == 0:
        listed = depends()
    wanted = set(LIBRARIES)
    for line in listed.splitlines():
        if not line.startswith("  Depends: "):
            continue
        name = line.split(":", 1)[1].strip()
        if name.startswith("lib") and not _is_installed(name):
            wanted.add(name)
    return sorted(wanted)


def _is_installed(package: str) -> bool:
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return status.returncode == 0 and "install ok installed" in status.stdout


def _version(work: Path) -> str:
    debs = list(work.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        raise RuntimeError(f"apt-get download produced no {PACKAGE} package")
    raw = debs[0].name.split("_")[1].replace("%3a", ":")
    return raw.split(":")[-1]


def _verify(tree: Path) -> None:
    shown = subprocess.run(
        [str(binary(tree)), "--version"],
        env={**os.environ, "LD_LIBRARY_PATH": library_path(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if shown.returncode != 0 or "Redis server" not in shown.stdout:
        raise RuntimeError(f"the unpacked redis-server does not run:\n{shown.stderr[-2000:]}")


@dataclasses.dataclass(frozen=True)
class Tls:
    """A server certificate and key, and the CA that signed them (what clients verify with)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def issue(cls, directory: Path, ips: list[str], ca_name: str = "corral-test-store-ca") -> Tls:
        """A new CA in `directory` and a certificate it signs for localhost and `ips`."""
        ca = pki.authority(directory, ca_name)
        key, cert = pki.serving(ca, directory, "redis", ["localhost"], ips)
        return cls(ca=ca[1], cert=cert, key=key)


class RedisServer:
    """redis-server on 127.0.0.1:`port` with its data in a temp dir; a context manager."""

    def __init__(
        self,
        password: str | None = None,
        port: int | None = None,
        log: Log | None = None,
        tls: Tls | None = None,
    ) -> None:
        self.tree = install(log)
        self.port = port or free_port()
        self.password = password
        self.tls = tls
        self._dir = Path(tempfile.mkdtemp(prefix="corral-redis-"))
        self._child: childproc.Child | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        if self.tls is None:
            return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=5)
        # The chain is verified, not the name: a test may give the server a certificate for
        # another address on purpose, and this client only probes and inspects.
        return redis.Redis(
            host=HOST, port=self.port, password=self.password, socket_timeout=5,
            ssl=True, ssl_ca_certs=str(self.tls.ca), ssl_check_hostname=False,
        )  # fmt: skip

    def start(self) -> None:
        argv = [
            str(binary(self.tree)),
            "--bind", HOST, *self._listen(), "--dir", str(self._dir),
            # Saved on SIGTERM (a save point is configured), so a restart keeps the data.
            "--save", "3600 1", "--appendonly", "no", "--daemonize", "no",
        ]  # fmt: skip
        if self.password:
            argv += ["--requirepass", self.password]
        env = {**os.environ, "LD_LIBRARY_PATH": library_path(self.tree)}
        self._child = childproc.Child("redis-server", argv, env)
        self._child.wait_ready(self._answers, START_TIMEOUT, "answering PING")

    def _listen(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
            "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def stop(self) -> None:
        """SIGTERM (Redis saves and exits), keeping the data dir for a later start()."""
        if self._child is not None:
            self._child.close()
            self._child = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def _answers(self) -> bool:
        try:
            with self.client() as probe:
                return bool(probe.ping())
        except redis.RedisError:
            return False

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="fetch and unpack redis-server into the cache (once)")
    serve = sub.add_parser("serve", help="run it on loopback until Ctrl-C")
    serve.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "install":
        print(binary(install()))
        return 0
    with RedisServer(port=args.port) as server:
        print(f"redis-server on {server.url} (Ctrl-C to stop)", file=sys.stderr)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
