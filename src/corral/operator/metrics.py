"""The operator's Prometheus metrics, declared once, with bounded labels.

No I/O except `serve`, which starts the exposition HTTP server. `main` builds one `Metrics`
on the default registry; tests build their own on a fresh `CollectorRegistry`. Labels are
kinds, outcomes, reasons and verbs: small fixed sets, never object names or secret values.
"""

from __future__ import annotations

import dataclasses

import prometheus_client as prom


@dataclasses.dataclass(frozen=True)
class Metrics:
    registry: prom.CollectorRegistry
    reconciles: prom.Counter
    duration: prom.Histogram
    errors: prom.Counter
    managed: prom.Gauge
    writes: prom.Counter
    leading: prom.Gauge

    def write(self, kind: str, verb: str) -> None:
        """Count one write to the API server (`kube.Kube.on_write`)."""
        self.writes.labels(kind=kind, verb=verb).inc()


def build(registry: prom.CollectorRegistry | None = None) -> Metrics:
    registry = registry if registry is not None else prom.REGISTRY
    return Metrics(
        registry=registry,
        reconciles=prom.Counter(
            "corral_operator_reconciles",
            "Reconciles by kind (Agent, Persona, Tool) and outcome.",
            ["kind", "outcome"],
            registry=registry,
        ),
        duration=prom.Histogram(
            "corral_operator_reconcile_duration_seconds",
            "Time one reconcile took, by kind.",
            ["kind"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        ),
        errors=prom.Counter(
            "corral_operator_errors",
            "Failed reconciles by kind and CamelCase reason.",
            ["kind", "reason"],
            registry=registry,
        ),
        managed=prom.Gauge(
            "corral_operator_managed_objects",
            "Objects the operator currently manages, by kind.",
            ["kind"],
            registry=registry,
        ),
        writes=prom.Counter(
            "corral_operator_api_writes",
            "Writes to the Kubernetes API by kind and verb (zero while idle).",
            ["kind", "verb"],
            registry=registry,
        ),
        leading=prom.Gauge(
            "corral_operator_leading",
            "1 while this replica does the work (holds the Lease with --peering), else 0.",
            registry=registry,
        ),
    )


def serve(port: int, host: str, registry: prom.CollectorRegistry | None = None) -> None:
    """Serve /metrics on `host:port` from a daemon thread."""
    chosen = registry if registry is not None else prom.REGISTRY
    prom.start_http_server(port, addr=host, registry=chosen)
