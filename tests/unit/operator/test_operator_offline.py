"""`corral render`: inputs it accepts and how it explains the ones it cannot render."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from corral.operator import offline

REPO = Path(__file__).parents[3]
AGENT = """\
apiVersion: corral.dev/v1alpha1
kind: Agent
metadata: {name: support}
spec:
  model: {provider: openai, name: gpt-4o-mini}
"""


def render(*paths: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = offline.run(list(paths), image=None, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "in.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_shipped_examples_render_to_children_of_every_agent() -> None:
    code, out, err = render(REPO / "examples")
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    agents = {
        d["metadata"]["name"]
        for f in (REPO / "examples").glob("*.yaml")
        for d in yaml.safe_load_all(f.read_text())
        if d and d.get("kind") == "Agent"
    }
    assert deployments == agents
    assert "REPLACE_ME" not in out


def test_an_agent_without_namespace_renders_into_default(tmp_path: Path) -> None:
    code, out, _ = render(write(tmp_path, AGENT))
    assert code == 0
    assert {d["metadata"]["namespace"] for d in yaml.safe_load_all(out)} == {"default"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (AGENT.replace("openai", "azure"), "in.yaml: Agent 'support': spec.model.provider"),
        (AGENT + "  personaRef: {name: tone}\n", "in.yaml: not found: Persona 'tone'"),
        (AGENT.replace("kind: Agent", "kind: Agnet"), "in.yaml: document 1: kind 'Agnet'"),
        ("a: [1, 2\n", "in.yaml: not valid YAML"),
        ("- just\n- a list\n", "in.yaml: document 1 is not a mapping"),
        (AGENT.replace("metadata: {name: support}", "metadata: {}"), "Agent has no metadata.name"),
        (AGENT + "---\n" + AGENT, "Agent 'support' is also defined in"),
    ],
    ids=[
        "invalid-field",
        "missing-reference",
        "unknown-kind",
        "bad-yaml",
        "not-a-mapping",
        "no-name",
        "duplicate",
    ],
)
def test_a_bad_manifest_names_the_file_the_field_and_why(
    tmp_path: Path, text: str, expected: str
) -> None:
    code, out, err = render(write(tmp_path, text))
    assert code == 1
    assert out == ""
    assert expected in err


def test_a_missing_path_is_reported(tmp_path: Path) -> None:
    code, _, err = render(tmp_path / "nope.yaml")
    assert code == 1
    assert "nope.yaml: no such file or directory" in err


def test_a_secret_not_given_is_noted_but_does_not_fail(tmp_path: Path) -> None:
    keyed = AGENT.replace("gpt-4o-mini}", "gpt-4o-mini, apiKeySecretRef: {name: openai, key: k}}")
    code, out, err = render(write(tmp_path, keyed))
    assert code == 0
    assert "Secret 'openai' (key 'k')" in err
    assert "secretKeyRef" in out


def test_string_data_and_data_secrets_hash_alike(tmp_path: Path) -> None:
    keyed = AGENT.replace("gpt-4o-mini}", "gpt-4o-mini, apiKeySecretRef: {name: openai, key: k}}")
    as_string = "apiVersion: v1\nkind: Secret\nmetadata: {name: openai}\nstringData: {k: abc}\n"
    as_data = "apiVersion: v1\nkind: Secret\nmetadata: {name: openai}\ndata: {k: YWJj}\n"
    one = render(write(tmp_path, keyed + "---\n" + as_string, "a.yaml"))[1]
    other = render(write(tmp_path, keyed + "---\n" + as_data, "b.yaml"))[1]
    assert one == other
