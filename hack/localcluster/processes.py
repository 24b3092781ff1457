"""Starting and stopping the control plane's processes, tracked by PID files.

Does I/O: spawns processes (in their own session, so a Ctrl-C in the terminal that started them
does not kill the cluster), appends their output to `<state>/logs/<name>.log`, writes
`<state>/pids/<name>.json`, and signals them. A PID is only signalled after checking that
`/proc/<pid>/cmdline` still starts with the binary that was recorded: a recycled PID is left alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from localcluster import components, settings

# Popen objects of the processes this interpreter spawned: their liveness comes from poll(),
# which also reaps them (right after exec, /proc/<pid>/cmdline can still read empty), and
# keeping them stops their finalizers from warning "still running" while the cluster runs on.
_spawned: dict[int, subprocess.Popen[bytes]] = {}


class StartError(RuntimeError):
    """A process could not be started (port taken, exited at once); says what to do next."""


@dataclasses.dataclass(frozen=True)
class Record:
    """What a PID file holds: enough to find the process again and to recognise it."""

    name: str
    pid: int
    exe: str
    started_at: float


def pid_file(config: settings.Settings, name: str) -> Path:
    return config.pids_dir / f"{name}.json"


def log_file(config: settings.Settings, name: str) -> Path:
    return config.logs_dir / f"{name}.log"


def read(config: settings.Settings, name: str) -> Record | None:
    try:
        data = json.loads(pid_file(config, name).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return Record(
        name=data["name"], pid=data["pid"], exe=data["exe"], started_at=data["started_at"]
    )


def alive(record: Record) -> bool:
    """Whether the recorded process still runs (not a zombie) and is still that binary."""
    child = _spawned.get(record.pid)
    if child is not None:  # ours: its PID cannot be recycled before we reap it
        return child.poll() is None
    proc = Path("/proc") / str(record.pid)
    try:
        argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return argv0 == record.exe and state not in ("Z", "X")


def running(config: settings.Settings, name: str) -> Record | None:
    record = read(config, name)
    return record if record is not None and alive(record) else None


def port_free(port: int, host: str = settings.HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start(config: settings.Settings, component: components.Component) -> Record:
    """Spawn `component` detached from this process and record its PID."""
    if component.port and not port_free(component.port):
        raise StartError(
            f"{component.name}: port {settings.HOST}:{component.port} is already in use, but "
            f"no {component.name} recorded in {config.pids_dir} owns it. Another cluster or "
            "program holds it: stop it, or choose other ports (CORRAL_*_PORT, see "
            "hack/localcluster/settings.py)."
        )
    for directory in (config.logs_dir, config.pids_dir):
        directory.mkdir(parents=True, exist_ok=True)
    log_path = log_file(config, component.name)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%F %T')} {' '.join(component.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            component.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **component.env},
            cwd=config.state_dir,
            start_new_session=True,
        )
    _spawned[process.pid] = process
    record = Record(component.name, process.pid, component.argv[0], time.time())
    tmp = pid_file(config, component.name).with_suffix(".tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(record)))
    os.replace(tmp, pid_file(config, component.name))
    return record


def exited_early(config: settings.Settings, name: str) -> str | None:
    """If the recorded process has died, the tail of its log (for the error message)."""
    record = read(config, name)
    if record is None or alive(record):
        return None
    return tail(log_file(config, name))


def stop(config: settings.Settings, name: str, timeout: float = 15.0) -> str:
    """Stop the recorded process (TERM, then KILL after `timeout`); say what happened."""
    record = read(config, name)
    if record is None:
        return "not recorded"
    try:
        if not alive(record):
            return f"pid {record.pid} already gone"
        os.kill(record.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(record) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(record):
            os.kill(record.pid, signal.SIGKILL)
            while alive(record):
                time.sleep(0.05)
            return f"pid {record.pid} killed after {timeout:.0f}s"
        return f"pid {record.pid} stopped"
    finally:
        pid_file(config, name).unlink(missing_ok=True)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"
