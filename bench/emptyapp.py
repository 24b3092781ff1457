"""The ceiling of the runtime's server stack: an ASGI app on uvicorn that does no work.

The runtime suite measures it next to `corral runtime`, against the same direct baseline, to
show how much of the direct upstream's throughput any app served the way the runtime is served
(uvicorn with uvloop and httptools, one process) can reach on this machine. It answers every
POST with the upstream's fixed completion (reading the request body first, as any app must)
and GET /readyz with 200; no routing framework, no JSON parsing, no upstream call, no logging.
Run by the suite: `python -m bench.emptyapp --port P`; binds a loopback port.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from bench import upstream

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BODY = upstream.completion_body()
JSON_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
]
READY_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return  # lifespan: nothing to start or stop
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": READY_HEADERS})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The options `corral.runtime.main` gives uvicorn, minus what only a real app needs.
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
        loop="auto",
        http="auto",
    )


if __name__ == "__main__":
    main()
