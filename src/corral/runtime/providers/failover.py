"""The failover chain: one Provider face over an ordered list of models (primary first).

Per model: retries with jittered backoff on retryable errors (honouring a short Retry-After),
behind that model's circuit breaker; then failover to the next model. A stream fails over only
until its first Delta is yielded; after that an error propagates, because the client already
holds part of the answer. Non-retryable errors (the request itself was refused) surface at once.
Built by `factory.build_chain`; called by the agent loop. Does no I/O of its own, only through
the providers; clock, sleep and randomness are injectable for tests. Metrics are reported
through the `Observer` callbacks, which the serving layer wires to Prometheus.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from corral.runtime.providers import backoff, base, circuit

Outcome = Literal[
    "ok", "timeout", "unavailable", "rate_limited", "rejected", "circuit_open", "cancelled", "error"
]


class Observer(Protocol):
    """What the chain reports. Every argument is a bounded label value or a number."""

    def on_attempt(self, provider: str, model: str, outcome: Outcome, seconds: float) -> None:
        """One call to one model ended (for a stream: when the stream ended)."""

    def on_failover(self, from_model: str, to_model: str, reason: Outcome) -> None:
        """The chain gave up on `from_model` and moves to `to_model`."""

    def on_circuit(self, provider: str, model: str, state: circuit.State) -> None:
        """A model's circuit breaker changed state."""


class NullObserver:
    """Reports nowhere."""

    def on_attempt(self, provider: str, model: str, outcome: Outcome, seconds: float) -> None:
        return None

    def on_failover(self, from_model: str, to_model: str, reason: Outcome) -> None:
        return None

    def on_circuit(self, provider: str, model: str, state: circuit.State) -> None:
        return None


def outcome_of(error: BaseException) -> Outcome:
    """The bounded label for how a call ended."""
    if isinstance(error, base.CircuitOpen):
        return "circuit_open"
    if isinstance(error, base.ProviderTimeout):
        return "timeout"
    if isinstance(error, base.ProviderError) and error.status == 429:
        return "rate_limited"
    if isinstance(error, base.ProviderUnavailable):
        return "unavailable"
    if isinstance(error, base.ProviderRejected):
        return "rejected"
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return "cancelled"
    return "error"


@dataclass(slots=True)
class _Slot:
    provider: base.Provider
    breaker: circuit.CircuitBreaker


@dataclass(slots=True)
class _Opened:
    """A stream that produced its first Delta (or ended cleanly without one)."""

    iterator: AsyncIterator[base.Delta]
    first: base.Delta | None
    started: float


