"""The runtime as N worker processes on one port, for the "as many workers as cores" runs.

`corral runtime` serves one process (in Kubernetes one scales by replicas). To measure how the
same app scales over cores on one host, this starts N processes that each bind the port with
SO_REUSEPORT (the kernel spreads connections over them) and serve an app built exactly as
`corral.runtime.main.run` builds it (CORRAL_* settings, JSON logs, the same uvicorn options).
Each worker touches `--ready-dir`/PID once its app has started, so the suite knows when all
are up. uvicorn's own `--workers` supervisor is not used: it binds a socket whose protocol
number is 0, so asyncio skips TCP_NODELAY on accepted connections and every two-write response
waits ~40 ms for a delayed ACK, which would measure Nagle's algorithm instead of the runtime.
Started by the runtime suite: `python -m bench.workers --config PATH --port P --workers N
--ready-dir DIR`; binds a loopback port.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import uvicorn

from corral.api.runtimeconfig import RuntimeConfig
from corral.runtime import app as appmod
from corral.runtime import logging as jsonlog
from corral.runtime import settings

BACKLOG = 2048


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket (protocol IPPROTO_TCP, as asyncio's own) bound with SO_REUSEPORT."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


class _Worker(uvicorn.Server):
    """uvicorn's server that marks itself ready once the app's startup has finished."""

    def __init__(self, config: uvicorn.Config, ready: Path) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._ready.touch()


def serve_one(config_path: Path, host: str, port: int, ready_dir: Path) -> None:
    """One worker: the app as `corral runtime` builds it, on a shared SO_REUSEPORT port."""
    conf = settings.load()
    jsonlog.configure(conf.log_level)
    config = RuntimeConfig.from_json(config_path.read_bytes())
    app = appmod.create_app(config, conf, os.environ)
    server = _Worker(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            server_header=False,
            lifespan="on",
            timeout_keep_alive=int(conf.keep_alive_seconds),
            timeout_graceful_shutdown=int(conf.shutdown_grace_seconds),
        ),
        ready_dir / str(os.getpid()),
    )
    server.run(sockets=[listening_socket(host, port)])


def supervise(argv: list[str], workers: int) -> int:
    """Start the workers; when a signal comes or one worker exits, stop them all. The exit
    code is the first worker's to exit."""
    children = [subprocess.Popen([*argv, "--one"]) for _ in range(workers)]

    def stop_all(signum: int = signal.SIGTERM, frame: object = None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    _, status = os.wait()
    stop_all()
    for child in children:
        child.wait()
    return os.waitstatus_to_exitcode(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--ready-dir", type=Path, required=True)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        serve_one(args.config, args.host, args.port, args.ready_dir)
        return 0
    args.ready_dir.mkdir(parents=True, exist_ok=True)
    return supervise([sys.executable, "-m", "bench.workers", *sys.argv[1:]], args.workers)


if __name__ == "__main__":
    sys.exit(main())
