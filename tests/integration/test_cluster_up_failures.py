"""`cluster.up` is all-or-nothing: a failed up stops what it started, and a kubeconfig left in
the state dir by a cluster on other ports is rewritten, never reused. Each test runs a
control plane of its own (kwok only: the session's cluster has this machine's real node)."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from localcluster import cluster, processes, settings

pytestmark = pytest.mark.cluster


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((settings.HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def config(tmp_path: Path) -> Iterator[settings.Settings]:
    own = dataclasses.replace(
        settings.Settings.from_env(),
        state_dir=tmp_path / "cluster",
        etcd_port=free_port(),
        etcd_peer_port=free_port(),
        apiserver_port=free_port(),
        controller_manager_port=free_port(),
        scheduler_port=free_port(),
        kwok_port=free_port(),
        node=False,
    )
    yield own
    cluster.down(own)


def test_a_failed_up_stops_every_process_it_started(config: settings.Settings) -> None:
    with socket.socket() as squatter:  # kwok's port taken: kwok is the last to start
        squatter.bind((settings.HOST, config.kwok_port))
        squatter.listen()
        with pytest.raises(processes.StartError, match="kwok"):
            cluster.up(config)
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert processes.running(config, name) is None, f"{name} was left running"
    assert processes.port_free(config.apiserver_port)
    assert processes.port_free(config.etcd_port)


def test_a_kubeconfig_of_another_api_server_is_rewritten(config: settings.Settings) -> None:
    config.state_dir.mkdir(parents=True)
    stale = {"clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}]}
    config.kubeconfig.write_text(yaml.safe_dump(stale))

    running = cluster.up(config)

    written = yaml.safe_load(config.kubeconfig.read_text())
    assert written["clusters"][0]["cluster"]["server"] == config.server
    assert running.kubectl("get", "nodes", "-o", "name").stdout.split() == ["node/kwok-node-0"]
