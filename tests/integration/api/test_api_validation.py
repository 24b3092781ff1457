"""The API server and the pydantic models reject the same invalid manifests, naming the field.

Each row of api_cases.CASES is applied to the real API server (through the generated CRDs) and
validated by corral.api.resources.parse (what `corral render` uses offline).
"""

from __future__ import annotations

import json

import pytest
from api_cases import CASES, Case
from pydantic import ValidationError

from corral.api import resources
from localcluster import handles

IDS = [case.id for case in CASES]


def test_the_table_covers_every_kind_with_at_least_25_cases() -> None:
    kinds = {case.manifest["kind"] for case in CASES}

    assert len(CASES) >= 25
    assert kinds == {"Agent", "Persona", "Tool", "MCPServer"}
    assert len(set(IDS)) == len(IDS)


@pytest.mark.cluster
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_api_server_rejects_the_manifest_naming_the_field(
    cluster: handles.Cluster, corral_crds: list[str], module_namespace: str, case: Case
) -> None:
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "-n",
        module_namespace,
        "-f",
        "-",
        input=json.dumps(case.manifest),
        check=False,
    )

    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert case.field in result.stderr, result.stderr


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_models_reject_the_manifest_naming_the_field(case: Case) -> None:
    with pytest.raises(ValidationError) as raised:
        resources.parse(case.manifest)

    named = [_path(error["loc"]) for error in raised.value.errors()]
    messages = [error["msg"] for error in raised.value.errors()]
    assert case.field in named or any(case.field in message for message in messages), (
        named,
        messages,
    )


def _path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location in the API server's notation: spec.tools[0].name."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]
