"""`corral chat AGENT`: the test chat in a terminal, streamed token by token.

One question from `-m` or from piped stdin (one-shot), or a loop of questions when stdin is a
terminal. The answer's text goes to stdout as it arrives; the tools the Agent ran, the model
that answered and the token usage go to stderr, so `corral chat support -m hi > answer.txt`
keeps only the answer. Exit status: 0 answered, 1 the chat failed (no such Agent, not Ready,
refused by RBAC, the Agent's error), 2 no usable credentials. Called by `corral.cli`. I/O.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import TextIO

from corral.console import chatevents, chatting, kube
from corral.console import settings as settings_mod

QUIT = frozenset({"exit", "quit", "/exit", "/quit"})


@dataclasses.dataclass(frozen=True)
class Options:
    agent: str
    namespace: str | None
    message: str | None
    kubeconfig: Path | None = None
    context: str | None = None


def run(options: Options, stdin: TextIO = sys.stdin) -> int:
    try:
        return asyncio.run(_run(options, stdin, sys.stdout, sys.stderr))
    except KeyboardInterrupt:
        return 130


async def _run(options: Options, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    settings = settings_mod.Settings(kubeconfig=options.kubeconfig, context=options.context)
    try:
        client = await kube.connect(settings)
    except kube.ConfigError as exc:
        print(f"corral chat: {exc}", file=err)
        return 2
    try:
        namespace = options.namespace or client.namespace
        target = await chatting.find_target(client, namespace, options.agent)
        if not target.ready:
            raise chatevents.not_ready(namespace, options.agent, target.reason)
        chat = chatting.open_chat(client, target)
        try:
            if options.message is not None or not stdin.isatty():
                text = options.message if options.message is not None else stdin.read()
                await _answer(chat, text.strip(), out, err)
                return 0
            return await _interactive(chat, stdin, out, err)
        finally:
            await chat.aclose()
    except chatevents.ChatError as exc:
        print(f"corral chat: {exc.message}", file=err)
        return 1
    finally:
        await client.close()


async def _interactive(chat: chatting.Chat, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    target = chat.target
    print(
        f"Chatting with agent {target.namespace}/{target.agent} through the API server"
        f"{' (the Agent keeps the conversation)' if chat.session_id else ''}."
        " Ctrl-D or 'exit' to leave.",
        file=err,
    )
    while True:
        out.write("you> ")
        out.flush()
        line = await asyncio.to_thread(stdin.readline)
        if not line or line.strip() in QUIT:
            out.write("\n")
            return 0
        if not line.strip():
            continue
        try:
            await _answer(chat, line.strip(), out, err, prefix=f"{target.agent}> ")
        except chatevents.ChatError as exc:
            # One failed question does not end the conversation; the next may succeed.
            print(f"\ncorral chat: {exc.message}", file=err)


async def _answer(
    chat: chatting.Chat, text: str, out: TextIO, err: TextIO, prefix: str = ""
) -> None:
    """Stream one answer: `prefix` and the text on `out`, everything else on `err`."""
    if not text:
        raise chatevents.ChatError("rejected", "nothing to ask: the message is empty")
    answered: chatevents.Answered | None = None
    usage: chatevents.Usage | None = None
    started = False
    async for event in chat.send(text):
        if isinstance(event, chatevents.Content):
            if not started:
                out.write(prefix)
                started = True
            out.write(event.text)
            out.flush()
        elif isinstance(event, chatevents.ToolCalls):
            out.write("\n" if started else "")
            out.flush()
            for call in event.calls:
                print(f"[tool {call.name}({call.arguments}) -> {call.outcome}]", file=err)
        elif isinstance(event, chatevents.Answered):
            answered = event
        else:
            usage = event
    out.write("\n")
    out.flush()
    print(footer(answered, usage), file=err)


def footer(answered: chatevents.Answered | None, usage: chatevents.Usage | None) -> str:
    """The line after an answer: the model that answered and the tokens it took."""
    parts = [f"model {answered.model}" if answered and answered.model else "model unknown"]
    if usage is not None:
        parts.append(
            f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
            f" = {usage.total_tokens} tokens"
        )
    return f"[{' · '.join(parts)}]"
