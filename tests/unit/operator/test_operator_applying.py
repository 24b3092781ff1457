"""Applying children: the only writer skips unchanged objects and reverts drift."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from operator_testkit import FakeKube, FakeReader, agent, make_settings, observed

from corral.operator import applying, errors, kube, resolving
from corral.operator.rendering import children

UID = "uid-support"


async def desired(**spec: Any) -> children.Children:
    resolved = await resolving.resolve(agent(uid=UID, **spec), FakeReader())
    return children.render(resolved, make_settings())


@pytest.mark.anyio
async def test_first_apply_creates_every_child_and_the_second_writes_nothing() -> None:
    api, wanted = FakeKube(), await desired()
    first = await applying.apply_children(api, wanted, observed(api), UID)
    assert first.written == ["ConfigMap", "Service", "Deployment"]
    assert applying.change_event(first) == (
        "Created",
        "created ConfigMap 'support-runtime', Service 'support', Deployment 'support'",
    )
    api.writes.clear()
    second = await applying.apply_children(api, wanted, observed(api), UID)
    assert (second.written, api.writes) == ([], [])
    assert applying.change_event(second) is None


@pytest.mark.anyio
async def test_a_hand_edit_of_an_owned_field_is_reverted() -> None:
    api, wanted = FakeKube(), await desired()
    await applying.apply_children(api, wanted, observed(api), UID)
    url = kube.path_of(wanted.deployment)
    api.at(url)["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    api.writes.clear()
    result = await applying.apply_children(api, wanted, observed(api), UID)
    assert result.written == ["Deployment"]
    assert (
        api.at(url)["spec"]["template"]["spec"]["containers"][0]["image"]
        == "registry.test/corral:1.2.3"
    )
    assert applying.change_event(result) == (
        "DriftReverted",
        "reverted changes made outside the operator to Deployment 'support'",
    )


@pytest.mark.anyio
async def test_fields_added_by_the_server_or_other_managers_do_not_cause_writes() -> None:
    api, wanted = FakeKube(), await desired()
    await applying.apply_children(api, wanted, observed(api), UID)
    live = api.at(kube.path_of(wanted.deployment))
    live["spec"]["progressDeadlineSeconds"] = 600
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = (
        "/dev/termination-log"
    )
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    api.writes.clear()
    assert (await applying.apply_children(api, wanted, observed(api), UID)).written == []


@pytest.mark.anyio
async def test_a_config_change_rolls_the_deployment() -> None:
    api = FakeKube()
    await applying.apply_children(api, await desired(), observed(api), UID)
    result = await applying.apply_children(
        api, await desired(instructions="new"), observed(api), UID
    )
    assert result.written == ["ConfigMap", "Deployment"]
    reason, message = applying.change_event(result) or ("", "")
    assert reason == "RollingOut"
    assert "rolling out Deployment 'support'" in message


@pytest.mark.anyio
async def test_an_object_controlled_by_someone_else_is_a_name_conflict() -> None:
    api, wanted = FakeKube(), await desired()
    foreign = copy.deepcopy(wanted.by_kind["Service"])
    foreign["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "x",
            "uid": "other",
            "controller": True,
        }
    ]
    api.put(foreign)
    with pytest.raises(errors.NameConflict, match="Service 'support' already exists"):
        await applying.apply_children(api, wanted, observed(api), UID)


@pytest.mark.anyio
async def test_an_unowned_object_without_our_labels_is_a_name_conflict() -> None:
    api, wanted = FakeKube(), await desired()
    api.put(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "support", "namespace": "shop"},
        }
    )
    with pytest.raises(errors.NameConflict):
        await applying.apply_children(api, wanted, observed(api), UID)


@pytest.mark.anyio
async def test_an_orphaned_child_of_ours_is_adopted() -> None:
    api, wanted = FakeKube(), await desired()
    orphan = copy.deepcopy(wanted.by_kind["Service"])
    del orphan["metadata"]["ownerReferences"]
    api.put(orphan)
    result = await applying.apply_children(api, wanted, observed(api), UID)
    assert "Service" in result.written
    assert (
        api.at(kube.path_of(wanted.by_kind["Service"]))["metadata"]["ownerReferences"][0]["uid"]
        == UID
    )


@pytest.mark.anyio
async def test_the_disruption_budget_is_deleted_when_replicas_drop_to_one() -> None:
    api = FakeKube()
    await applying.apply_children(api, await desired(replicas=3), observed(api), UID)
    pdb_url = kube.path("policy/v1", "PodDisruptionBudget", "shop", "support")
    assert pdb_url in api.objects
    result = await applying.apply_children(api, await desired(replicas=1), observed(api), UID)
    assert result.deleted == ["PodDisruptionBudget"]
    assert pdb_url not in api.objects


@pytest.mark.anyio
async def test_someone_elses_disruption_budget_is_left_alone() -> None:
    api = FakeKube()
    api.put(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "support", "namespace": "shop"},
        }
    )
    result = await applying.apply_children(api, await desired(), observed(api), UID)
    assert result.deleted == []
    assert kube.path("policy/v1", "PodDisruptionBudget", "shop", "support") in api.objects
