"""`hoststate` against the real kernel: what appears after `record` (a mount under the node's
dirs, a pod-like veth, a moved kernel setting) is exactly what `restore` takes away, and what
was there before stays. Root only, like the node; iptables are left out here (the session's
node is running and its kube-proxy owns those chains: tests/unit/dev/test_hoststate.py covers
the iptables undo script)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from localcluster import hoststate

pytestmark = pytest.mark.cluster
SYSCTL = "kernel.panic_on_oops"


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def mounted(point: Path) -> bool:
    return subprocess.run(["mountpoint", "-q", str(point)], check=False).returncode == 0


def test_restore_undoes_exactly_what_appeared_after_record(tmp_path: Path) -> None:
    kept, ours = tmp_path / "kept", tmp_path / "node" / "volume"
    kept.mkdir()
    ours.mkdir(parents=True)
    run("mount", "-t", "tmpfs", "tmpfs", str(kept))  # there before: stays
    record = tmp_path / "host.json"
    hoststate.record(record, iptables=())
    setting = hoststate.read_sysctl(SYSCTL)
    assert setting is not None
    try:
        run("mount", "-t", "tmpfs", "tmpfs", str(ours))
        run(
            "ip", "link", "add", "vethcorraltest", "type", "veth", "peer", "name", "vethcorraltestp"
        )
        hoststate.write_sysctl(SYSCTL, "0" if setting != "0" else "1")

        undone = hoststate.restore(record, [tmp_path / "node"], bridge="corral-none")

        assert not mounted(ours)
        assert mounted(kept)
        assert not Path("/sys/class/net/vethcorraltest").exists()
        assert hoststate.read_sysctl(SYSCTL) == setting
        assert f"unmounted {ours}" in undone
        assert "deleted network device vethcorraltest" in undone
        assert f"reset {SYSCTL} = {setting}" in undone
        assert not record.exists()
    finally:
        subprocess.run(["umount", str(ours)], capture_output=True, check=False)
        subprocess.run(["umount", str(kept)], check=True)
        subprocess.run(["ip", "link", "del", "vethcorraltest"], capture_output=True, check=False)
        hoststate.write_sysctl(SYSCTL, setting)
