"""The agent loop: ask the model, run the tools it calls, feed the results back, repeat.

One `AgentLoop` per app. `complete` returns the whole answer; `stream` yields the answer's
content as it arrives and ends with one `Delta` carrying the finish reason and the usage of
every model call of the request. Tool calls never reach the client: they run on the server
(in parallel when the model asks for several at once) and the model gets another turn, at most
`max_iterations` turns per request, after which `ToolIterationsExceeded` says so. A stream
asked to `report` its activity also yields, after each tool turn, a `Delta` naming the tools it
ran (never their results), and names the model that answered on its last `Delta`. Every turn
after the first passes the request's `gate` first (admission reserves it there), and the
meter keeps each turn's usage and cost. Knows nothing
about HTTP; called by the serving layer. I/O only through the provider and the tool runner.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.runtime import callchain, errors, tokens
from corral.runtime import tools as tooling
from corral.runtime.providers import base


class Tools(Protocol):
    """What the loop needs of the tool runner."""

    @property
    def definitions(self) -> list[dict[str, Any]]: ...

    async def run(
        self, calls: Sequence[base.ToolCall], chain: callchain.Chain, trace_parent: Any = None
    ) -> Sequence[tooling.ToolResult]: ...


# Called before every model turn after the first with the conversation so far: reserves the
# turn's budget (or raises to refuse it).
Gate = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]


@dataclass(slots=True)
class Meter:
    """Usage of every model call of one request so far (kept even when the request fails),
    and its cost in nano-USD."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: int = 0

    def add(self, usage: base.Usage, cost: int = 0) -> None:
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cost += cost

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def usage(self) -> base.Usage:
        return base.Usage(self.prompt_tokens, self.completion_tokens)


@dataclass(frozen=True, slots=True)
class Sampling:
    """The client's sampling choices, passed to every model call of the request."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    content: str | None
    finish_reason: base.FinishReason
    usage: base.Usage


class AgentLoop:
    """Runs requests against one provider (usually the failover chain) with one tool set."""

    def __init__(
        self,
        provider: base.Provider,
        tools: Tools,
        max_iterations: int,
        on_usage: Callable[[base.Usage], None] = lambda usage: None,
        price: Callable[[base.Usage], int] = lambda usage: 0,
    ) -> None:
        self._provider = provider
        self._tools = tools
        self._max_iterations = max_iterations
        self._on_usage = on_usage
        self._price = price

    async def complete(
        self,
        messages: Sequence[dict[str, Any]],
        sampling: Sampling,
        meter: Meter,
        chain: callchain.Chain,
        trace_parent: Any = None,
        gate: Gate | None = None,
    ) -> Answer:
        conversation = list(messages)
        for turn in range(self._max_iterations):
            if turn and gate is not None:
                await gate(conversation)
            answer = await self._provider.complete(
                self._params(conversation, sampling, trace_parent)
            )
            usage = answer.usage or _estimate(conversation, answer.content, answer.tool_calls)
            meter.add(usage, self._price(usage))
            self._on_usage(usage)
            if not answer.tool_calls:
                return Answer(answer.content, answer.finish_reason, meter.usage)
            await self._run_tools(
                conversation, answer.content, answer.tool_calls, turn, chain, trace_parent
            )
        raise AssertionError("unreachable: the last turn either answers or raises")

    async def stream(
        self,
        messages: Sequence[dict[str, Any]],
        sampling: Sampling,
        meter: Meter,
        chain: callchain.Chain,
        trace_parent: Any = None,
        gate: Gate | None = None,
        report: bool = False,
    ) -> AsyncIterator[base.Delta]:
        conversation = list(messages)
        for turn in range(self._max_iterations):
            if turn and gate is not None:
                await gate(conversation)
            calls = _CallBuilder()
            parts: list[str] = []
            finish: base.FinishReason = "stop"
            usage: base.Usage | None = None
            model = self._provider.model
            params = self._params(conversation, sampling, trace_parent)
            finished = False
            try:
                async for delta in self._provider.stream(params):
                    if delta.content:
                        parts.append(delta.content)
                        yield base.Delta(content=delta.content)
                    if delta.tool_calls:
                        calls.add(delta.tool_calls)
                    if delta.finish_reason is not None:
                        finish = delta.finish_reason
                    if delta.usage is not None:
                        usage = delta.usage
                    if delta.model is not None:
                        model = delta.model
                finished = True
            finally:
                if not finished and (parts or calls):
                    # A stream that broke (or was left) mid-answer still used the model: charge
                    # what it had produced, since no usage report will come.
                    spent = _estimate(conversation, "".join(parts), calls.build())
                    meter.add(spent, self._price(spent))
            content = "".join(parts) or None
            made = calls.build()
            usage = usage or _estimate(conversation, content, made)
            meter.add(usage, self._price(usage))
            self._on_usage(usage)
            if not made:
                yield base.Delta(finish_reason=finish, usage=meter.usage, model=model)
                return
            results = await self._run_tools(conversation, content, made, turn, chain, trace_parent)
            if report:
                yield base.Delta(model=model, tool_runs=_runs(made, results))
        raise AssertionError("unreachable: the last turn either answers or raises")

    def _params(
        self, conversation: list[dict[str, Any]], sampling: Sampling, trace_parent: Any
    ) -> base.ChatParams:
        return base.ChatParams(
            trace_parent=trace_parent,
            messages=conversation,
            tools=self._tools.definitions,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            stop=sampling.stop,
        )

    async def _run_tools(
        self,
        conversation: list[dict[str, Any]],
        content: str | None,
        calls: list[base.ToolCall],
        turn: int,
        chain: callchain.Chain,
        trace_parent: Any,
    ) -> Sequence[tooling.ToolResult]:
        if turn + 1 >= self._max_iterations:
            raise errors.ToolIterationsExceeded(
                f"the model was still calling tools after {self._max_iterations} turns"
                " (maxToolIterations); no answer was produced"
            )
        conversation.append(
            {
                "role": "assistant",
                "content": content,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in calls
                ],
            }
        )
        results = await self._tools.run(calls, chain, trace_parent)
        for result in results:
            conversation.append(result.message())
        return results


def _runs(
    calls: Sequence[base.ToolCall], results: Sequence[tooling.ToolResult]
) -> tuple[base.ToolRun, ...]:
    outcomes = {result.call_id: result.outcome for result in results}
    return tuple(
        base.ToolRun(call.id, call.name, call.arguments, outcomes.get(call.id, "error"))
        for call in calls
    )


class _CallBuilder:
    """Joins streamed tool-call fragments by their index."""

    def __init__(self) -> None:
        self._calls: dict[int, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, fragments: Sequence[base.ToolCallDelta]) -> None:
        for fragment in fragments:
            slot = self._calls.setdefault(fragment.index, ["", "", ""])
            if fragment.id:
                slot[0] = fragment.id
            if fragment.name:
                slot[1] = fragment.name
            slot[2] += fragment.arguments

    def build(self) -> list[base.ToolCall]:
        return [
            base.ToolCall(id=slot[0] or f"call_{index}", name=slot[1], arguments=slot[2])
            for index, slot in sorted(self._calls.items())
        ]


def _estimate(
    conversation: Sequence[dict[str, Any]], content: str | None, calls: Sequence[base.ToolCall]
) -> base.Usage:
    """Usage for a provider that reported none, so limits and metrics still see the call."""
    completion = tokens.estimate_text(content or "") + sum(
        tokens.estimate_text(c.name) + tokens.estimate_text(c.arguments) for c in calls
    )
    return base.Usage(tokens.estimate_messages(conversation), completion)
