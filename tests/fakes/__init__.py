"""Scripted fake model upstreams: real HTTP servers on loopback for exact behaviour in tests.

    from fakes import scripts
    from fakes.openai_server import FakeOpenAI
    from fakes.gemini_server import FakeGemini

    with FakeOpenAI() as fake:                    # starts on a free port, stops on exit
        fake.enqueue(                             # next requests, in order...
            scripts.error(429, retry_after=2),
            scripts.tool_calls(scripts.call("lookup", {"id": "7"}), scripts.call("ping")),
            scripts.text("all done", chunk_delay=0.05),
        )
        fake.default = scripts.text("hi")         # ...then this (or a callable(request) -> Reply)
        openai.AsyncOpenAI(base_url=fake.base_url, api_key="k")
        fake.requests[0].body["messages"]         # what the fake received (RecordedRequest)
        fake.wait_for_requests(3)                 # bounded wait, fails with a clear message

Replies (`scripts`): `text`, `tool_calls`/`call` (parallel calls; `id=None` sends no id to
Gemini), `error(status, retry_after=...)`, `hang()`, `malformed()`; any Reply field can be set
(`chunk_delay` for a slow stream, `break_after` to cut a stream, `stall_after` to stop sending
mid-stream, `usage`, `finish_reason`, `headers`).
Both fakes take `api_key=` to require a key. `fake.base_url` is what each SDK wants as its base.
"""
