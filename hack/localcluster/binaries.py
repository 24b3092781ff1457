"""The pinned binaries, and building each from its Go module into `<cache>/bin/<name>-<version>`.

Does I/O: runs the machine's `go` (found on PATH or in the usual install places), writes the
binary cache. Called by `cluster.up`, the pytest fixtures, `hack/otelcol.py` (the collector is
a tool tests run, not part of the cluster: `CLUSTER` lists the cluster's) and `hack/cluster.py
build`. A build goes to a temp dir next to the cache and is renamed into place, so a half-built
binary is never seen; a file lock makes concurrent callers wait for one build instead of starting
a second.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Literal

from localcluster import output, settings, versions

GOMOD_DIR = settings.REPO_ROOT / "hack" / "gomod"

# The version stamps k8s.io/kubernetes' own build sets, so `kubectl version` and /version say
# v1.35.x (hack/gomod/kubernetes builds from the module, which has no git metadata).
_K8S_MAJOR, _K8S_MINOR, _ = versions.KUBERNETES.split(".")
_K8S_LDFLAGS = " ".join(
    [
        "-s -w",
        f"-X k8s.io/component-base/version.gitVersion=v{versions.KUBERNETES}",
        f"-X k8s.io/component-base/version.gitMajor={_K8S_MAJOR}",
        f"-X k8s.io/component-base/version.gitMinor={_K8S_MINOR}",
        "-X k8s.io/component-base/version.gitTreeState=clean",
        f"-X k8s.io/client-go/pkg/version.gitVersion=v{versions.KUBERNETES}",
        f"-X k8s.io/client-go/pkg/version.gitMajor={_K8S_MAJOR}",
        f"-X k8s.io/client-go/pkg/version.gitMinor={_K8S_MINOR}",
    ]
)


class BuildError(RuntimeError):
    """A binary could not be built; the message carries the go command and its output."""


@dataclasses.dataclass(frozen=True)
class Binary:
    name: str
    version: str
    package: str
    # Binaries of one group are built by one `go` invocation: `go build` in the
    # hack/gomod/<group> module, or `go install package@version`.
    group: str
    mode: Literal["build", "install"]
    ldflags: str
    # Part of the local control plane (started by `cluster.up`), or a tool tests run themselves.
    cluster: bool = True
    # Go build tags, and the file `go` writes when it is not `name` (`go install` names a
    # binary after its package: the CNI plugin `bridge` is cached as `cni-bridge`).
    tags: str = ""
    output: str = ""
    # A static binary (CGO_ENABLED=0): it runs in an image with no C library.
    static: bool = False

    @property
    def built_name(self) -> str:
        return self.output or self.name


BINARIES: tuple[Binary, ...] = (
    Binary("etcd", versions.ETCD, "go.etcd.io/etcd/server/v3", "etcd", "build", "-s -w"),
    *(
        Binary(
            name,
            versions.KUBERNETES,
            f"k8s.io/kubernetes/cmd/{name}",
            "kubernetes",
            "build",
            _K8S_LDFLAGS,
        )
        for name in (
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubectl",
            "kubelet",
            "kube-proxy",
        )
    ),
    # The real node's container runtime: containerd 2.x, its runc shim and `ctr` (image import).
    # The snapshotters this machine cannot use are left out (they also need C headers).
    *(
        Binary(
            name,
            versions.CONTAINERD,
            f"github.com/containerd/containerd/v2/cmd/{name}",
            "containerd",
            "install",
            f"-s -w -X github.com/containerd/containerd/v2/version.Version=v{versions.CONTAINERD}",
            tags="no_btrfs no_devmapper no_zfs",
        )
        for name in ("containerd", "containerd-shim-runc-v2", "ctr")
    ),
    # The CNI plugins the node's bridge network chains (see `node.cni_config`).
    *(
        Binary(
            f"cni-{package.rsplit('/', 1)[1]}",
            versions.CNI_PLUGINS,
            f"github.com/containernetworking/plugins/plugins/{package}",
            "cni",
            "install",
            "-s -w",
            output=package.rsplit("/", 1)[1],
        )
        for package in ("main/bridge", "main/loopback", "ipam/host-local", "meta/portmap")
    ),
    Binary(
        "coredns",
        versions.COREDNS,
        "corral.dev/hack/gomod/coredns",
        "coredns",
        "build",
        "-s -w",
    ),
    # The pause process of the node's locally built pause image (`images.pause`).
    Binary("pause", "1", "corral.dev/hack/gomod/pause", "pause", "build", "-s -w", static=True),
    Binary("kwok", versions.KWOK, "sigs.k8s.io/kwok/cmd/kwok", "kwok", "install", "-s -w"),
    Binary(
        "helm",
        versions.HELM,
        "helm.sh/helm/v4/cmd/helm",
        "helm",
        "install",
        f"-s -w -X helm.sh/helm/v4/internal/version.version=v{versions.HELM}",
    ),
    Binary(
        "otelcol",
        versions.OTELCOL,
        "corral.dev/hack/gomod/otelcol",
        "otelcol",
        "build",
        f"-s -w -X main.version={versions.OTELCOL}",
        cluster=False,
    ),
)
BY_NAME: Mapping[str, Binary] = {b.name: b for b in BINARIES}
CLUSTER: tuple[str, ...] = tuple(b.name for b in BINARIES if b.cluster)


@dataclasses.dataclass(frozen=True)
class GoCommand:
    argv: list[str]
    cwd: Path
    env: dict[str, str]


def path(config: settings.Settings, name: str) -> Path:
    """Where the pinned binary `name` lives in the cache (whether or not it is built yet)."""
    binary = BY_NAME[name]
    return config.bin_dir / f"{binary.name}-{binary.version}"


def missing(config: settings.Settings, names: Iterable[str] | None = None) -> list[Binary]:
    wanted = BINARIES if names is None else [BY_NAME[n] for n in names]
    return [b for b in wanted if not path(config, b.name).is_file()]


def ensure(
    config: settings.Settings, names: Iterable[str] | None = None, log: output.Log | None = None
) -> dict[str, Path]:
    """Build whichever of `names` (default: all) is missing; return name -> binary path."""
    say = log or output.stderr
    wanted = [b.name for b in BINARIES] if names is None else list(names)
    if missing(config, wanted):
        config.bin_dir.mkdir(parents=True, exist_ok=True)
        with _build_lock(config.bin_dir, say):
            todo = missing(config, wanted)  # another process may have built them meanwhile
            if todo:
                go = find_go()
                for group in dict.fromkeys(b.group for b in todo):
                    _build_group(config, go, [b for b in todo if b.group == group], say)
    return {name: path(config, name) for name in wanted}


def find_go(environ: Mapping[str, str] | None = None) -> Path:
    """The `go` to build with: $GO, PATH, $GOROOT/bin, then the usual install locations."""
    env = os.environ if environ is None else environ
    home = Path(env.get("HOME", str(Path.home())))
    candidates: list[str | Path | None] = [
        env.get("GO"),
        shutil.which("go", path=env.get("PATH")),
        Path(env["GOROOT"]) / "bin" / "go" if env.get("GOROOT") else None,
        Path("/usr/local/go/bin/go"),
        Path("/usr/lib/go/bin/go"),
        home / "go" / "bin" / "go",
        home / ".local" / "go" / "bin" / "go",
        *sorted(home.glob("sdk/go*/bin/go"), reverse=True),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise BuildError(
        "no `go` found (looked at $GO, PATH, $GOROOT/bin, /usr/local/go/bin, ~/go/bin, ~/sdk): "
        "install Go >= 1.25 from https://go.dev/dl and put it on PATH, or set GO=/path/to/go"
    )


def go_command(binaries: list[Binary], out_dir: Path, go: Path) -> GoCommand:
    """The one `go build`/`go install` that produces `binaries` (one group) in `out_dir`."""
    first = binaries[0]
    env = dict(os.environ)
    env["PATH"] = f"{go.parent}{os.pathsep}{env.get('PATH', '')}"
    tags = ["-tags", first.tags] if first.tags else []
    if first.static:
        env["CGO_ENABLED"] = "0"
    if first.mode == "install":
        env["GOBIN"] = str(out_dir)
        argv = [
            str(go),
            "install",
            "-trimpath",
            *tags,
            "-ldflags",
            first.ldflags,
            *(f"{b.package}@v{b.version}" for b in binaries),
        ]
        # Outside any module, so a go.mod or go.work around the cwd cannot interfere.
        return GoCommand(argv, out_dir, env)
    target = f"{out_dir}/{first.name}" if len(binaries) == 1 else f"{out_dir}/"
    argv = [
        str(go),
        "build",
        "-trimpath",
        *tags,
        "-ldflags",
        first.ldflags,
        "-o",
        target,
        *(b.package for b in binaries),
    ]
    return GoCommand(argv, GOMOD_DIR / first.group, env)


def check_gomod_pins() -> None:
    """Fail if hack/gomod/*/go.mod and `versions` disagree (they must be bumped together)."""
    pins = [
        ("kubernetes", "k8s.io/kubernetes", versions.KUBERNETES),
        ("etcd", "go.etcd.io/etcd/server/v3", versions.ETCD),
        ("coredns", "github.com/coredns/coredns", versions.COREDNS),
        ("otelcol", "go.opentelemetry.io/collector/otelcol", versions.OTELCOL),
        (
            "otelcol",
            "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter",
            versions.OTELCOL_CONTRIB,
        ),
    ]
    for group, module, version in pins:
        gomod = GOMOD_DIR / group / "go.mod"
        text = gomod.read_text()
        if not re.search(
            rf"^\s*(require\s+)?{re.escape(module)} v{re.escape(version)}\s", text, re.MULTILINE
        ):
            raise BuildError(
                f"{gomod} does not require {module} v{version} (versions.py): bump both together"
            )


def _build_group(config: settings.Settings, go: Path, todo: list[Binary], log: output.Log) -> None:
    if todo[0].mode == "build":
        check_gomod_pins()
    names = ", ".join(f"{b.name} {b.version}" for b in todo)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=config.bin_dir))
    try:
        command = go_command(todo, tmp, go)
        slow = (
            " (a first build takes ~15-30 min on 2 cores)" if todo[0].group == "kubernetes" else ""
        )
        log(f"building {names} with {go}{slow}")
        log(f"  $ cd {shlex.quote(str(command.cwd))} && {shlex.join(command.argv)}")
        started = time.monotonic()
        returncode, go_output = _run_with_heartbeat(
            command, lambda: log(f"  still building {names} ({time.monotonic() - started:.0f}s)")
        )
        elapsed = time.monotonic() - started
        if returncode != 0:
            raise BuildError(
                f"building {names} failed (exit {returncode}, {elapsed:.0f}s):\n"
                f"$ cd {shlex.quote(str(command.cwd))} && {shlex.join(command.argv)}\n{go_output}"
            )
        for binary in todo:
            built = tmp / binary.built_name
            if not built.is_file():
                raise BuildError(f"`go` succeeded but left no {built}:\n{go_output}")
            os.replace(built, path(config, binary.name))
        log(f"built {names} in {elapsed:.0f}s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_with_heartbeat(
    command: GoCommand, heartbeat: Callable[[], None], every: float = 60.0
) -> tuple[int, str]:
    """Run `command` to completion, calling `heartbeat` every `every` seconds meanwhile."""
    process = subprocess.Popen(
        command.argv,
        cwd=command.cwd,
        env=command.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    while True:
        try:
            go_output, _ = process.communicate(timeout=every)
        except subprocess.TimeoutExpired:
            heartbeat()
        else:
            return process.returncode, go_output


@contextlib.contextmanager
def _build_lock(bin_dir: Path, log: output.Log) -> Iterator[None]:
    with open(bin_dir / ".build.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process building into {bin_dir}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
