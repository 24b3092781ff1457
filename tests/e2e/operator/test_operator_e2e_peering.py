"""High availability end to end: two real `corral operator --peering NAME` processes against
the real API server. One leads and works, the other stands by and writes nothing; killing the
leader (SIGKILL, no clean-up) lets the standby take over, and a restarted replica stands by in
turn; killing each in turn keeps Agents reconciled. MCPServer discovery writes status, so it
too runs on the leader only: the standby's counters stay at 0 while an MCPServer exists, and
the new leader discovers the MCPServers created after the takeover. Takeover times are printed
(measured, not asserted: bench/ has the figures)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from operator_e2e import Cluster, OperatorProcess, ready, wait_for, wait_ready
from operator_manifests import agent, mcp_server

from localcluster import handles

pytestmark = pytest.mark.cluster


@pytest.fixture
def pair(
    cluster: handles.Cluster, crds: None, tmp_path: Path, own_namespaces: Callable[[], str]
) -> Iterator[tuple[str, list[OperatorProcess]]]:
    """A namespace and two operators electing their leader with a Lease in it (not started)."""
    ns = own_namespaces()
    lease = f"corral-{uuid.uuid4().hex[:6]}"
    env = {"CORRAL_PEERING_NAMESPACE": ns}
    operators = [
        OperatorProcess(cluster, [ns], tmp_path / f"{name}.log", ("--peering", lease), env)
        for name in ("first", "second")
    ]
    yield ns, operators
    for operator in operators:
        operator.stop()


def leading(op: OperatorProcess) -> bool:
    return op.metric("corral_operator_leading") == 1


def writes(op: OperatorProcess) -> float:
    return op.metric("corral_operator_api_writes_total")


def reconciles(op: OperatorProcess) -> float:
    return op.metric("corral_operator_reconciles_total")


def assert_standing_by(op: OperatorProcess) -> None:
    assert not leading(op), op.log_tail()
    assert (writes(op), reconciles(op)) == (0, 0), op.log_tail()


def hold_steady(leader: OperatorProcess, standby: OperatorProcess) -> None:
    """For a few seconds (drift checks, renewals): the leader leads, the standby does nothing."""
    for _ in range(5):
        assert leading(leader), leader.log_tail()
        assert_standing_by(standby)
        time.sleep(1)


def discovered(kube: Cluster, ns: str, name: str) -> tuple[str, str] | None:
    """(status, reason) of an MCPServer's Ready condition once a discovery wrote it."""
    server = kube.get("corral.dev/v1alpha1", "MCPServer", ns, name) or {}
    for condition in (server.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status"), condition.get("reason")
    return None


def take_over(standby: OperatorProcess, killed: OperatorProcess) -> float:
    """Kill the leader; the seconds until the standby leads."""
    killed.kill()
    start = time.monotonic()
    wait_for("the standby takes the Lease", lambda: leading(standby), 60, standby.log_tail)
    return time.monotonic() - start


def test_one_of_two_operators_works_and_the_other_takes_over_when_it_is_killed(
    kube: Cluster, pair: tuple[str, list[OperatorProcess]]
) -> None:
    ns, (first, second) = pair
    # Nothing listens on port 9: each discovery ends at once, Unreachable, and is retried.
    kube.apply(ns, mcp_server("before", "http://127.0.0.1:9/mcp"))
    first.start()
    wait_for("the first operator leads", lambda: leading(first), 30, first.log_tail)
    second.start()
    kube.apply(ns, agent("one"))
    wait_ready(kube, first, ns, "one")
    wait_for(
        "the leader discovers the MCPServer",
        lambda: discovered(kube, ns, "before") == ("False", "Unreachable"),
        60,
        first.log_tail,
    )
    assert writes(first) > 0
    hold_steady(first, second)

    first_takeover = take_over(second, first)
    kube.apply(ns, agent("two"), mcp_server("after", "http://127.0.0.1:9/mcp"))
    wait_ready(kube, second, ns, "two")
    wait_for(
        "the new leader discovers an MCPServer created after the takeover",
        lambda: discovered(kube, ns, "after") == ("False", "Unreachable"),
        60,
        second.log_tail,
    )
    kube.kubectl("set", "image", "-n", ns, "deployment/one", "runtime=evil.example/x:1")
    wait_for(
        "the new leader reverts a hand edit",
        lambda: (
            (kube.deployment(ns, "one") or {})["spec"]["template"]["spec"]["containers"][0]["image"]
            == "registry.test/corral:e2e"
        ),
        60,
        second.log_tail,
    )

    first.start()  # back as a standby: it must not take the Lease from a live leader
    hold_steady(second, first)

    second_takeover = take_over(first, second)
    kube.apply(ns, agent("three"))
    wait_ready(kube, first, ns, "three")
    assert ready(kube.agent(ns, "one")) == ("True", "Available")
    print(f"takeover after SIGKILL: {first_takeover:.1f} s, then {second_takeover:.1f} s")
