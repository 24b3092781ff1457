"""The real node's container images, built here: no container registry can be reached.

- `pause`: the pod sandbox image, a hand-built OCI layout (one layer holding the static `pause`
  binary from hack/gomod/pause, a config, a manifest) written as an OCI archive.
- `python_base`: a Python base image from Debian packages (mmdebstrap, Debian's own python3),
  committed into buildah's storage under `<cache>/buildah`.
- `corral`: the project's Dockerfile, unchanged, built by buildah (daemonless) with its
  `PYTHON_IMAGE` argument pointing at that base, exported as an OCI archive.

Every image is cached by content under `<cache>/images`: its tag is a digest of what it is built
from (for `corral`: the Dockerfile and the files .dockerignore lets in), so an unchanged tree
never rebuilds. `node` imports the archives into containerd with `ctr images import`.

Does I/O: runs mmdebstrap, buildah and ctr; writes `<cache>/images` and `<cache>/buildah`.
Called by `node.start` (pause), the e2e fixtures and `hack/demo.py` (corral), and
`hack/cluster.py image`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from localcluster import binaries, debian, nodeconfigs, output, settings

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the Dockerfile's stages need from a base: python3 >= 3.11 (the project's floor), pip to
# install uv, CA certificates for PyPI.
BASE_PACKAGES = ("python3", "python3-pip", "ca-certificates")
# Where Debian's ca-certificates puts its bundle; uv reads SSL_CERT_FILE. The build mounts the
# host's trust store there (`HOST_CERTS`), so a build behind a TLS-inspecting proxy trusts what
# the host trusts, and the image keeps Debian's own bundle.
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
HOST_CERTS = Path("/etc/ssl/certs")
BASE_ENV = ("LANG=C.UTF-8", f"SSL_CERT_FILE={CA_BUNDLE}")
BASE_REPOSITORY = "localhost/corral/python"
CORRAL_REPOSITORY = "localhost/corral/corral"
# The files the Dockerfile reads; .dockerignore lets in exactly these.
CONTEXT_FILES = ("Dockerfile", "pyproject.toml", "uv.lock", "README.md")
CONTEXT_DIRS = ("src",)
KEEP_ARCHIVES = 3  # several worktrees may share one cache


class ImageError(RuntimeError):
    """An image could not be built or imported; the message has the command and its output."""


@dataclasses.dataclass(frozen=True)
class Image:
    reference: str  # repository:tag, as pods name it
    archive: Path  # an OCI archive `ctr images import` takes

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


def images_dir(config: settings.Settings) -> Path:
    return config.cache_dir / "images"


def pause(config: settings.Settings) -> Image:
    """The sandbox image: `pause` as a one-layer OCI archive (written once)."""
    archive = images_dir(config) / "pause-1.tar"
    image = Image(nodeconfigs.PAUSE_IMAGE, archive)
    if archive.is_file():
        return image
    binary = binaries.ensure(config, ["pause"])["pause"]
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(oci_archive(image.reference, {"pause": binary.read_bytes()}, ["/pause"]))
    os.replace(tmp, archive)
    return image


def oci_archive(reference: str, files: dict[str, bytes], entrypoint: list[str]) -> bytes:
    """An OCI image layout, as a tar, of one layer holding `files` (mode 0755) at the root."""
    layer = _tar({name: (data, 0o755) for name, data in files.items()})
    layer_digest = _digest(layer)
    image_config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "User": "65535:65535"},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": _descriptor("application/vnd.oci.image.config.v1+json", image_config),
            "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
        }
    ).encode()
    tag = reference.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                **_descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
                "annotations": {
                    "io.containerd.image.name": reference,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    entries = {
        "oci-layout": (json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
        "index.json": (json.dumps(index).encode(), 0o644),
        **{
            f"blobs/sha256/{_digest(blob).split(':')[1]}": (blob, 0o644)
            for blob in (layer, image_config, manifest)
        },
    }
    return _tar(entries)


def python_base(config: settings.Settings, log: output.Log) -> str:
    """The Python base image in buildah's storage (built once per package list); its name."""
    key = hashlib.sha256(
        json.dumps([DEBIAN_SUITE, DEBIAN_MIRROR, BASE_PACKAGES, BASE_ENV]).encode()
    ).hexdigest()[:12]
    reference = f"{BASE_REPOSITORY}:{DEBIAN_SUITE}-{key}"
    if _buildah(config, "inspect", "--type", "image", reference, check=False).returncode == 0:
        return reference
    debian.ensure(config, debian.IMAGES, log)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=config.cache_dir) as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        log(f"building {reference} from Debian {DEBIAN_SUITE} packages with mmdebstrap")
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                # Debian marks its Python as apt's (PEP 668); in an image, the image owns it.
                '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
                '--customize-hook=ln -sf python3 "$1"/usr/bin/python',
                DEBIAN_SUITE,
                str(rootfs),
                DEBIAN_MIRROR,
            ]
        )
        container = _buildah(config, "from", "scratch").stdout.strip()
        try:
            _buildah(config, "add", container, str(rootfs), "/")
            envs = [f"--env={env}" for env in BASE_ENV]
            _buildah(config, "config", "--cmd=python3", *envs, container)
            _buildah(config, "commit", "--rm", container, reference)
        except ImageError:
            _buildah(config, "rm", container, check=False)
            raise
    log(f"built {reference} in {time.monotonic() - started:.0f}s")
    return reference


