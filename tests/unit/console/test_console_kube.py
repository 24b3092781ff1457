"""Loading the user's credentials as kubectl does, and reading the API server's rejections.

No API server is contacted: `connect` only reads the kubeconfig (and never writes it back).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from corral.console import kube, settings

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
    "users": [{"name": "u", "user": {"token": "t0ken"}}],
    "contexts": [
        {"name": "team-a", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
        {"name": "bare", "context": {"cluster": "c", "user": "u"}},
    ],
    "current-context": "team-a",
}


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    return path


def connect(**kwargs: object) -> kube.Kube:
    async def run() -> kube.Kube:
        client = await kube.connect(settings.Settings(**kwargs))
        await client.close()
        return client

    return asyncio.run(run())


def test_the_current_contexts_namespace_is_the_default(kubeconfig: Path) -> None:
    before = kubeconfig.read_text()
    client = connect(kubeconfig=kubeconfig)
    assert client.namespace == "team-a"
    assert client.api.configuration.host == "https://127.0.0.1:9"
    assert kubeconfig.read_text() == before  # stores nothing


def test_another_context_without_a_namespace_means_default(kubeconfig: Path) -> None:
    assert connect(kubeconfig=kubeconfig, context="bare").namespace == "default"


def test_kubeconfig_env_is_read_like_kubectl(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{kubeconfig}")
    assert connect().namespace == "team-a"


def test_an_unknown_context_names_the_ones_there_are(kubeconfig: Path) -> None:
    with pytest.raises(kube.ConfigError, match=r"--context prod: not in .* team-a, bare"):
        connect(kubeconfig=kubeconfig, context="prod")


def test_a_missing_kubeconfig_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(kube.ConfigError, match="no such file"):
        connect(kubeconfig=tmp_path / "nope")


def test_no_kubeconfig_and_no_pod_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kube.ConfigError, match="pass --kubeconfig"):
        connect()


def test_a_status_gives_its_message_and_field_causes() -> None:
    text = (
        '{"kind":"Status","status":"Failure","message":"Persona.corral.dev \\"p\\" is invalid",'
        '"reason":"Invalid","details":{"causes":[{"reason":"FieldValueInvalid",'
        '"message":"Invalid value: \\"\\": too short","field":"spec.systemPrompt"}]},"code":422}'
    )
    err = kube.status_error(422, text)
    assert err.message == 'Persona.corral.dev "p" is invalid'
    assert err.causes == (kube.Cause("spec.systemPrompt", 'Invalid value: "": too short'),)


def test_an_answer_that_is_not_a_status_is_kept_as_text() -> None:
    err = kube.status_error(403, "forbidden: no\n")
    assert (err.status, err.message, err.forbidden) == (403, "forbidden: no", True)


def test_watch_lines_of_any_length_split_across_chunks() -> None:
    big = b'{"type":"ADDED","object":{"x":"' + b"y" * 300_000 + b'"}}'

    async def chunks() -> AsyncIterator[bytes]:
        for piece in (big[:1000], big[1000:] + b"\n\n" + b'{"a"', b":1}\n", b'{"tail":1}'):
            yield piece

    async def collect() -> list[bytes]:
        return [line async for line in kube.lines(chunks())]

    assert asyncio.run(collect()) == [big, b'{"a":1}', b'{"tail":1}']
