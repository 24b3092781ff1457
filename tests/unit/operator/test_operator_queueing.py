"""The work queue and the per-object record (`queueing`): due times, de-duplication, holds,
and the echo of the operator's own writes. The clock is a number the tests move by hand."""

from __future__ import annotations

from corral.operator import queueing

A = ("Agent", "shop", "a")
B = ("Agent", "shop", "b")
P = ("Persona", "shop", "tone")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_requests_for_one_key_is_one_run() -> None:
    clock = Clock()
    queue = queueing.Queue(clock)
    for _ in range(5):
        queue.add(A)
    assert queue.pop() == A
    assert queue.pop() is None


def test_a_request_during_a_run_runs_the_key_once_more_right_after() -> None:
    clock = Clock()
    queue = queueing.Queue(clock)
    queue.add(A)
    assert queue.pop() == A
    queue.add(A)
    queue.add(A)
    assert queue.pop() is None, "never two runs of one key at once"
    queue.done(A, requeue_after=300)
    assert queue.pop() == A
    queue.done(A, requeue_after=None)
    assert queue.pop() is None


def test_keys_run_when_due_earliest_first_and_a_request_moves_a_key_earlier_only() -> None:
    clock = Clock()
    queue = queueing.Queue(clock)
    queue.add(A, delay=10)
    queue.add(B, delay=5)
    assert queue.pop() is None
    assert queue.next_due() == 105
    clock.now = 111
    assert [queue.pop(), queue.pop(), queue.pop()] == [B, A, None]
    queue.done(A, requeue_after=300)
    queue.add(A, delay=600)
    assert queue.next_due() == 411, "a later request does not postpone a due key"
    queue.add(A)
    assert queue.pop() == A


def test_a_held_key_waits_out_its_hold_however_often_it_is_asked_for() -> None:
    clock = Clock()
    queue = queueing.Queue(clock)
    queue.add(P)
    assert queue.pop() == P
    queue.done(P, requeue_after=None, hold=5)
    queue.add(P)
    queue.add(P)
    assert queue.pop() is None
    clock.now += 5
    assert queue.pop() == P
    assert queue.pop() is None


def test_a_forgotten_key_never_runs() -> None:
    clock = Clock()
    queue = queueing.Queue(clock)
    queue.add(A)
    queue.forget(A)
    assert queue.pop() is None
    assert queue.next_due() is None


def meta(version: str) -> dict[str, dict[str, str]]:
    return {"metadata": {"resourceVersion": version}}


def test_the_echo_of_our_own_write_is_recognised_once_and_a_newer_event_supersedes_it() -> None:
    record = queueing.Record(A)
    record.written["Deployment"] = meta("17")
    assert record.seen("Deployment", meta("12")) is False, "an older event: ours still newer"
    assert "Deployment" in record.written
    assert record.seen("Deployment", meta("17")) is True
    assert record.written == {}
    assert record.seen("Deployment", meta("17")) is False, "only once"
    record.written["Deployment"] = meta("20")
    assert record.seen("Deployment", meta("25")) is False
    assert record.written == {}, "a newer event than our write: the cache is current again"
