"""Conversation memory: bounded by messages, tokens, idle time and session count."""

from __future__ import annotations

import tracemalloc

import pytest

from corral.api.agents import MemorySpec
from corral.runtime import errors, memory


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def answer(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def store(clock: Clock | None = None, **spec: int) -> memory.SessionStore:
    return memory.SessionStore(MemorySpec(enabled=True, **spec), clock or Clock())


def test_a_session_returns_its_turns_in_order() -> None:
    sessions = store()
    sessions.append("k", "s", [user("a"), answer("b")])
    sessions.append("k", "s", [user("c"), answer("d")])

    assert [m["content"] for m in sessions.history("k", "s")] == ["a", "b", "c", "d"]
    assert sessions.history("k", "other") == []
    assert sessions.history("other-key", "s") == []


def test_only_the_last_messages_are_kept_starting_with_a_user_turn() -> None:
    sessions = store(max_messages=3)
    for n in range(4):
        sessions.append("k", "s", [user(f"q{n}"), answer(f"a{n}")])

    assert [m["content"] for m in sessions.history("k", "s")] == ["q3", "a3"]


def test_history_is_cut_to_the_token_budget() -> None:
    sessions = store(max_tokens=100)
    for n in range(10):
        sessions.append("k", "s", [user(f"{n}" * 300), answer("ok")])  # ~84 tokens a turn

    kept = sessions.history("k", "s")
    assert [m["content"][0] for m in kept if m["role"] == "user"] == ["9"]


def test_an_idle_session_expires() -> None:
    clock = Clock()
    sessions = store(clock, ttl_seconds=60)
    sessions.append("k", "s", [user("a"), answer("b")])

    clock.now = 59
    assert sessions.history("k", "s")
    clock.now = 120
    assert sessions.history("k", "s") == []
    assert len(sessions) == 0


def test_the_least_recently_used_session_goes_first() -> None:
    sessions = store(max_sessions=2)
    sessions.append("k", "old", [user("1")])
    sessions.append("k", "kept", [user("2")])
    sessions.append("k", "old", [user("3")])  # touched: now the most recent
    sessions.append("k", "new", [user("4")])

    assert sessions.history("k", "kept") == []
    assert sessions.history("k", "old")
    assert sessions.history("k", "new")


def test_memory_bounds_hold_after_ten_thousand_sessions() -> None:
    clock = Clock()
    sessions = store(clock, max_sessions=500, max_messages=4, ttl_seconds=30)
    tracemalloc.start()
    try:
        for n in range(10_000):
            clock.now = n * 0.01
            sessions.append("k", f"s{n}", [user("x" * 200), answer("y" * 200)])
            if n == 999:
                baseline, _ = tracemalloc.get_traced_memory()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(sessions) == 500
    assert after < baseline * 1.2, f"memory grew from {baseline} to {after} bytes"
    clock.now += 31
    sessions.append("k", "last", [user("z")])
    assert len(sessions) == 1  # every idle session swept on the next write


@pytest.mark.parametrize("value", ["", "a b", "x" * 129, "../etc", "ünicode"])
def test_unusable_session_ids_are_refused(value: str) -> None:
    with pytest.raises(errors.InvalidRequest):
        memory.check_session_id(value)


def image(size: int) -> dict[str, object]:
    url = "data:image/png;base64," + "A" * size
    return {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}


def test_images_count_by_their_size_so_the_token_bound_also_bounds_bytes() -> None:
    clock = Clock()
    sessions = store(clock, max_sessions=40, max_tokens=8000)
    tracemalloc.start()
    try:
        for n in range(40):
            sessions.append("k", f"s{n}", [image(3_500_000), answer("a picture")])
            sessions.append("k", f"s{n}", [user("and this one?"), answer("small")])
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # 40 sessions of 8,000 tokens' worth (about 32 KB each) hold about a megabyte, not the
    # 140 MB of images they were sent.
    assert held < 4_000_000, f"{held} bytes held"
    assert [m["content"] for m in sessions.history("k", "s0")] == ["and this one?", "small"]
