"""A program run as a child of a test or a demo: its output kept, a ready-wait, a clean stop.

`Child` spawns `argv` with stdout and stderr going to an anonymous temp file (so `log()` can
show the tail when something goes wrong), waits until a readiness check passes (raising with
the log tail if the child exits or the timeout passes, after stopping it), and stops it with
SIGTERM, then SIGKILL after a grace period. `free_port` picks a free loopback port. Used by
hack/llamaserver.py and hack/otelcol.py; does process and file I/O.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

HOST = "127.0.0.1"
STOP_GRACE = 10.0


def free_port(host: str = HOST) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class Child:
    """One child process and the temp file holding its output."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        # Lives as long as the child (closed in close()), so no `with` block.
        self._log: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115
        self._proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
        )

    def wait_ready(
        self, ready: Callable[[], bool], timeout: float, what: str, poll: float = 0.05
    ) -> None:
        """Return once `ready()`; else stop the child and raise with what it printed."""
        deadline = time.monotonic() + timeout
        while not ready():
            if self._proc.poll() is not None:
                failure = f"{self.name} exited with {self._proc.returncode}"
            elif time.monotonic() > deadline:
                failure = f"{self.name} not {what} after {timeout:.0f}s"
            else:
                time.sleep(poll)
                continue
            log = self.log()
            self.close()
            raise RuntimeError(f"{failure}:\n{log}")

    def log(self, limit: int = 4000) -> str:
        """The last `limit` characters the child printed ("" once closed)."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]

    def terminate(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the child; SIGKILL it if it has not exited after `grace` seconds. Its
        output stays readable."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=grace)

    def kill(self) -> None:
        """SIGKILL the child (no clean shutdown: connections are cut) and reap it."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=STOP_GRACE)

    def close(self) -> None:
        """Terminate the child and drop its output."""
        self.terminate()
        if self._log is not None:
            self._log.close()
            self._log = None
