"""A provider wrapped in a GenAI `chat {model}` span per call (for a stream: until it ends).

`factory.build_chain` wraps each model's provider, so every attempt the failover chain makes,
retries included, is its own span under the request's span (`ChatParams.trace_parent`). The
span carries the provider and model names, the request's max_tokens and temperature, the
usage and finish reason the model reported, or the error's class; never message text. No I/O
of its own; spans go to the tracer `tracing` built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from opentelemetry import trace

from corral.runtime import tracing
from corral.runtime.providers import base


class TracedProvider:
    """`inner` with a span around each call."""

    def __init__(self, inner: base.Provider, tracer: trace.Tracer) -> None:
        self._inner = inner
        self._tracer = tracer
        self._system = tracing.PROVIDER_NAMES.get(inner.provider, inner.provider)

    @property
    def provider(self) -> str:
        return self._inner.provider

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def inner(self) -> base.Provider:
        return self._inner

    async def complete(self, params: base.ChatParams) -> base.Completion:
        span = self._start(params)
        try:
            answer = await self._inner.complete(params)
        except BaseException as err:
            tracing.failed(span, err)
            span.end()
            raise
        self._finish(span, answer.model, answer.finish_reason, answer.usage)
        return answer

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        span = self._start(params)
        finish: str | None = None
        usage: base.Usage | None = None
        try:
            async for delta in self._inner.stream(params):
                finish = delta.finish_reason or finish
                usage = delta.usage or usage
                yield delta
        except GeneratorExit:
            span.end()  # the consumer stopped reading: not the model's failure
            raise
        except BaseException as err:
            tracing.failed(span, err)
            span.end()
            raise
        self._finish(span, self.model, finish, usage)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _start(self, params: base.ChatParams) -> trace.Span:
        span = self._tracer.start_span(
            f"chat {self.model}", context=params.trace_parent, kind=trace.SpanKind.CLIENT
        )
        if span.is_recording():
            span.set_attribute(tracing.OPERATION, "chat")
            span.set_attribute(tracing.PROVIDER, self._system)
            span.set_attribute(tracing.SYSTEM, self._system)
            span.set_attribute(tracing.REQUEST_MODEL, self.model)
            if params.max_tokens is not None:
                span.set_attribute(tracing.REQUEST_MAX_TOKENS, params.max_tokens)
            if params.temperature is not None:
                span.set_attribute(tracing.REQUEST_TEMPERATURE, params.temperature)
        return span

    def _finish(
        self, span: trace.Span, model: str, finish: str | None, usage: base.Usage | None
    ) -> None:
        if span.is_recording():
            span.set_attribute(tracing.RESPONSE_MODEL, model)
            if finish is not None:
                span.set_attribute(tracing.FINISH_REASONS, [finish])
            if usage is not None:
                span.set_attribute(tracing.INPUT_TOKENS, usage.prompt_tokens)
                span.set_attribute(tracing.OUTPUT_TOKENS, usage.completion_tokens)
        span.end()
