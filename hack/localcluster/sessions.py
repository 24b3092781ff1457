"""Sharing one local cluster between concurrent test sessions (the pytest `cluster` fixture).

Does I/O: takes the cluster lock, may start or stop the cluster, takes a lease (`leases`).
A session reuses a running cluster. If it had to start one, it stops it at the end, unless
another live session still holds a lease on it or CORRAL_KEEP_CLUSTER=1 is set. A session that
did not start the cluster never stops it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from localcluster import binaries, cluster, handles, leases, output, settings

KEEP_ENV = "CORRAL_KEEP_CLUSTER"


@contextlib.contextmanager
def session(
    config: settings.Settings | None = None,
    log: output.Log | None = None,
    keep: bool | None = None,
) -> Iterator[handles.Cluster]:
    """Yield a running cluster for the duration of the block; see the module docstring."""
    config = config or settings.Settings.from_env()
    say = log or output.stderr
    if keep is None:
        keep = os.environ.get(KEEP_ENV, "").lower() in ("1", "true", "yes")
    paths = binaries.ensure(config, binaries.CLUSTER, log=say)
    with cluster.lock(config):
        # The session owns the cluster if it had to start the API server (not if it only
        # restarted, say, a crashed kwok under someone else's cluster).
        started = "kube-apiserver" in cluster.start(config, paths, say)
        lease = leases.take(config)
    try:
        yield cluster.handle(config)
    finally:
        with cluster.lock(config):
            lease.unlink(missing_ok=True)
            others = leases.live(config)
            if started and not keep and not others:
                say("stopping the cluster this test session started")
                cluster.stop(config, say)
            elif started:
                reason = f"{KEEP_ENV} is set" if keep else f"{len(others)} other session(s) use it"
                say(f"leaving the cluster running: {reason}")