class FailoverChain:
    """A Provider over several providers; see the module docstring for the policy."""

    def __init__(
        self,
        providers: Sequence[base.Provider],
        *,
        observer: Observer | None = None,
        retry: backoff.RetryPolicy | None = None,
        breaker: circuit.BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a failover chain needs at least one provider")
        self._observer: Observer = observer or NullObserver()
        self._retry = retry or backoff.RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        policy = breaker or circuit.BreakerPolicy()
        self._slots = [
            _Slot(p, circuit.CircuitBreaker(policy, clock=clock, on_change=self._watch(p)))
            for p in providers
        ]

    @property
    def provider(self) -> str:
        return "failover"

    @property
    def model(self) -> str:
        return self._slots[0].provider.model

    @property
    def providers(self) -> tuple[base.Provider, ...]:
        return tuple(slot.provider for slot in self._slots)

    def circuits(self) -> list[tuple[str, str, circuit.State]]:
        """(provider, model, state) of every model, in chain order."""
        return [(s.provider.provider, s.provider.model, s.breaker.state) for s in self._slots]

    async def complete(self, params: base.ChatParams) -> base.Completion:
        failures: list[base.ProviderError] = []
        for index, slot in enumerate(self._slots):
            try:
                return await self._complete_on(slot, params)
            except base.ProviderError as err:
                if not err.retryable:
                    raise
                failures.append(err)
                self._failing_over(index, err)
        raise base.AllProvidersFailed(failures)

    async def stream(self, params: base.ChatParams) -> AsyncIterator[base.Delta]:
        failures: list[base.ProviderError] = []
        for index, slot in enumerate(self._slots):
            try:
                opened = await self._open_stream_on(slot, params)
            except base.ProviderError as err:
                if not err.retryable:
                    raise
                failures.append(err)
                self._failing_over(index, err)
                continue
            # The answer has started: from here on errors propagate (no failover mid-answer).
            outcome: Outcome = "cancelled"
            try:
                if opened.first is not None:
                    # Name the model that answers on the first piece (the agent loop reports it).
                    yield dataclasses.replace(opened.first, model=slot.provider.model)
                async for delta in opened.iterator:
                    yield delta
                outcome = "ok"
            except Exception as err:
                outcome = outcome_of(err)
                if isinstance(err, base.ProviderError) and err.retryable:
                    slot.breaker.failed()
                raise
            finally:
                await _close(opened.iterator)
                self._report(slot, outcome, opened.started)
            return
        raise base.AllProvidersFailed(failures)

    async def aclose(self) -> None:
        for slot in self._slots:
            await slot.provider.aclose()

    # -- one model ----------------------------------------------------------------------

    async def _complete_on(self, slot: _Slot, params: base.ChatParams) -> base.Completion:
        """Call one model, retrying per policy; return, or raise its last error."""
        attempt = 1
        while True:
            permit = self._admit(slot)
            started = self._clock()
            try:
                result = await slot.provider.complete(params)
            except base.ProviderError as err:
                self._learn(slot, err, started)
                await self._before_retry(attempt, err)
                attempt += 1
                continue
            except BaseException as err:
                slot.breaker.abandoned(permit)
                self._report(slot, outcome_of(err), started)
                raise
            slot.breaker.succeeded()
            self._report(slot, "ok", started)
            return result

    async def _open_stream_on(self, slot: _Slot, params: base.ChatParams) -> _Opened:
        """Start a stream on one model and wait for its first Delta, retrying per policy."""
        attempt = 1
        while True:
            permit = self._admit(slot)
            started = self._clock()
            iterator = aiter(slot.provider.stream(params))
            try:
                first: base.Delta | None = await anext(iterator)
            except StopAsyncIteration:
                first = None
            except base.ProviderError as err:
                await _close(iterator)
                self._learn(slot, err, started)
                await self._before_retry(attempt, err)
                attempt += 1
                continue
            except BaseException as err:
                await _close(iterator)
                slot.breaker.abandoned(permit)
                self._report(slot, outcome_of(err), started)
                raise
            slot.breaker.succeeded()
            return _Opened(iterator, first, started)

    def _admit(self, slot: _Slot) -> circuit.Permit:
        permit = slot.breaker.allow()
        if permit is None:
            self._report(slot, "circuit_open", self._clock())
            raise base.CircuitOpen(
                f"circuit open for {slot.provider.provider} model {slot.provider.model}",
                provider=slot.provider.provider,
                retry_after=slot.breaker.seconds_until_probe(),
            )
        return permit

    def _learn(self, slot: _Slot, err: base.ProviderError, started: float) -> None:
        """Record a failed call: retryable errors count against the circuit; a refusal
        proves the endpoint is up and answering."""
        if err.retryable:
            slot.breaker.failed()
        else:
            slot.breaker.succeeded()
        self._report(slot, outcome_of(err), started)

    async def _before_retry(self, attempt: int, err: base.ProviderError) -> None:
        """Sleep before the next attempt on the same model, or re-raise to move on."""
        if not err.retryable or attempt >= self._retry.attempts:
            raise err
        delay = backoff.retry_delay(self._retry, attempt, err.retry_after, self._rng)
        if delay is None:
            raise err
        await self._sleep(delay)

    def _failing_over(self, index: int, err: base.ProviderError) -> None:
        if index + 1 < len(self._slots):
            following = self._slots[index + 1].provider.model
            self._observer.on_failover(
                self._slots[index].provider.model, following, outcome_of(err)
            )

    def _report(self, slot: _Slot, outcome: Outcome, started: float) -> None:
        seconds = max(0.0, self._clock() - started)
        self._observer.on_attempt(slot.provider.provider, slot.provider.model, outcome, seconds)

    def _watch(self, provider: base.Provider) -> Callable[[circuit.State], None]:
        def changed(state: circuit.State) -> None:
            self._observer.on_circuit(provider.provider, provider.model, state)

        return changed


async def _close(iterator: AsyncIterator[base.Delta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()
