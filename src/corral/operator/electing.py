"""High availability: lead only while holding a `coordination.k8s.io` Lease.

Does I/O. With `corral operator --peering NAME`, `starting` runs `Election.run`: every replica
watches and keeps its cache warm, and the one holding the Lease NAME (in the operator's
namespace) runs the scheduler's work. The election is kubernetes-asyncio's maintained
implementation of client-go's: the holder renews every `retry_period`; a holder that cannot
renew within `renew_deadline` stops its work; another replica takes the Lease only once it has
gone unrenewed for `lease_duration`, which is longer than the deadline, so two replicas never
work at once. A replica that lost the Lease stands by and runs for it again.

Why not Kopf's peering: a frozen Kopf operator pauses its watches, so a standby would start
cold (list everything, then resume every Agent), and equal priorities freeze every replica.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.leaderelection import electionconfig, leaderelection
from kubernetes_asyncio.leaderelection.resourcelock import leaselock

from corral.operator import metrics, settings

log = logging.getLogger(__name__)
NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
Work = Callable[[], Coroutine[Any, Any, None]]


def lease_namespace(configured: str | None) -> str:
    """The namespace of the Lease: configured, else the pod's own, else `default`."""
    if configured:
        return configured
    if NAMESPACE_FILE.exists():
        return NAMESPACE_FILE.read_text().strip()
    return "default"


def identity() -> str:
    """Unique per process: the pod name (hostname) and a random suffix."""
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@dataclasses.dataclass
class Election:
    name: str
    namespace: str
    identity: str
    api: k8s.ApiClient
    lease_duration: int
    renew_deadline: int
    retry_period: int
    meters: metrics.Metrics

    @classmethod
    def of(
        cls, config: settings.OperatorSettings, api: k8s.ApiClient, meters: metrics.Metrics
    ) -> Election:
        assert config.peering is not None
        return cls(
            name=config.peering,
            namespace=lease_namespace(config.peering_namespace),
            identity=identity(),
            api=api,
            lease_duration=config.lease_duration_seconds,
            renew_deadline=config.lease_renew_deadline_seconds,
            retry_period=config.lease_retry_period_seconds,
            meters=meters,
        )

    async def run(self, work: Work) -> None:
        """Run for the Lease forever; run `work` while holding it, cancelled on losing it."""
        log.info("standing by for Lease %s/%s as %s", self.namespace, self.name, self.identity)
        while True:
            lock = leaselock.LeaseLock(self.name, self.namespace, self.identity, self.api)
            config = electionconfig.Config(
                lock,
                lease_duration=self.lease_duration,
                renew_deadline=self.renew_deadline,
                retry_period=self.retry_period,
                onstarted_leading=lambda: self._lead(work),
                onstopped_leading=self._stopped,
            )
            try:
                await leaderelection.LeaderElection(config).run()
            except Exception:  # an API error the library does not handle: stand by, run again
                log.exception("Lease %s/%s: election failed", self.namespace, self.name)
                self.meters.leading.set(0)
            await asyncio.sleep(self.retry_period)

    async def _lead(self, work: Work) -> None:
        log.info("leading: holding Lease %s/%s as %s", self.namespace, self.name, self.identity)
        self.meters.leading.set(1)
        try:
            await work()
        finally:
            self.meters.leading.set(0)

    async def _stopped(self) -> None:
        self.meters.leading.set(0)
        log.warning("lost Lease %s/%s: standing by", self.namespace, self.name)
