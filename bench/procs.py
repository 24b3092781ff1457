"""Processes the benchmarks start, and what /proc says about them (CPU seconds, RSS).

`Proc` starts a command with its output in a log file, waits (bounded) until its TCP port
accepts connections, and stops it with SIGTERM (SIGKILL after a grace period), its children
included. `cpu_seconds` and `rss_bytes` read /proc for a process and, optionally, its
descendants (a multi-worker server is a supervisor plus workers). `free_port` asks the kernel
for an unused loopback port. Called by the suites; process and file I/O.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class BenchError(RuntimeError):
    """A benchmark could not be carried out; the message says what and where to look."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return text[text.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Every live descendant of `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat_fields(int(entry))[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    queue = [pid]
    while queue:
        kids = parents.get(queue.pop(), [])
        found.extend(kids)
        queue.extend(kids)
    return found


def cpu_seconds(pid: int, *, tree: bool = False) -> float:
    """User + system CPU seconds of `pid` (and of its live descendants when `tree`)."""
    total = 0.0
    for each in [pid, *(children(pid) if tree else [])]:
        try:
            fields = _stat_fields(each)
        except OSError:
            continue
        # Fields 14 and 15 of /proc/PID/stat (utime, stime), counted from the state field (3).
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def rss_bytes(pid: int, *, tree: bool = False) -> int:
    """Resident set size of `pid` (summed over its live descendants when `tree`)."""
    total = 0
    for each in [pid, *(children(pid) if tree else [])]:
        try:
            resident = int(Path(f"/proc/{each}/statm").read_text().split()[1])
        except OSError:
            continue
        total += resident * PAGE
    return total


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args!r} exited with {proc.returncode}; see {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"nothing listens on port {port} after {timeout:.0f}s; see {log}")
        time.sleep(0.05)


class Proc:
    """A started command; use as a context manager so it is always stopped."""

    def __init__(
        self,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        if port is not None:
            try:
                wait_for_port(port, self.popen, log, start_timeout)
            except BaseException:
                self.stop()
                raise

    @property
    def pid(self) -> int:
        return self.popen.pid

    def cpu(self, *, tree: bool = False) -> float:
        return cpu_seconds(self.pid, tree=tree)

    def rss(self, *, tree: bool = False) -> int:
        return rss_bytes(self.pid, tree=tree)

    def stop(self) -> None:
        """SIGTERM to the process group this command leads; SIGKILL if it outstays the grace."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(STOP_TIMEOUT)

    def __enter__(self) -> Proc:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
