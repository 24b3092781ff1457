"""What the registry tells a user whose RBAC narrowed it (pure part of `listing`)."""

from __future__ import annotations

from corral.console import kinds, listing


def source(kind: kinds.Kind, namespace: str | None) -> listing.Source:
    return listing.Source(kind, namespace, kind.collection(namespace), "1")


def test_a_cluster_wide_listing_says_nothing() -> None:
    assert (
        listing.notice([listing.Listing(kinds.AGENT, [], [source(kinds.AGENT, None)], [])]) is None
    )


def test_a_narrowed_listing_names_the_kinds_and_the_namespaces_shown_and_forbidden() -> None:
    agents = listing.Listing(kinds.AGENT, [], [source(kinds.AGENT, "team-a")], ["", "team-b"])
    tools = listing.Listing(kinds.TOOL, [], [source(kinds.TOOL, None)], [])
    text = listing.notice([agents, tools])
    assert text is not None
    assert "You may not list agents across all namespaces" in text
    assert "tools" not in text.split("so the")[0]
    assert "team-a." in text
    assert "Forbidden too: team-b." in text
    assert "-n NAMESPACE" in text


def test_a_missing_crd_says_to_install_corral_first() -> None:
    absent = listing.Listing(kinds.MCPSERVER, [], [], [], not_installed=True)
    text = listing.notice([absent])
    assert text is not None
    assert "mcpservers.corral.dev" in text
    assert "helm install corral charts/corral" in text
