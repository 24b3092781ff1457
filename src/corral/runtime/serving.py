"""Chat serving: one validated chat request in, a whole answer or an SSE byte stream out.

The logic between the thin route and the agent loop, with no web framework in it: check the
model name, assemble the prompt (the agent's system prompt and few-shot examples, the session's
history, the client's messages), reserve the turn through admission (rate limits and budgets;
every later tool turn reserves again through the loop's gate), run the loop, settle with the
real usage (a stream when it ends or breaks), remember the turn. A stream's first piece is
awaited before any byte is sent, so a request that fails before its first token still gets a
proper HTTP error status; an error after that ends the stream with an error event the `openai`
SDK raises as APIError. The whole request runs under the Agent's `requestTimeoutSeconds`
deadline (a 504 before the first byte, an error event after it), and a stream still running when
the drain gives up ends with an error event rather than a cut connection. A stream whose client
asked for the agent's activity (`x-corral-activity`) also carries choice-less chunks with a
`corral` object: the tools each turn ran and the upstream model that answered. Called by the routes;
I/O only through the agent loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import (
    admission,
    agentloop,
    callchain,
    errors,
    memory,
    protocol,
    sessions,
    tokens,
    tracing,
    turns,
)
from corral.runtime.auth import Principal
from corral.runtime.providers import base

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Whole:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Streamed:
    chunks: AsyncIterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)


class ChatServing:
    """Serves POST /v1/chat/completions for one agent."""

    def __init__(
        self,
        config: RuntimeConfig,
        loop: agentloop.AgentLoop,
        gate: admission.Admission,
        sessions: sessions.Sessions | None,
        tool_definitions: list[dict[str, Any]],
        default_completion_tokens: int,
        on_first_token: Callable[[float], None] = lambda seconds: None,
        on_rejected: Callable[[str], None] = lambda kind: None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._agent = config.agent
        self._tracer = tracer or trace.NoOpTracer()
        # Whether spans are exported: when not, no trace context is read, made or passed on.
        self.traced = not isinstance(self._tracer, trace.NoOpTracer)
        self._identity = f"{config.namespace}/{config.agent}"
        self._max_call_depth = config.max_call_depth
        self._timeout = config.request_timeout_seconds
        # Streams waiting for their next piece, by the timeout that bounds the wait; `stop`
        # moves them all to now, so each ends with an error event instead of a cut.
        self._waiting: set[asyncio.Timeout] = set()
        self._stopping = False
        self._loop = loop
        self._admission = gate
        self._sessions = sessions
        self._on_first_token = on_first_token
        self._on_rejected = on_rejected
        self._prefix = _prefix_messages(config)
        self._tool_tokens = sum(tokens.estimate_text(json.dumps(d)) for d in tool_definitions)
        self._fixed_tokens = tokens.estimate_messages(self._prefix) + self._tool_tokens
        # What an unbounded request reserves under a tokens-per-minute limit: enough for the
        # most any model of the chain may answer (each model still applies its own bound).
        bounds = [m.max_tokens for m in config.models]
        self._default_completion = max(
            [b for b in bounds if b is not None]
            + ([default_completion_tokens] if None in bounds else [])
        )
        self._log_prompts = config.server.log_prompts

    async def handle(
        self,
        request: protocol.ChatCompletionRequest,
        principal: Principal,
        session_id: str | None,
        request_id: str,
        call_chain: str | None = None,
        trace_parent: tracing.Context | None = None,
        activity: bool = False,
    ) -> Whole | Streamed:
        """The answer; the request's `invoke_agent` span (child of `trace_parent`, the caller's
        W3C context) ends here for a whole answer, with the stream's last byte otherwise."""
        if not self.traced:
            span: trace.Span = trace.INVALID_SPAN  # no span objects at all on the hot path
        else:
            span = self._tracer.start_span(
                f"invoke_agent {self._agent}", context=trace_parent, kind=trace.SpanKind.SERVER
            )
        if span.is_recording():
            span.set_attribute(tracing.OPERATION, "invoke_agent")
            span.set_attribute(tracing.AGENT_NAME, self._agent)
            span.set_attribute("corral.request_id", request_id)
            span.set_attribute("corral.stream", request.stream)
        try:
            result = await self._handle(
                request, principal, session_id, request_id, call_chain, span, activity
            )
        except BaseException as err:
            tracing.failed(span, err)
            span.end()
            raise
        if isinstance(result, Whole):
            span.end()
        return result

    async def _handle(
        self,
        request: protocol.ChatCompletionRequest,
        principal: Principal,
        session_id: str | None,
        request_id: str,
        call_chain: str | None,
        span: trace.Span,
        activity: bool,
    ) -> Whole | Streamed:
        started = time.perf_counter()
        deadline = asyncio.get_running_loop().time() + self._timeout
        if request.model != self._agent:
            raise errors.ModelNotFound(
                f"the model {request.model!r} does not exist here; this endpoint serves the"
                f" agent {self._agent!r}",
                param="model",
            )
        chain = self._chain(call_chain)
        client = protocol.to_provider_messages(request.messages)
        history = await self._history(principal, session_id)
        messages = [*self._prefix, *history, *client]
        ticket = await self._admit(principal, request, history, client)
        if self._log_prompts:
            log.info("prompt", extra={"messages": client, "session": session_id is not None})
        sampling = agentloop.Sampling(
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=self._completion_limit(request),
            stop=request.stop_list(),
        )
        meter = agentloop.Meter()
        turn = turns.Turn(
            self._admission,
            ticket,
            meter,
            self._sessions,
            principal,
            session_id,
            client,
            self._tool_tokens + (sampling.max_tokens or 0),
            self._on_rejected,
        )
        ident = protocol.Ident(f"chatcmpl-{request_id}", int(time.time()), self._agent)
        parent = tracing.within(span) if self.traced else None
        if not request.stream:
            try:
                async with self._deadline(deadline):
                    answer = await self._loop.complete(
                        messages, sampling, meter, chain, parent, turn.gate
                    )
            finally:
                turn.settle()
                _record_usage(span, meter)
            await turn.remember(answer.content)
            if self._log_prompts:
                log.info("answer", extra={"content": answer.content})
            body = protocol.completion_body(
                ident,
                content=answer.content,
                finish_reason=answer.finish_reason,
                usage=answer.usage,
            )
            return Whole(body, ticket.headers)
        deltas = self._loop.stream(
            messages, sampling, meter, chain, parent, turn.gate, report=activity
        )
        try:
            async with self._deadline(deadline):
                first = await anext(deltas)
        except BaseException:
            turn.settle()
            _record_usage(span, meter)
            await _close(deltas)
            raise
        encoder = protocol.ChunkEncoder(ident)
        chunks = self._chunks(
            encoder,
            first,
            deltas,
            turn,
            started,
            deadline,
            span,
            include_usage=request.include_usage,
            activity=activity,
        )
        return Streamed(chunks, ticket.headers)

    def _chain(self, header: str | None) -> callchain.Chain:
        """The incoming call chain with this agent on the end; refused when it loops or is
        too deep for this agent (the calling agent's tool reads the message)."""
        try:
            chain = callchain.parse(header, self._identity, self._max_call_depth)
            chain.check_incoming()
        except callchain.InvalidChain as err:
            raise errors.InvalidRequest(str(err), param=callchain.HEADER) from None
        except callchain.Refused as refused:
            raise errors.CallRefused(str(refused), code=refused.code) from None
        return chain

    def _deadline(self, when: float) -> _Deadline:
        return _Deadline(when, self._overrun)

    def _overrun(self) -> errors.RequestTimeout:
        return errors.RequestTimeout(
            f"the request took longer than its {self._timeout:g}s deadline (requestTimeoutSeconds)"
        )

    async def _chunks(
        self,
        encoder: protocol.ChunkEncoder,
        first: base.Delta,
        deltas: AsyncIterator[base.Delta],
        turn: turns.Turn,
        started: float,
        deadline: float,
        span: trace.Span,
        *,
        include_usage: bool,
        activity: bool = False,
    ) -> AsyncIterator[bytes]:
        parts: list[str] = []
        timed = False
        try:
            yield encoder.role()
            delta: base.Delta | None = first
            while delta is not None:
                if activity and delta.tool_runs:
                    yield encoder.activity(protocol.tool_activity(delta.tool_runs))
                if delta.content:
                    if not timed:
                        self._on_first_token(time.perf_counter() - started)
                        timed = True
                    parts.append(delta.content)
                    yield encoder.content(delta.content)
                if delta.finish_reason is not None:
                    if activity and delta.model is not None:
                        yield encoder.activity({"model": delta.model})
                    yield encoder.finish(delta.finish_reason)
                    if include_usage:
                        yield encoder.usage(delta.usage or turn.meter.usage)
                    # Charged and remembered before the end, so the client's next request
                    # (on any replica) sees both.
                    turn.settle()
                    await turn.remember("".join(parts) or None)
                    yield encoder.DONE
                    if self._log_prompts:
                        log.info("answer", extra={"content": "".join(parts)})
                    return
                delta = await self._next(deltas, deadline)
            raise errors.ApiError("the answer ended without a finish reason")
        except Exception as exc:
            log.warning(
                "stream failed after its first byte: %s", exc, extra={"error": type(exc).__name__}
            )
            tracing.failed(span, exc)
            yield encoder.error(errors.stream_envelope(exc))
        finally:
            turn.settle()
            _record_usage(span, turn.meter)
            span.end()
            await _close(deltas)

    async def _next(self, deltas: AsyncIterator[base.Delta], deadline: float) -> base.Delta | None:
        """The next piece, unless the deadline passes or `stop` is called first."""
        if self._stopping:
            raise errors.ShuttingDown()
        timeout = asyncio.timeout_at(deadline)
        self._waiting.add(timeout)
        try:
            async with timeout:
                return await anext(deltas, None)
        except TimeoutError:
            if self._stopping:
                raise errors.ShuttingDown() from None
            raise self._overrun() from None
        finally:
            self._waiting.discard(timeout)

    def stop(self) -> None:
        """End every running stream with an error event (the drain gave up waiting for them);
        a stream between two pieces ends at its next one."""
        self._stopping = True
        now = asyncio.get_running_loop().time()
        for timeout in self._waiting:
            timeout.reschedule(now)

    async def _history(self, principal: Principal, session_id: str | None) -> list[dict[str, Any]]:
        if self._sessions is None or session_id is None:
            return []
        return await self._sessions.history(principal, memory.check_session_id(session_id))

    def _completion_limit(self, request: protocol.ChatCompletionRequest) -> int | None:
        """The client's max_tokens; under a token limit or a budget never unbounded, so that
        no model call can use more than its turn reserved."""
        if self._admission.limits_tokens:
            return request.completion_limit or self._default_completion
        return request.completion_limit

    async def _admit(
        self,
        principal: Principal,
        request: protocol.ChatCompletionRequest,
        history: list[dict[str, Any]],
        client: list[dict[str, Any]],
    ) -> admission.Ticket:
        estimate = cost = 0
        if self._admission.limits_tokens:
            prompt = (
                self._fixed_tokens
                + tokens.estimate_messages(history)
                + tokens.estimate_messages(client)
            )
            completion = self._completion_limit(request) or 0
            estimate = prompt + completion
            cost = self._admission.prices.bound(prompt, completion)
        try:
            return await self._admission.admit(principal, estimate, cost)
        except errors.RateLimited as limited:
            self._on_rejected(limited.kind)
            raise


