"""The node's images: the hand-built OCI archive is a valid, reproducible image layout, and the
project image's cache key follows exactly the files the Dockerfile builds from (pure, or files
under tmp_path only)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

from localcluster import images


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def blob(archive: bytes, digest: str) -> bytes:
    data = read(archive, f"blobs/sha256/{digest.split(':')[1]}")
    assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest
    return data


def test_the_oci_archive_names_the_image_and_every_blob_matches_its_digest() -> None:
    archive = images.oci_archive("localhost/x/pause:1", {"pause": b"\x7fELF..."}, ["/pause"])
    assert json.loads(read(archive, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(read(archive, "index.json"))["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "localhost/x/pause:1"
    manifest = json.loads(blob(archive, entry["digest"]))
    config = json.loads(blob(archive, manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/pause"]
    (layer_ref,) = manifest["layers"]
    layer = blob(archive, layer_ref["digest"])
    assert config["rootfs"]["diff_ids"] == [layer_ref["digest"]]
    pause = members(layer)["pause"]
    assert pause.mode == 0o755
    assert read(layer, "pause") == b"\x7fELF..."


def test_the_oci_archive_is_reproducible() -> None:
    build = lambda: images.oci_archive("localhost/x/y:1", {"a": b"1"}, ["/a"])  # noqa: E731
    assert build() == build()


def test_the_image_key_changes_with_the_sources_and_not_with_bytecode(tmp_path: Path) -> None:
    for name in images.CONTEXT_FILES:
        (tmp_path / name).write_text(name)
    package = tmp_path / "src" / "corral"
    package.mkdir(parents=True)
    (package / "cli.py").write_text("print('a')\n")
    first = images.context_digest(tmp_path)

    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"bytecode")
    assert images.context_digest(tmp_path) == first

    (package / "cli.py").write_text("print('b')\n")
    assert images.context_digest(tmp_path) != first
