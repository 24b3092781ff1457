"""Reference resolution (what an Agent needs) and the indexes (who needs what)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from operator_testkit import FakeReader, agent, agent_tool, http_tool, persona

from corral.operator import errors, indexing, referenced, resolving, watching

KEYED = {"apiKeySecretRef": {"name": "openai", "key": "api-key"}}


def full_reader() -> FakeReader:
    return FakeReader(
        personas={"tone": persona("tone")},
        tools={
            "lookup": http_tool(
                "lookup",
                headersFrom=[
                    {"name": "Authorization", "secretKeyRef": {"name": "orders", "key": "token"}}
                ],
            ),
            "ask": agent_tool("ask", "billing"),
        },
        agents={"billing": agent("billing")},
        secrets={("openai", "api-key"): "YQ==", ("orders", "token"): "Yg=="},
    )


def full_agent() -> dict[str, Any]:
    return agent(
        personaRef={"name": "tone"},
        model={"provider": "openai", "name": "m"} | KEYED,
        tools=[{"name": "lookup"}, {"name": "ask"}],
    )


@pytest.mark.anyio
async def test_resolution_collects_persona_tools_and_a_digest_per_secret_key() -> None:
    resolved = await resolving.resolve(full_agent(), full_reader())
    assert resolved.persona is not None
    assert [t.name for t in resolved.tools] == ["lookup", "ask"]
    assert set(resolved.secret_digests) == {("openai", "api-key"), ("orders", "token")}
    assert "YQ==" not in str(resolved)


@pytest.mark.anyio
async def test_every_missing_reference_is_reported_at_once() -> None:
    reader = FakeReader(tools={"ask": agent_tool("ask", "billing")})
    body = agent(
        personaRef={"name": "tone"},
        model={"provider": "openai", "name": "m"} | KEYED,
        tools=[{"name": "lookup"}, {"name": "ask"}],
    )
    with pytest.raises(errors.MissingReference) as caught:
        await resolving.resolve(body, reader)
    assert [str(r) for r in caught.value.missing] == [
        "Persona 'tone'",
        "Tool 'lookup'",
        "Agent 'billing'",
        "Secret 'openai' (key 'api-key')",
    ]


@pytest.mark.anyio
async def test_a_missing_state_store_ca_secret_is_a_missing_reference() -> None:
    store = {"url": "rediss://valkey:6380/0", "caSecretRef": {"name": "redis-ca", "key": "ca.crt"}}
    body = agent(stateStore=store)
    with pytest.raises(errors.MissingReference, match=r"Secret 'redis-ca' \(key 'ca\.crt'\)"):
        await resolving.resolve(body, FakeReader())
    resolved = await resolving.resolve(body, FakeReader(secrets={("redis-ca", "ca.crt"): "Q0E="}))
    assert set(resolved.secret_digests) == {("redis-ca", "ca.crt")}
    assert indexing.agent_references(body) == {("Secret", "shop", "redis-ca"): "support"}


@pytest.mark.anyio
async def test_a_missing_state_store_password_secret_is_a_missing_reference() -> None:
    store = {
        "url": "redis://valkey:6379/0",
        "passwordSecretRef": {"name": "corral-redis", "key": "password"},
    }
    body = agent(stateStore=store)
    with pytest.raises(errors.MissingReference, match="Secret 'corral-redis' \\(key 'password'\\)"):
        await resolving.resolve(body, FakeReader())
    resolved = await resolving.resolve(
        body, FakeReader(secrets={("corral-redis", "password"): "cHc="})
    )
    assert set(resolved.secret_digests) == {("corral-redis", "password")}
    assert indexing.agent_references(body) == {("Secret", "shop", "corral-redis"): "support"}


@pytest.mark.anyio
async def test_a_secret_without_the_referenced_key_is_missing() -> None:
    reader = full_reader()
    reader.secrets = {("openai", "other-key"): "YQ==", ("orders", "token"): "Yg=="}
    with pytest.raises(errors.MissingReference, match="Secret 'openai' \\(key 'api-key'\\)"):
        await resolving.resolve(full_agent(), reader)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tools", "body", "message"),
    [
        ({"self": agent_tool("self", "support")}, agent(tools=[{"name": "self"}]), "its own tool"),
        ({"t" * 65: http_tool("t" * 65)}, agent(tools=[{"name": "t" * 65}]), "64 characters"),
        (
            {"odd": http_tool("odd") | {"spec": {"description": "x", "http": {"url": "ftp://x"}}}},
            agent(tools=[{"name": "odd"}]),
            "Tool 'odd': spec.http.url",
        ),
        ({}, agent(model={"provider": "nope", "name": "m"}), "spec.model.provider"),
    ],
    ids=[
        "agent-calls-itself",
        "name-too-long-for-a-function",
        "tool-spec-invalid",
        "agent-spec-invalid",
    ],
)
async def test_combinations_the_schema_cannot_reject_are_invalid_specs(
    tools: dict[str, Any], body: dict[str, Any], message: str
) -> None:
    with pytest.raises(errors.InvalidSpec, match=message):
        await resolving.resolve(body, FakeReader(tools=tools))


def test_tool_names_with_dots_become_function_names_with_underscores() -> None:
    from corral.operator import naming

    assert naming.function_name("create.ticket") == "create_ticket"
    assert naming.function_name("x" * 65) is None


def index(bodies: list[dict[str, Any]], fn: Any) -> dict[indexing.Key, list[str]]:
    result: dict[indexing.Key, list[str]] = {}
    for body in bodies:
        for key, value in fn(body).items():
            result.setdefault(key, []).append(value)
    return result


def test_dependents_are_exactly_the_agents_that_use_the_object_directly_or_via_tools() -> None:
    agents = [
        full_agent(),  # support: persona tone, tools lookup+ask, secret openai
        agent("other", uid="uid-other", tools=[{"name": "unrelated"}]),
    ]
    tools = [full_reader().tools["lookup"], full_reader().tools["ask"], http_tool("unrelated")]
    indexes = indexes_of(full_reader(), [])
    indexes = dataclasses.replace(
        indexes,
        agents_by_reference=index(agents, indexing.agent_references),
        named_by={"Tool": index(tools, indexing.tool_references)},
    )

    def deps(kind: str, name: str) -> set[str]:
        return indexing.dependents(kind, "shop", name, indexes)

    assert deps("Persona", "tone") == {"support"}
    assert deps("Tool", "lookup") == {"support"}
    assert deps("Secret", "openai") == {"support"}
    assert deps("Secret", "orders") == {"support"}, "a Secret used by a Tool's header"
    assert deps("Agent", "billing") == {"support"}, "an Agent called through an agent Tool"
    assert deps("Tool", "unrelated") == {"other"}
    assert deps("Persona", "nobody-uses-it") == set()
    assert indexing.dependents("Persona", "elsewhere", "tone", indexes) == set()


def test_an_invalid_agent_is_indexed_under_nothing() -> None:
    assert indexing.agent_references(agent(model={"provider": "nope", "name": "m"})) == {}


@pytest.mark.parametrize(
    ("kind", "body", "agents", "problem"),
    [
        ("Persona", persona("p"), set(), None),
        ("Persona", persona("p", systemPrompt=""), set(), "InvalidSpec"),
        ("Tool", http_tool("t"), set(), None),
        ("Tool", agent_tool("t", "billing"), set(), "MissingReference"),
        ("Tool", agent_tool("t", "billing"), {"billing"}, None),
    ],
)
def test_persona_and_tool_readiness(
    kind: str, body: dict[str, Any], agents: set[str], problem: str | None
) -> None:
    found = referenced.problem(kind, body, agents)
    assert (found[0] if found else None) == problem


def secret_body(name: str, **data: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "shop"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}


def indexes_of(reader: FakeReader, secrets: list[dict[str, Any]]) -> indexing.Indexes:
    """The watch cache over the reader's objects: the index functions Kopf applies, and the
    Agents in the operator's own cache (`watching.Agents`)."""
    agents = watching.Agents()
    for body in reader.agents.values():
        agents.put(body)
    return indexing.Indexes(
        agents=agents.bodies,
        agents_by_reference=agents.names,
        agents_by_namespace=agents.names,
        secrets=index(secrets, indexing.secret_digests),
        referenced={
            "Persona": index(list(reader.personas.values()), indexing.by_name),
            "Tool": index(list(reader.tools.values()), indexing.by_name),
        },
        named_by={"Tool": index(list(reader.tools.values()), indexing.tool_references)},
        children={},
    )


