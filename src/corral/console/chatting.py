"""Chat with an Agent through the API server's service proxy, with the official `openai` SDK.

`connect` reads the Agent and its Service with the user's credentials and returns a `Chat`;
`Chat.send` streams one answer as `chatevents` events: text as it arrives, the tools the Agent
ran, the model that answered and the token usage. The conversation is kept here (every turn
sends the whole history), or by the runtime when the Agent has memory (then a session id goes
with each turn and only the new message). Everything goes where kubectl goes: `{server}/api/v1/
namespaces/{ns}/services/{agent}:http/proxy/v1`, so it needs no port-forward, only RBAC
(`create` on services/proxy). Failures raise `chatevents.ChatError` with a message saying what
to do. Used by `corral chat` (`chatterm`) and the web console's test chat (`chatroutes`). I/O.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionMessageParam

from corral.api import groups
from corral.console import chatevents, kube, proxying
from corral.console.chatevents import ChatError, Target


async def find_target(client: kube.Kube, namespace: str, agent: str) -> Target:
    """The Agent `namespace/agent` and its Service, read as the user; ChatError when either is
    missing or the user may not read them."""
    base = f"/apis/{groups.GROUP}/{groups.VERSION}/namespaces/{namespace}/agents/{agent}"
    try:
        found = await client.find(base)
        if found is None:
            raise ChatError(
                "not_found",
                f"agent {agent} not found in namespace {namespace}"
                f" (`kubectl get agents -n {namespace}` lists them)",
            )
        service_name = chatevents.service_name(found)
        service = await client.find(f"/api/v1/namespaces/{namespace}/services/{service_name}")
    except kube.KubeError as err:
        if err.forbidden:
            raise ChatError("forbidden", f"the API server refused: {err.message}", 403) from None
        raise ChatError("unreachable", err.message, err.status or None) from None
    if service is None:
        ready, reason = chatevents.readiness(found)
        if not ready:
            raise chatevents.not_ready(namespace, agent, reason)
        raise ChatError(
            "not_ready",
            f"agent {namespace}/{agent} has no Service {service_name}: is the operator"
            " running and watching this namespace?",
        )
    return chatevents.target_of(found, service)


class Chat:
    """One conversation with one Agent (not shared between users or tasks)."""

    def __init__(
        self,
        target: Target,
        client: openai.AsyncOpenAI,
        messages: list[ChatCompletionMessageParam] | None = None,
        session_id: str | None = None,
    ) -> None:
        """`messages` and `session_id` continue a conversation kept elsewhere (the browser);
        a new one gets a session id of its own when the Agent keeps conversations."""
        self.target = target
        self._client = client
        self.messages: list[ChatCompletionMessageParam] = list(messages or [])
        self.session_id = (session_id or uuid.uuid4().hex) if target.memory else None

    async def send(self, text: str) -> AsyncIterator[chatevents.Event]:
        """Ask `text`; yield the answer's events. The turn joins the history only when the
        answer completed."""
        question: ChatCompletionMessageParam = {"role": "user", "content": text}
        messages = [question] if self.session_id else [*self.messages, question]
        headers = {chatevents.ACTIVITY_HEADER: "true"}
        if self.session_id:
            headers[chatevents.SESSION_HEADER] = self.session_id
        parts: list[str] = []
        try:
            stream = await self._client.chat.completions.create(
                model=self.target.agent,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers,
            )
            async for chunk in stream:
                for event in chatevents.events_of(chunk.to_dict()):
                    if isinstance(event, chatevents.Content):
                        parts.append(event.text)
                    yield event
        except openai.APIStatusError as err:
            raise chatevents.http_error(err.status_code, _body(err.response), self.target) from None
        except openai.APIConnectionError as err:
            raise ChatError(
                "unreachable", f"the API server could not be reached: {err.__cause__ or err}"
            ) from None
        except openai.APIError as err:  # an error event after the answer started
            raise chatevents.stream_error(err.body, self.target) from None
        self.messages += [question, {"role": "assistant", "content": "".join(parts)}]

    async def aclose(self) -> None:
        await self._client.close()


def open_chat(
    client: kube.Kube,
    target: Target,
    messages: list[ChatCompletionMessageParam] | None = None,
    session_id: str | None = None,
) -> Chat:
    """A Chat over the service proxy of `client`'s API server, with the user's credentials."""
    configuration = client.api.configuration
    sdk = openai.AsyncOpenAI(
        base_url=f"{str(configuration.host).rstrip('/')}{target.proxy_path()}",
        api_key="kubernetes",  # replaced by the user's own credentials (see proxying)
        http_client=proxying.http_client(configuration),
        max_retries=0,  # a refusal is shown at once; the runtime does its own failover
    )
    return Chat(target, sdk, messages, session_id)


def _body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except (ValueError, httpx2.ResponseNotRead):
        try:
            return json.loads(response.text)
        except (ValueError, httpx2.ResponseNotRead):
            return None
