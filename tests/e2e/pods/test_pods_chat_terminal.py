"""`corral chat` against Agents running as real pods, through the API server's service proxy:
llama.cpp answers in one shot; on a terminal it holds a conversation; the tools the Agent ran,
the model that answered and the token usage are shown; the answer streams in pieces; and a
missing Agent, one not Ready, and a user whom RBAC refuses each get a clear message and a
non-zero exit. The `corral` command runs as a real process, as a person runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from chatting_e2e import ANSWER, TOOL, Terminal, corral, limited_kubeconfig
from pods_e2e import PodModel, Release, agent, apply, get

from corral.console import chatevents, chatting, kube, settings
from fakes.openai_server import FakeOpenAI
from localcluster import handles, probes

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
READ_AGENTS = {"apiGroups": ["corral.dev"], "resources": ["agents"], "verbs": ["get"]}
READ_SERVICES = {"apiGroups": [""], "resources": ["services"], "verbs": ["get"]}


def test_corral_chat_answers_from_llama_in_one_shot(
    cluster: handles.Cluster, release: Release, talker: str
) -> None:
    question = "Hello! In one sentence, what can you help me with?"
    done = corral(cluster.kubeconfig, "chat", talker, "-n", release.watched, "-m", question)
    assert done.returncode == 0, done.stderr
    # Gemma 3 270M is a tiny base model: the answer's shape is checked, never its content (it
    # may even be empty); its usage is llama.cpp's own count.
    assert done.stdout.endswith("\n")
    footer = done.stderr.strip().splitlines()[-1]
    assert footer.startswith("[model gemma-3-270m · ")
    assert int(footer.split("· ")[1].split(" prompt")[0]) > 0


def test_tool_calls_the_answering_model_and_usage_are_shown(
    cluster: handles.Cluster, release: Release, tooled: str
) -> None:
    done = corral(cluster.kubeconfig, "chat", tooled, "-n", release.watched, stdin="Status?\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{ANSWER}\n"  # only the answer on stdout
    assert f"[tool {TOOL}({{}}) -> ok]" in done.stderr
    footer = done.stderr.strip().splitlines()[-1]
    assert footer.startswith("[model scripted-model · ")
    prompt = int(footer.split("· ")[1].split(" prompt")[0])
    assert prompt >= 42  # both model turns of the tool loop are counted


def test_corral_chat_on_a_terminal_keeps_the_conversation(
    cluster: handles.Cluster,
    release: Release,
    tooled: str,
    scripted_model: tuple[FakeOpenAI, PodModel],
) -> None:
    fake = scripted_model[0]
    terminal = Terminal(cluster.kubeconfig, ["chat", tooled, "-n", release.watched])
    try:
        terminal.read_until("you> ")
        terminal.type("first question\n")
        terminal.read_until("tokens]")
        terminal.read_until("you> ")
        asked = len(fake.requests)
        terminal.type("second question\n")
        terminal.read_until(f"{ANSWER}\n", timeout=120)
        screen = terminal.read_until("you> ")
        terminal.type("\x04")  # Ctrl-D: end of input
        assert terminal.close() == 0
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
    assert screen.count(f"{tooled}> {ANSWER}") == 2, screen
    # The second question went with the first turn (the conversation is kept client-side).
    users = [m["content"] for m in fake.requests[-1].body["messages"] if m["role"] == "user"]
    assert users == ["first question", "second question"]
    assert len(fake.requests) > asked


def test_the_answer_streams_through_the_api_servers_proxy_in_pieces(
    cluster: handles.Cluster, release: Release, tooled: str
) -> None:
    async def converse() -> list[chatevents.Event]:
        client = await kube.connect(settings.Settings(kubeconfig=cluster.kubeconfig))
        try:
            target = await chatting.find_target(client, release.watched, tooled)
            chat = chatting.open_chat(client, target)
            try:
                return [event async for event in chat.send("Status?")]
            finally:
                await chat.aclose()
        finally:
            await client.close()

    events = asyncio.run(converse())
    pieces = [e.text for e in events if isinstance(e, chatevents.Content)]
    assert len(pieces) > 1  # streamed: the fake sends the answer word by word
    assert "".join(pieces) == ANSWER
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolCalls") < kinds.index("Content") < kinds.index("Answered")
    assert kinds[-1] == "Usage"


def test_a_user_without_the_proxy_permission_is_told_which_one(
    cluster: handles.Cluster, release: Release, tooled: str, tmp_path: Path
) -> None:
    config = limited_kubeconfig(
        cluster, release.watched, "no-proxy", [READ_AGENTS, READ_SERVICES], tmp_path / "kc"
    )
    done = corral(config, "chat", tooled, "-n", release.watched, "-m", "Hi")
    assert done.returncode == 1
    assert 'cannot create resource "services/proxy"' in done.stderr
    assert f"the chat needs 'create' on services/proxy in namespace {release.watched}" in (
        done.stderr
    )


def test_a_user_who_may_not_read_agents_is_told_so(
    cluster: handles.Cluster, release: Release, tooled: str, tmp_path: Path
) -> None:
    config = limited_kubeconfig(
        cluster, release.watched, "no-agents", [READ_SERVICES], tmp_path / "kc"
    )
    done = corral(config, "chat", tooled, "-n", release.watched, "-m", "Hi")
    assert done.returncode == 1
    assert 'cannot get resource "agents"' in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_agent_and_one_not_ready_exit_non_zero_with_the_reason(
    cluster: handles.Cluster, release: Release
) -> None:
    missing = corral(cluster.kubeconfig, "chat", "nosuch", "-n", release.watched, "-m", "Hi")
    assert missing.returncode == 1
    assert f"agent nosuch not found in namespace {release.watched}" in missing.stderr

    apply(
        cluster,
        release.watched,
        agent("orphan", "http://10.88.0.1:9/v1", personaRef={"name": "absent"}),
    )

    def missing_reference() -> bool:
        conditions = get(cluster, release.watched, "agent", "orphan").get("status", {})
        return any(
            c["type"] == "Ready" and c.get("reason") == "MissingReference"
            for c in conditions.get("conditions") or []
        )

    probes.wait_for("the Agent orphan reported MissingReference", missing_reference, timeout=60)
    done = corral(cluster.kubeconfig, "chat", "orphan", "-n", release.watched, "-m", "Hi")
    assert done.returncode == 1
    assert f"agent {release.watched}/orphan is not Ready (MissingReference" in done.stderr
