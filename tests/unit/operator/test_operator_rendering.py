"""Table tests of the pure builders: runtime config, Deployment, PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

import pytest
from operator_testkit import FakeReader, agent, agent_tool, http_tool, make_settings, persona

from corral.api.runtimeconfig import RuntimeConfig
from corral.operator import errors, naming, resolving
from corral.operator.rendering import children, pdbs, runtimeconfigs
from corral.operator.rendering.metadata import Owner


async def resolve(body: dict[str, Any], reader: FakeReader | None = None) -> resolving.Resolved:
    return await resolving.resolve(body, reader or FakeReader())


async def render(
    body: dict[str, Any], reader: FakeReader | None = None, **settings: Any
) -> children.Children:
    return children.render(await resolve(body, reader), make_settings(**settings))


def container(rendered: children.Children) -> dict[str, Any]:
    return rendered.deployment["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("persona_prompt", "instructions", "expected"),
    [
        ("Be kind.", "Answer about orders.", "Be kind.\n\nAnswer about orders."),
        ("Be kind.", None, "Be kind."),
        (None, "Answer about orders.", "Answer about orders."),
        (None, None, ""),
    ],
)
async def test_system_prompt_is_the_persona_prompt_followed_by_the_instructions(
    persona_prompt: str | None, instructions: str | None, expected: str
) -> None:
    spec: dict[str, Any] = {}
    reader = FakeReader()
    if persona_prompt is not None:
        reader.personas["tone"] = persona("tone", systemPrompt=persona_prompt)
        spec["personaRef"] = {"name": "tone"}
    if instructions is not None:
        spec["instructions"] = instructions
    config, _ = runtimeconfigs.render(await resolve(agent(**spec), reader), drain_seconds=25)
    assert config.system_prompt == expected


@pytest.mark.anyio
async def test_secrets_become_named_env_vars_in_config_and_secret_key_refs_in_the_deployment() -> (
    None
):
    reader = FakeReader(
        tools={
            "ticket": http_tool(
                "ticket",
                headersFrom=[
                    {"name": "Authorization", "secretKeyRef": {"name": "tickets", "key": "token"}}
                ],
            )
        },
        secrets={("openai", "key"): "czE=", ("tickets", "token"): "dDE=", ("keys", "k"): "azE="},
    )
    body = agent(
        model={
            "provider": "openai",
            "name": "m",
            "apiKeySecretRef": {"name": "openai", "key": "key"},
        },
        tools=[{"name": "ticket"}],
        auth={"apiKeysSecretRef": {"name": "keys", "key": "k"}},
    )
    rendered = await render(body, reader)
    config = RuntimeConfig.from_json(rendered.by_kind["ConfigMap"]["data"]["runtime.json"])
    assert config.models[0].api_key_env == "CORRAL_MODEL_0_API_KEY"
    assert config.tools[0].http is not None
    assert config.tools[0].http.header_envs == {"Authorization": "CORRAL_TOOL_0_HEADER_0"}
    assert config.auth is not None
    assert config.auth.api_keys_env == "CORRAL_API_KEYS"
    env = {e["name"]: e for e in container(rendered)["env"]}
    assert env["CORRAL_MODEL_0_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "openai", "key": "key"}
    }
    assert env["CORRAL_TOOL_0_HEADER_0"]["valueFrom"]["secretKeyRef"] == {
        "name": "tickets",
        "key": "token",
    }
    assert all("value" not in e for e in env.values()), "secrets only via secretKeyRef"


@pytest.mark.anyio
async def test_the_state_store_password_reaches_the_pod_only_through_a_secret_key_ref() -> None:
    reader = FakeReader(secrets={("redis", "password"): "c2VjcmV0LXB3"})
    pricing = {"promptPerMillion": "0.15", "completionPerMillion": "0.60"}
    body = agent(
        model={"provider": "openai", "name": "m", "pricing": pricing},
        stateStore={
            "url": "redis://valkey.corral-system.svc:6379/0",
            "passwordSecretRef": {"name": "redis", "key": "password"},
            "failurePolicy": "FailOpen",
        },
        budget={"tokensPerDay": 1000, "costPerMonth": "25.00"},
    )
    rendered = await render(body, reader)
    data = rendered.by_kind["ConfigMap"]["data"]["runtime.json"]
    config = RuntimeConfig.from_json(data)
    assert config.state_store is not None
    assert config.state_store.url == "redis://valkey.corral-system.svc:6379/0"
    assert config.state_store.password_env == "CORRAL_STATE_STORE_PASSWORD"
    assert config.state_store.failure_policy == "FailOpen"
    assert config.budget is not None
    assert config.budget.cost_per_month == "25.00"
    assert config.models[0].pricing is not None
    assert config.models[0].pricing.completion_per_million == "0.60"
    assert "secret-pw" not in data
    env = {e["name"]: e for e in container(rendered)["env"]}
    assert env["CORRAL_STATE_STORE_PASSWORD"] == {
        "name": "CORRAL_STATE_STORE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}},
    }


@pytest.mark.anyio
async def test_the_state_store_ca_reaches_the_pod_through_a_secret_key_ref() -> None:
    reader = FakeReader(secrets={("redis-tls", "ca.crt"): "Q0E=", ("redis-tls", "pw"): "cHc="})
    body = agent(
        stateStore={
            "url": "rediss://valkey.corral-system.svc:6380/0",
            "passwordSecretRef": {"name": "redis-tls", "key": "pw"},
            "caSecretRef": {"name": "redis-tls", "key": "ca.crt"},
        }
    )
    rendered = await render(body, reader)
    config = RuntimeConfig.from_json(rendered.by_kind["ConfigMap"]["data"]["runtime.json"])
    assert config.state_store is not None
    assert config.state_store.ca_env == "CORRAL_STATE_STORE_CA"
    env = {e["name"]: e for e in container(rendered)["env"]}
    assert env["CORRAL_STATE_STORE_CA"]["valueFrom"] == {
        "secretKeyRef": {"name": "redis-tls", "key": "ca.crt"}
    }


@pytest.mark.anyio
async def test_an_agent_tool_calls_the_target_agents_service_endpoint() -> None:
    reader = FakeReader(
        tools={"ask": agent_tool("ask", "billing")}, agents={"billing": agent("billing")}
    )
    config, _ = runtimeconfigs.render(
        await resolve(agent(tools=[{"name": "ask"}]), reader), drain_seconds=25
    )
    assert config.tools[0].agent is not None
    assert config.tools[0].agent.base_url == "http://billing.shop.svc:8080/v1"
    assert config.tools[0].agent.model == "billing"


@pytest.mark.anyio
async def test_a_prompt_too_long_for_the_runtime_is_an_invalid_spec() -> None:
    reader = FakeReader(personas={"long": persona("long", systemPrompt="p" * 32768)})
    body = agent(personaRef={"name": "long"}, instructions="i" * 32768)
    with pytest.raises(errors.InvalidSpec, match="runtime config"):
        await render(body, reader)


@pytest.mark.anyio
async def test_replicas_are_left_out_when_the_agent_does_not_set_them() -> None:
    assert "replicas" not in (await render(agent())).deployment["spec"]
    assert (await render(agent(replicas=0))).deployment["spec"]["replicas"] == 0


@pytest.mark.anyio
async def test_the_pod_is_restricted_and_drains_within_its_grace_period() -> None:
    rendered = await render(agent(), drain_seconds=40, termination_grace_seconds=55)
    pod = rendered.deployment["spec"]["template"]["spec"]
    security = container(rendered)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    config = RuntimeConfig.from_json(rendered.by_kind["ConfigMap"]["data"]["runtime.json"])
    assert pod["terminationGracePeriodSeconds"] == 55 > config.server.drain_timeout_seconds == 40


@pytest.mark.anyio
async def test_probes_hit_healthz_and_readyz_on_the_runtime_port() -> None:
    c = container(await render(agent()))
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["args"] == ["runtime", "--config", "/etc/corral/runtime.json", "--port", "8080"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("agent_resources", "expected"),
    [
        (None, {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}),
        ({"requests": {"cpu": "1"}}, {"requests": {"cpu": "1"}, "limits": {"memory": "512Mi"}}),
        (
            {"limits": {"memory": "2Gi"}},
            {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "2Gi"}},
        ),
    ],
)
async def test_agent_resources_replace_the_defaults_section_by_section(
    agent_resources: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    spec = {"resources": agent_resources} if agent_resources else {}
    assert container(await render(agent(**spec)))["resources"] == expected


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("agent_image", "override", "expected"),
    [
        (None, None, "registry.test/corral:1.2.3"),
        (None, "other/corral:dev", "other/corral:dev"),
        ("mine/corral:9", "other/corral:dev", "mine/corral:9"),
    ],
)
async def test_image_precedence_is_agent_then_override_then_settings(
    agent_image: str | None, override: str | None, expected: str
) -> None:
    spec = {"image": agent_image} if agent_image else {}
    rendered = children.render(await resolve(agent(**spec)), make_settings(), image=override)
    assert container(rendered)["image"] == expected


@pytest.mark.anyio
async def test_pod_annotations_cannot_override_the_config_hash() -> None:
    rendered = await render(agent(podAnnotations={naming.CONFIG_HASH: "x", "team": "a"}))
    annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"team": "a", naming.CONFIG_HASH: rendered.config_hash}


@pytest.mark.anyio
async def test_children_never_copy_the_agents_own_labels_or_annotations() -> None:
    body = agent()
    body["metadata"]["labels"] = {"argocd.argoproj.io/instance": "shop", "team": "a"}
    body["metadata"]["annotations"] = {
        "argocd.argoproj.io/tracking-id": "shop:x",
        "kustomize.toolkit.fluxcd.io/name": "f",
    }
    for obj in (await render(body)).objects():
        assert obj["metadata"]["labels"] == naming.labels("support")
        assert set(obj["metadata"]["annotations"]) == {naming.APPLIED_HASH}


@pytest.mark.parametrize(
    ("replicas", "enabled", "wanted"),
    [(None, True, False), (0, True, False), (1, True, False), (2, True, True), (5, False, False)],
)
def test_a_disruption_budget_exists_only_for_more_than_one_replica(
    replicas: int | None, enabled: bool, wanted: bool
) -> None:
    budget = pdbs.pdb(Owner("a", "shop", "uid"), replicas, enabled)
    assert (budget is not None) == wanted
    if budget is not None:
        assert budget["spec"]["maxUnavailable"] == 1


@pytest.mark.anyio
async def test_owner_references_are_rendered_only_when_the_uid_is_known() -> None:
    with_uid = (await render(agent(uid="u-1"))).by_kind["Service"]["metadata"]["ownerReferences"]
    assert with_uid == [
        {
            "apiVersion": "corral.dev/v1alpha1",
            "kind": "Agent",
            "name": "support",
            "uid": "u-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert "ownerReferences" not in (await render(agent(uid=None))).by_kind["Service"]["metadata"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("chart", "tracing", "expected"),
    [
        ({}, None, {}),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "always_on"},
            None,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_SAMPLER": "always_on"},
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
            {"otlpEndpoint": "http://team:4318", "serviceName": "support-bot"},
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://team:4318", "OTEL_SERVICE_NAME": "support-bot"},
        ),
    ],
)
async def test_tracing_settings_reach_the_runtime_as_standard_otel_variables(
    chart: dict[str, str], tracing: dict[str, str] | None, expected: dict[str, str]
) -> None:
    body = agent(tracing=tracing) if tracing else agent()

    rendered = await render(body, runtime_otel_env=chart)

    env = container(rendered).get("env", [])
    assert {e["name"]: e["value"] for e in env if "value" in e} == expected


def test_the_chart_may_pass_otel_variables_only() -> None:
    with pytest.raises(ValueError, match="OTEL_"):
        make_settings(runtime_otel_env={"CORRAL_LOG_LEVEL": "DEBUG"})
