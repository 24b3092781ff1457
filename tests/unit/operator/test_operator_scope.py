"""Kopf's runtime scanning (which lists CRDs and namespaces cluster-wide) is off exactly when
the operator watches namespaces named one by one: that mode needs no cluster-scoped RBAC."""

from __future__ import annotations

import kopf
import pytest

from corral.operator import main, settings, starting


@pytest.mark.parametrize(
    ("namespaces", "exact"),
    [
        ([], False),  # cluster-wide
        (["team-a"], True),
        (["team-a", "team-b"], True),
        (["team-*"], False),  # a glob needs namespace scanning to find its matches
        (["team-a", "prod-?"], False),
    ],
)
def test_scanning_is_off_only_for_namespaces_named_exactly(
    namespaces: list[str], exact: bool
) -> None:
    assert main.exact_names(namespaces) is exact
    kopf_settings = kopf.OperatorSettings()
    starting.configure(kopf_settings, settings.load(), exact_namespaces=exact)
    assert kopf_settings.scanning.disabled is exact


@pytest.mark.parametrize(
    ("namespaces", "kept", "left_out"),
    [
        ([], ["team-a", "kube-system"], []),
        (["team-*"], ["team-a", "team-b"], ["prod", "kube-system"]),
        (["team-*, !team-b", "prod"], ["team-a", "prod"], ["team-b", "kube-system"]),
    ],
)
def test_a_cluster_wide_child_watch_keeps_the_namespaces_kopf_watches(
    namespaces: list[str], kept: list[str], left_out: list[str]
) -> None:
    accept = starting.namespace_filter(namespaces, exact=main.exact_names(namespaces))
    assert [ns for ns in kept if accept(ns)] == kept
    assert [ns for ns in left_out if accept(ns)] == []
