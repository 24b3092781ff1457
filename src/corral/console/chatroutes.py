"""The test chat with an Agent: the page `/agents/{namespace}/{name}/chat` and its stream.

The page keeps the conversation in the browser (the console stores nothing) and posts each
question with the history so far to `.../chat/stream`, which answers with server-sent events:
one JSON object per `chatevents` event (`content`, `tool_calls`, `answered`, `usage`), then
`done`, or `error` with a message saying what to do. Everything goes to the Agent through the
API server's service proxy with the user's credentials (`chatting`). Thin: no logic here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field

from corral.console import chatevents, chatting, deps, kube

router = APIRouter()
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


class Turn(BaseModel):
    """One question from the page: the history it keeps and the new message."""

    message: str = Field(min_length=1, max_length=100_000)
    history: list[dict[str, str]] = Field(default_factory=list, max_length=1000)
    session: str | None = Field(default=None, max_length=200)


@router.get("/agents/{namespace}/{name}/chat", response_class=HTMLResponse)
async def chat_page(
    request: Request, namespace: str, name: str, kube: deps.KubeDep, templates: deps.TemplatesDep
) -> HTMLResponse:
    target: chatevents.Target | None = None
    problem: chatevents.ChatError | None = None
    try:
        target = await chatting.find_target(kube, namespace, name)
    except chatevents.ChatError as err:
        problem = err
    status = {"not_found": 404, "forbidden": 403}.get(problem.kind if problem else "", 200)
    return templates.TemplateResponse(
        request,
        "chat.html",
        {"namespace": namespace, "name": name, "target": target, "problem": problem, "nav": ""},
        status_code=status,
    )


@router.post("/agents/{namespace}/{name}/chat/stream")
async def chat_stream(
    namespace: str, name: str, turn: Turn, kube: deps.KubeDep
) -> StreamingResponse:
    return StreamingResponse(
        _events(kube, namespace, name, turn), media_type="text/event-stream", headers=SSE_HEADERS
    )


async def _events(client: kube.Kube, namespace: str, name: str, turn: Turn) -> AsyncIterator[bytes]:
    try:
        target = await chatting.find_target(client, namespace, name)
        history: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": m.get("content", "")}
            if m.get("role") == "user"
            else {"role": "assistant", "content": m.get("content", "")}
            for m in turn.history
        ]
        chat = chatting.open_chat(client, target, history, turn.session)
        try:
            async for event in chat.send(turn.message):
                yield _sse(chatevents.event_dict(event))
        finally:
            await chat.aclose()
        yield _sse({"type": "done", "session": chat.session_id})
    except chatevents.ChatError as err:
        yield _sse({"type": "error", "kind": err.kind, "message": err.message})


def _sse(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()
