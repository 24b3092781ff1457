"""What the real node changes on the host, recorded before it starts and put back when it stops.

kubelet, kube-proxy, containerd and the CNI bridge plugin change machine-wide state: kernel
settings (`vm.overcommit_memory`, `kernel.panic*`, `net.ipv4.ip_forward`, the bridge netfilter
switches), iptables chains and rules (KUBE-*, CNI-*), a `kubepods` cgroup in every hierarchy,
mounts (kubelet's root dir, pod volumes, network namespaces, container root filesystems) and
network devices (the pod bridge, veths). `record` writes what is there before the node starts;
`restore` removes exactly what appeared since and resets every kernel setting that moved.

Does I/O: reads /proc and /sys, runs iptables-save/-restore, `ip` and `umount`. Called by
`node.start` (record) and `node.stop` (restore); the record lives in `<state>/node/host.json`,
so a crashed `up` is still undone by `down`.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

# Every kernel setting the node's components are known to write.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)
IPTABLES = ("iptables", "ip6tables")
# Fixed paths containerd creates whatever its config says (the shims' sockets live in
# /run/containerd/s): removed if they were not there before.
FIXED_DIRS = (Path("/run/containerd"),)
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"


def record(path: Path, iptables: tuple[str, ...] = IPTABLES) -> None:
    """Write the host's current state to `path`, unless a record is already there (a restart
    of a node that never stopped must not take its own changes for the host's). `iptables`:
    the tools whose tables are recorded (and so restored)."""
    if path.exists():
        return
    state = {
        "sysctls": {key: value for key in SYSCTLS if (value := read_sysctl(key)) is not None},
        "iptables": {tool: _save(tool) for tool in iptables if shutil.which(f"{tool}-save")},
        "cgroups": sorted(str(p) for p in CGROUP_ROOT.glob(f"*/{KUBEPODS}")),
        "mounts": sorted(_mount_points()),
        "links": sorted(_links()),
        "dirs": [str(d) for d in FIXED_DIRS if d.exists()],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def restore(path: Path, mount_prefixes: list[Path], bridge: str) -> list[str]:
    """Undo what changed since `record(path)`; return one line per thing undone.

    Mounts are only taken down under `mount_prefixes` (the node's own dirs), network devices
    only if they are the node's `bridge` or a pod's veth: what someone else made meanwhile
    elsewhere is not ours to remove."""
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    done: list[str] = []
    done += _unmount_new(set(state["mounts"]), mount_prefixes)
    for link in sorted(_links() - set(state["links"])):
        if (link == bridge or link.startswith("veth")) and _run(
            ["ip", "link", "delete", link]
        ) == 0:
            done.append(f"deleted network device {link}")
    for tool, before in state["iptables"].items():
        done += _restore_iptables(tool, before)
    for cgroup in sorted(set(map(str, CGROUP_ROOT.glob(f"*/{KUBEPODS}"))) - set(state["cgroups"])):
        _remove_cgroup(Path(cgroup))
        done.append(f"removed cgroup {cgroup}")
    for directory in FIXED_DIRS:
        if str(directory) not in state["dirs"] and directory.exists():
            shutil.rmtree(directory, ignore_errors=True)
            done.append(f"removed {directory}")
    for key, value in state["sysctls"].items():
        if read_sysctl(key) != value:
            write_sysctl(key, value)
            done.append(f"reset {key} = {value}")
    path.unlink()
    return done


def read_sysctl(key: str) -> str | None:
    try:
        return _sysctl_path(key).read_text().strip()
    except OSError:
        return None


def write_sysctl(key: str, value: str) -> None:
    _sysctl_path(key).write_text(value)


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def _save(tool: str) -> str:
    return subprocess.run([f"{tool}-save"], capture_output=True, text=True, check=True).stdout


def _tables(dump: str) -> dict[str, tuple[list[str], list[str]]]:
    """iptables-save output -> table -> (user-defined chains, `-A` rules)."""
    tables: dict[str, tuple[list[str], list[str]]] = {}
    current: tuple[list[str], list[str]] | None = None
    for line in dump.splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], ([], []))
        elif current is not None and line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if policy == "-":  # a user chain; built-in ones (with a policy) are never removed
                current[0].append(name)
        elif current is not None and line.startswith("-A "):
            current[1].append(line)
    return tables


def undo_script(before: str, after: str) -> str:
    """The iptables-restore --noflush input that turns the `after` dump back into `before`:
    delete the rules that appeared, then flush and delete the chains that appeared."""
    old, new = _tables(before), _tables(after)
    lines: list[str] = []
    for table, (chains, rules) in new.items():
        old_chains, old_rules = old.get(table, ([], []))
        added_chains = [c for c in chains if c not in old_chains]
        remaining = collections.Counter(old_rules)
        deletes = []
        for rule in rules:
            chain = rule.split()[1]
            if remaining[rule] > 0:
                remaining[rule] -= 1
            elif chain not in added_chains:
                deletes.append("-D" + rule[2:])
        if deletes or added_chains:
            lines += [f"*{table}", *deletes]
            lines += [f"-F {chain}" for chain in added_chains]
            lines += [f"-X {chain}" for chain in added_chains]
            lines.append("COMMIT")
    return "\n".join(lines) + "\n" if lines else ""


def _restore_iptables(tool: str, before: str) -> list[str]:
    script = undo_script(before, _save(tool))
    if not script:
        return []
    result = subprocess.run(
        [f"{tool}-restore", "--noflush"], input=script, capture_output=True, text=True
    )
    if result.returncode != 0:
        return [f"{tool}-restore failed: {result.stderr.strip()}\n{script}"]
    changes = [line for line in script.splitlines() if line[:2] in ("-D", "-X")]
    return [f"{tool}: {len(changes)} rules and chains removed"]


def _remove_cgroup(cgroup: Path) -> None:
    """rmdir the cgroup tree bottom-up (cgroupfs removes a dir only once it has no children)."""
    for child in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir():
            child.rmdir()
    cgroup.rmdir()


def _mount_points() -> set[str]:
    points = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        points.add(line.split()[4].encode().decode("unicode_escape"))
    return points


def _unmount_new(before: set[str], prefixes: list[Path]) -> list[str]:
    done = []
    roots = [str(p) for p in prefixes]
    for _ in range(5):  # a mount can hide another one under it: repeat until none is left
        new = [
            point
            for point in _mount_points() - before
            if any(point == root or point.startswith(root + "/") for root in roots)
        ]
        if not new:
            break
        for point in sorted(new, key=len, reverse=True):
            if _run(["umount", point]) != 0:
                _run(["umount", "--lazy", point])
            done.append(f"unmounted {point}")
    return done


def _links() -> set[str]:
    return {p.name for p in Path("/sys/class/net").iterdir()}


def _run(argv: list[str]) -> int:
    return subprocess.run(argv, capture_output=True).returncode