@pytest.mark.anyio
async def test_the_indexes_resolve_an_agent_exactly_as_reading_the_api_does() -> None:
    secrets = [secret_body("openai", **{"api-key": "YQ=="}), secret_body("orders", token="Yg==")]
    indexes = indexes_of(full_reader(), secrets)
    assert await resolving.resolve(full_agent(), indexes) == await resolving.resolve(
        full_agent(), full_reader()
    )
    without_billing = full_reader()
    without_billing.agents = {}
    with pytest.raises(errors.MissingReference, match="Agent 'billing'"):
        await resolving.resolve(full_agent(), indexes_of(without_billing, secrets[:1]))


def test_the_secret_index_holds_digests_never_values() -> None:
    indexed = indexing.secret_digests(secret_body("openai", **{"api-key": "c2stcmVhbA=="}))
    assert list(indexed) == [("shop", "openai")]
    assert "c2stcmVhbA==" not in str(indexed)
    assert set(indexed[("shop", "openai")]) == {"api-key"}


def test_one_index_holds_an_agents_name_under_its_namespace_and_what_it_references() -> None:
    body = agent(personaRef={"name": "tone"})
    names = indexing.agent_names(body)
    assert names == {"shop": "support", ("Persona", "shop", "tone"): "support"}
    kopf_index = {key: [value] for key, value in names.items()}
    indexes = dataclasses.replace(
        indexes_of(FakeReader(), []), agents_by_reference=kopf_index, agents_by_namespace=kopf_index
    )
    assert indexes.agent_names("shop") == {"support"}
    assert indexing.used_by("Persona", "shop", "tone", indexes.agents_by_reference) == ["support"]
