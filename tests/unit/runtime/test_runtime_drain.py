"""The drain state shared by the middleware, /readyz and the SIGTERM handler."""

from __future__ import annotations

import asyncio

import pytest

from corral.runtime import shutdown

pytestmark = pytest.mark.anyio


async def test_waiting_for_idle_returns_once_the_last_request_leaves() -> None:
    drain = shutdown.Drain()
    drain.enter()
    drain.begin()

    async def finish() -> None:
        await asyncio.sleep(0.05)
        drain.leave()

    task = asyncio.ensure_future(finish())
    assert await drain.wait_idle(10) is True
    await task
    assert drain.draining


async def test_waiting_gives_up_after_the_limit_with_requests_still_in_flight() -> None:
    drain = shutdown.Drain()
    drain.enter()

    assert await drain.wait_idle(0.1) is False
    assert drain.inflight == 1