def corral(config: settings.Settings, log: output.Log | None = None) -> Image:
    """The project's image, built from its Dockerfile unless this tree's is already cached."""
    say = log or output.stderr
    tag = context_digest(settings.REPO_ROOT)[:16]
    image = Image(f"{CORRAL_REPOSITORY}:{tag}", images_dir(config) / f"corral-{tag}.tar")
    if image.archive.is_file():
        return image
    with _lock(config):
        if image.archive.is_file():
            return image
        try:
            _build(config, image, say)
        finally:
            _release_storage(config)
    return image


def _build(config: settings.Settings, image: Image, say: output.Log) -> None:
    base = python_base(config, say)
    started = time.monotonic()
    say(f"building {image.reference} from {settings.REPO_ROOT / 'Dockerfile'} with buildah")
    _buildah(
        config,
        "build",
        "--isolation=chroot",
        "--layers",
        f"--build-arg=PYTHON_IMAGE={base}",
        *([f"--volume={HOST_CERTS}:{HOST_CERTS}:ro"] if HOST_CERTS.is_dir() else []),
        f"--tag={image.reference}",
        f"--file={settings.REPO_ROOT / 'Dockerfile'}",
        str(settings.REPO_ROOT),
    )
    tmp = image.archive.with_suffix(f".{os.getpid()}.tmp")
    _buildah(config, "push", image.reference, f"oci-archive:{tmp}:{image.reference}")
    os.replace(tmp, image.archive)
    say(f"built {image.reference} in {time.monotonic() - started:.0f}s")
    kept = _prune(images_dir(config), keep=KEEP_ARCHIVES)
    listed = _buildah(config, "images", "--format={{.Name}}:{{.Tag}}", check=False).stdout
    stale = [
        name
        for name in listed.split()
        if (name.startswith(f"{CORRAL_REPOSITORY}:") and name.rsplit(":", 1)[1] not in kept)
        or (name.startswith(f"{BASE_REPOSITORY}:") and name != base)
    ]
    if stale:
        _buildah(config, "rmi", *stale, check=False)
    # Dangling images: the build stages of earlier builds (a later build redoes its own).
    _buildah(config, "rmi", "--prune", check=False)


def _release_storage(config: settings.Settings) -> None:
    """Leave no mounts behind: buildah's working containers go, and so does the mount its
    overlay driver puts on its own directory (it makes it again on the next build)."""
    _buildah(config, "rm", "--all", check=False)
    overlay = config.cache_dir / "buildah" / "storage" / "overlay"
    mounts = Path("/proc/self/mountinfo").read_text().split()
    if str(overlay) in mounts:
        subprocess.run(["umount", str(overlay)], capture_output=True)


def _prune(directory: Path, keep: int) -> set[str]:
    """Drop all but the `keep` newest archives of the project's image (each is ~130 MB);
    return the tags kept."""
    archives = sorted(directory.glob("corral-*.tar"), key=lambda p: p.stat().st_mtime)
    for old in archives[:-keep]:
        old.unlink(missing_ok=True)
    return {p.stem.removeprefix("corral-") for p in archives[-keep:]}


def context_digest(root: Path) -> str:
    """A digest of the files the Dockerfile builds from: the image's cache key."""
    digest = hashlib.sha256()
    paths = [root / name for name in CONTEXT_FILES]
    for directory in CONTEXT_DIRS:
        paths += sorted(
            p
            for p in (root / directory).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
        )
    for path in paths:
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def import_into(config: settings.Settings, ctr: Path, image: Image) -> None:
    """Load `image` into the node's containerd (the namespace kubelet's CRI uses)."""
    _run(
        [
            str(ctr),
            f"--address={config.containerd_socket}",
            f"--namespace={nodeconfigs.CONTAINERD_NAMESPACE}",
            "images",
            "import",
            "--no-unpack=false",
            str(image.archive),
        ]
    )


def imported(config: settings.Settings, ctr: Path, image: Image) -> bool:
    result = subprocess.run(
        [
            str(ctr),
            f"--address={config.containerd_socket}",
            f"--namespace={nodeconfigs.CONTAINERD_NAMESPACE}",
            "images",
            "ls",
            "--quiet",
        ],
        capture_output=True,
        text=True,
    )
    return image.reference in result.stdout.split()


def _buildah(
    config: settings.Settings, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    store = config.cache_dir / "buildah"
    argv = [
        "buildah",
        f"--root={store / 'storage'}",
        f"--runroot={store / 'run'}",
        "--storage-driver=overlay",
        *args,
    ]
    return _run(argv, check=check)


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise ImageError(
            f"`{' '.join(argv)}` failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


@contextlib.contextmanager
def _lock(config: settings.Settings) -> Iterator[None]:
    path = config.cache_dir / "locks" / "images.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tar(entries: dict[str, tuple[bytes, int]]) -> bytes:
    """A reproducible tar: sorted names, zero mtimes, root-owned."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            data, mode = entries[name]
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": _digest(data), "size": len(data)}
