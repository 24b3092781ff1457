"""`corral operator`: configure and run Kopf with Corral's handlers.

Does I/O (starts the metrics server, runs Kopf until a signal). `cli` calls `run`; Kopf's
startup handler (in `handlers`) calls `start` to configure Kopf and build the `Operator`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import kopf
from pydantic import ValidationError

from corral.api import groups
from corral.operator import indexing, kube, mcpservers, metrics, naming, operating, settings
from corral.operator.reconciling import Reconciler

Resource = tuple[str, str] | tuple[str, str, str]

INDEXES = (
    "agents_by_reference",
    "tools_by_reference",
    "agents_by_namespace",
    "personas",
    "tools",
    "secrets",
    "mcp_servers",  # issue 12
    "mcp_servers_by_reference",  # issue 12
)


def run(namespaces: list[str], liveness_port: int, metrics_port: int, verbose: bool) -> int:
    """Run the operator until SIGINT/SIGTERM; empty `namespaces` means every namespace."""
    configure_logging(verbose)
    try:
        config = settings.load()
    except ValidationError as err:
        print(f"corral operator: invalid CORRAL_* settings:\n{err}", file=sys.stderr)
        return 2
    registry_metrics = metrics.build()
    metrics.serve(metrics_port, config.listen_host)
    from corral.operator import handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://{config.listen_host}:{liveness_port}/healthz",
        memo=kopf.Memo(settings=config, metrics=registry_metrics, exact=exact_names(namespaces)),
    )
    return 0


def exact_names(namespaces: Sequence[str]) -> bool:
    """Whether the operator watches a fixed list of namespaces (no globs, not cluster-wide)."""
    return bool(namespaces) and not any(set(ns) & set("*?[]!") for ns in namespaces)


def configure_logging(verbose: bool) -> None:
    """Kopf's log format; quiet Kopf chatter unless verbose; never the API client's bodies."""
    kopf.configure(verbose=verbose)
    # kubernetes-asyncio logs whole response bodies at DEBUG, Secrets included.
    logging.getLogger("kubernetes_asyncio").setLevel(logging.INFO)
    if not verbose:
        # Kopf logs every handler call at INFO; ours log what changed (see reconciling).
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def configure(
    kopf_settings: kopf.OperatorSettings,
    config: settings.OperatorSettings,
    children: Sequence[Resource],
    exact_namespaces: bool = False,
) -> None:
    """Kopf settings that make an idle or restarted operator write nothing."""
    kopf_settings.posting.reporting_component = naming.MANAGER
    kopf_settings.posting.reporting_instance = config.reporting_instance
    # Our own Events are posted explicitly (CamelCase reasons); Kopf posts only its errors.
    kopf_settings.posting.level = logging.ERROR
    kopf_settings.peering.standalone = True
    # Watching namespaces listed by exact name needs no cluster-scoped grant: without runtime
    # scanning Kopf does not list CRDs and namespaces cluster-wide (the chart's namespaced
    # mode has only Roles). Globs need scanning to find their namespaces; cluster-wide,
    # scanning lets the operator start before the CRDs are installed.
    kopf_settings.scanning.disabled = exact_namespaces
    kopf_settings.watching.server_timeout = config.watch_server_timeout
    kopf_settings.watching.client_timeout = config.watch_client_timeout
    kopf_settings.watching.connect_timeout = config.connect_timeout
    kopf_settings.networking.request_timeout = config.request_timeout
    kopf_settings.networking.connect_timeout = config.connect_timeout
    # Annotations, not status: the CRD status schema is ours. A successful handler leaves no
    # progress behind, and the diff-base is rewritten only when the spec changes, so resuming
    # after a restart writes nothing.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=groups.GROUP
    )
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=groups.GROUP, key="last-handled-configuration"
    )
    selector = ",".join(f"{k}={v}" for k, v in naming.MANAGED_SELECTOR.items())
    for resource in children:
        kopf_settings.watching.label_selectors[resource] = selector


async def start(
    kopf_settings: kopf.OperatorSettings,
    memo: Mapping[str, Any],
    indices: Mapping[str, Any],
    children: Sequence[Resource],
) -> operating.Operator:
    """Configure Kopf and build the running Operator (called once, from Kopf's startup)."""
    config: settings.OperatorSettings = memo.get("settings") or settings.load()
    meters: metrics.Metrics = memo.get("metrics") or metrics.build()
    configure(kopf_settings, config, children, exact_namespaces=bool(memo.get("exact")))
    client = await kube.connect(config.request_timeout, config.connect_timeout)
    client.on_write = meters.write
    indexes = indexing.Indexes(**{name: indices[name] for name in INDEXES})
    operator = operating.Operator(
        settings=config,
        client=client,
        reconciler=Reconciler(client=client, settings=config, metrics=meters, reader=indexes),
        indexes=indexes,
        metrics=meters,
    )
    operator.discoveries = mcpservers.Discoveries(  # issue 12
        client=client,
        indexes=indexes,
        settings=config,
        metrics=meters,
        tools_changed=lambda ns, name: operator.schedule_dependents(groups.MCPSERVER, ns, name),
    )
    operator.drift_task = asyncio.create_task(operator.drift_loop(), name="corral-drift-check")
    return operator
