"""`corral render`: print, offline, the objects the operator would apply for some manifests.

Reads files (I/O) and writes YAML to the given streams; everything else is the operator's own
pure path (`resolving` with an in-memory reader, `rendering.children`). Called by `cli`.
Secrets in the given files feed the pod-template hash exactly as in the cluster; a Secret that
is not given is reported on `err` and hashed as absent. Owner references need the Agent's uid,
which only the API server assigns, so they are rendered only for manifests that carry one.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from corral.api import groups
from corral.operator import errors, hashing, resolving, settings
from corral.operator.rendering import children

ObjectKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclasses.dataclass
class Manifests:
    """Objects read from files, by (kind, namespace, name), with the file each came from."""

    objects: dict[ObjectKey, dict[str, Any]] = dataclasses.field(default_factory=dict)
    sources: dict[ObjectKey, Path] = dataclasses.field(default_factory=dict)

    def agents(self) -> list[ObjectKey]:
        return [key for key in self.objects if key[0] == groups.AGENT]


@dataclasses.dataclass
class ManifestReader:
    """`resolving.Reader` over manifests; remembers Secrets it had to treat as absent."""

    manifests: Manifests
    absent_secrets: set[tuple[str, str, str]] = dataclasses.field(default_factory=set)

    async def persona(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.manifests.objects.get((groups.PERSONA, namespace, name))

    async def tool(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.manifests.objects.get((groups.TOOL, namespace, name))

    async def agent(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.manifests.objects.get((groups.AGENT, namespace, name))

    async def mcp_server(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.manifests.objects.get((groups.MCPSERVER, namespace, name))

    async def secret_digest(self, namespace: str, name: str, key: str) -> str | None:
        secret = self.manifests.objects.get(("Secret", namespace, name))
        value = _secret_value(secret, key) if secret is not None else None
        if value is None:
            self.absent_secrets.add((namespace, name, key))
            return hashing.secret_digest(namespace, name, key, "\0absent")
        return hashing.secret_digest(namespace, name, key, value)


class ManifestError(Exception):
    """A file that cannot be read or a manifest that is not valid; the message says where."""


def run(paths: list[Path], image: str | None, out: TextIO, err: TextIO) -> int:
    """Render every Agent in `paths` to `out`; problems go to `err` with a non-zero result."""
    try:
        config = settings.load()
        manifests = load(paths)
    except (ManifestError, ValueError) as exc:
        print(f"corral render: {exc}", file=err)
        return 1
    reader = ManifestReader(manifests)
    documents, problems = asyncio.run(_render(manifests, reader, config, image))
    for problem in problems:
        print(f"corral render: {problem}", file=err)
    for namespace, name, secret_key in sorted(reader.absent_secrets):
        print(
            f"corral render: note: Secret {name!r} (key {secret_key!r}) in namespace"
            f" {namespace!r} is not in the given files; the config-hash annotation will differ"
            " from the cluster's",
            file=err,
        )
    if problems:
        return 1
    yaml.safe_dump_all(documents, out, sort_keys=False, explicit_start=True)
    return 0


def load(paths: list[Path]) -> Manifests:
    """Read every manifest in the files and directories (*.yaml, *.yml, *.json) given."""
    manifests = Manifests()
    for file in _files(paths):
        for index, doc in enumerate(_documents(file)):
            key = _key(doc, file, index)
            if key is None:
                continue
            if key in manifests.objects:
                raise ManifestError(
                    f"{file}: {key[0]} {key[2]!r} is also defined in {manifests.sources[key]}"
                )
            manifests.objects[key] = doc
            manifests.sources[key] = file
    return manifests


def _files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
        elif path.is_file():
            yield path
        else:
            raise ManifestError(f"{path}: no such file or directory")


def _documents(file: Path) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(file.read_text()) if doc is not None]
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{file}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ManifestError(f"{file}: not valid YAML: {exc}") from exc


def _key(doc: Any, file: Path, index: int) -> ObjectKey | None:
    """The object's key when it is one `render` uses; None for other kinds."""
    if not isinstance(doc, Mapping):
        raise ManifestError(f"{file}: document {index + 1} is not a mapping")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    ours = api_version == groups.API_VERSION
    if ours and kind not in groups.PLURALS:
        raise ManifestError(
            f"{file}: document {index + 1}: kind {kind!r} is not one of {sorted(groups.PLURALS)}"
        )
    if not (ours or (api_version == "v1" and kind == "Secret")):
        return None
    meta = doc.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name"):
        raise ManifestError(f"{file}: document {index + 1}: {kind} has no metadata.name")
    return str(kind), str(meta.get("namespace") or "default"), str(meta["name"])


def _secret_value(secret: Mapping[str, Any], key: str) -> str | None:
    """The value as the API server stores it in `data` (base64), from data or stringData."""
    string_data = secret.get("stringData") or {}
    if key in string_data:
        return base64.b64encode(str(string_data[key]).encode()).decode()
    value = (secret.get("data") or {}).get(key)
    return None if value is None else str(value)


async def _render(
    manifests: Manifests,
    reader: ManifestReader,
    config: settings.OperatorSettings,
    image: str | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every Agent's children, in input order, and one line per Agent that failed."""
    documents: list[dict[str, Any]] = []
    problems: list[str] = []
    for key in manifests.agents():
        try:
            resolved = await resolving.resolve(_with_namespace(manifests.objects[key]), reader)
            documents.extend(children.render(resolved, config, image=image).objects())
        except errors.OperatorError as exc:
            problems.append(f"{manifests.sources[key]}: {_explain(exc)}")
    return documents, problems


def _with_namespace(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(body.get("metadata") or {})
    meta.setdefault("namespace", "default")
    return {**body, "metadata": meta}


def _explain(exc: errors.OperatorError) -> str:
    if isinstance(exc, errors.MissingReference):
        return f"{exc} (pass the files that define them with -f)"
    return str(exc)
