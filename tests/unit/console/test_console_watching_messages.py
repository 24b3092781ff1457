"""The live registry's SSE messages (the pure part of `watching`)."""

from __future__ import annotations

import datetime
import json
from typing import Any

from corral.console import kinds, listing, rows, watching

NOW = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)


def persona(name: str, namespace: str = "shop", ready: str = "True") -> dict[str, Any]:
    return {
        "kind": "Persona",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "Valid"}]},
    }


def view(**filters: str) -> watching.View:
    return watching.View(rows.Filters(**filters), lambda r: f"<tr id={r.key}>", lambda: NOW)


def parse(message: str) -> tuple[str, dict[str, Any]]:
    event, data = message.strip().split("\n")
    return event.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def test_a_change_that_matches_is_an_upsert_with_the_rendered_row() -> None:
    event, data = parse(view().event("MODIFIED", persona("tone")))
    assert (event, data) == (
        "upsert",
        {"key": "row-persona-shop-tone", "html": "<tr id=row-persona-shop-tone>"},
    )


def test_a_deletion_or_a_change_out_of_the_filters_removes_the_row() -> None:
    assert parse(view().event("DELETED", persona("tone")))[0] == "remove"
    assert (
        parse(view(ready="true").event("MODIFIED", persona("tone", ready="False")))[0] == "remove"
    )


def test_a_sync_carries_every_matching_row_of_its_scope() -> None:
    objs = [persona("a"), persona("b", ready="False"), persona("c", namespace="other")]
    lst = listing.Listing(kinds.PERSONA, objs, [], [])
    event, data = parse(watching.sync(lst, None, view(ready="true")))
    assert event == "sync"
    assert (data["kind"], data["namespace"]) == ("Persona", None)
    assert [r["key"] for r in data["rows"]] == ["row-persona-shop-a", "row-persona-other-c"]
    source = listing.Source(kinds.PERSONA, "other", kinds.PERSONA.collection("other"), "9")
    _, scoped = parse(watching.sync(lst, source, view()))
    assert scoped["namespace"] == "other"
    assert [r["key"] for r in scoped["rows"]] == ["row-persona-other-c"]
