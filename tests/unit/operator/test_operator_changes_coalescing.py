"""What counts as a change (`changes`) and how bursts of work collapse (`coalescing`)."""

from __future__ import annotations

import asyncio

import pytest

from corral.operator import changes, coalescing
from corral.operator.changes import Change

PERSONA = ("Persona", "shop", "tone")


def test_a_persona_is_news_when_listed_created_respecified_or_deleted_never_when_unchanged() -> (
    None
):
    versions = changes.Versions()
    seen = [
        versions.observe(PERSONA, None, "1"),
        versions.observe(PERSONA, "MODIFIED", "1"),
        versions.observe(PERSONA, "MODIFIED", "2"),
        versions.observe(PERSONA, None, "2"),
        versions.observe(PERSONA, "DELETED", "2"),
        versions.observe(PERSONA, "ADDED", "1"),
    ]
    assert seen == [
        Change.LISTED,
        Change.NONE,
        Change.CHANGED,
        Change.NONE,
        Change.GONE,
        Change.NEW,
    ]


def test_an_object_first_seen_in_a_modified_event_counts_as_new() -> None:
    assert changes.Versions().observe(PERSONA, "MODIFIED", "3") is Change.NEW


def test_agent_references_report_only_the_personas_and_tools_whose_users_changed() -> None:
    refs = changes.References()
    tone, lookup, other = PERSONA, ("Tool", "shop", "lookup"), ("Tool", "shop", "other")
    secret = ("Secret", "shop", "openai")
    first = refs.observe("shop", "a", None, [tone, lookup, secret])
    assert first == changes.Usage(stale=frozenset({tone, lookup}), came_or_went=True)
    assert refs.observe("shop", "a", "MODIFIED", [tone, lookup]) == changes.Usage(
        stale=frozenset(), came_or_went=False
    )
    assert refs.observe("shop", "a", "MODIFIED", [tone, other]).stale == {lookup, other}
    assert refs.observe("shop", "a", "DELETED", []) == changes.Usage(
        stale=frozenset({tone, other}), came_or_went=True
    )


def test_only_the_event_of_the_operators_own_last_write_is_an_echo_and_only_once() -> None:
    echoes = changes.Echoes()
    key = ("Deployment", "shop", "support")
    echoes.wrote(key, "41")
    assert not echoes.is_echo(key, "40")
    assert echoes.is_echo(key, "41")
    assert not echoes.is_echo(key, "41")
    echoes.wrote(key, "42")
    echoes.forget([key])
    assert not echoes.is_echo(key, "42")


@pytest.mark.anyio
async def test_spawned_work_runs_in_the_background_one_run_and_one_waiting_per_key() -> None:
    coalescer: coalescing.Coalescer[str] = coalescing.Coalescer()
    gate = asyncio.Event()
    runs: list[str] = []

    async def work(tag: str) -> None:
        runs.append(tag)
        await gate.wait()

    coalescer.spawn("a", lambda: work("a0"))
    coalescer.spawn("a", lambda: work("not started yet: a0 will see this change"))
    coalescer.spawn("b", lambda: work("b"))
    await asyncio.sleep(0)
    assert sorted(runs) == ["a0", "b"]
    for i in range(1, 5):
        coalescer.spawn("a", lambda i=i: work(f"a{i}"))
    gate.set()
    await coalescer.join()
    assert sorted(runs) == ["a0", "a1", "b"]


@pytest.mark.anyio
async def test_a_run_cancelled_while_waiting_does_not_block_later_runs() -> None:
    coalescer: coalescing.Coalescer[str] = coalescing.Coalescer()
    runs: list[str] = []

    async def work() -> None:
        runs.append("ran")

    async with coalescer.lock("a"):
        waiting = asyncio.create_task(coalescer.run("a", work))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    await coalescer.run("a", work)
    assert runs == ["ran"]


@pytest.mark.anyio
async def test_closing_cancels_background_runs() -> None:
    coalescer: coalescing.Coalescer[str] = coalescing.Coalescer()
    finished: list[str] = []

    async def forever() -> None:
        await asyncio.Event().wait()
        finished.append("never")

    coalescer.spawn("a", forever)
    await asyncio.sleep(0)
    await coalescer.close()
    await coalescer.join()
    assert finished == []