class _Deadline:
    """`asyncio.timeout_at(when)` whose overrun raises `overrun()` instead of TimeoutError."""

    __slots__ = ("_overrun", "_timeout")

    def __init__(self, when: float, overrun: Callable[[], errors.RequestTimeout]) -> None:
        self._timeout = asyncio.timeout_at(when)
        self._overrun = overrun

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(self, kind: Any, error: Any, trace_back: Any) -> None:
        try:
            await self._timeout.__aexit__(kind, error, trace_back)
        except TimeoutError:
            raise self._overrun() from None


def _prefix_messages(config: RuntimeConfig) -> list[dict[str, Any]]:
    prefix: list[dict[str, Any]] = []
    if config.system_prompt:
        prefix.append({"role": "system", "content": config.system_prompt})
    for example in config.examples:
        prefix.append({"role": "user", "content": example.user})
        prefix.append({"role": "assistant", "content": example.assistant})
    return prefix


def _record_usage(span: trace.Span, meter: agentloop.Meter) -> None:
    if span.is_recording():
        span.set_attribute(tracing.INPUT_TOKENS, meter.prompt_tokens)
        span.set_attribute(tracing.OUTPUT_TOKENS, meter.completion_tokens)


async def _close(deltas: AsyncIterator[base.Delta]) -> None:
    aclose = getattr(deltas, "aclose", None)
    if aclose is not None:
        await aclose()
