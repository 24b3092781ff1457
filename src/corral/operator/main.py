"""`corral operator`: configure and run Kopf with Corral's handlers.

Does I/O (starts the metrics server, runs Kopf until a signal). `cli` calls `run`, which
imports `handlers` (registering them) and hands the settings to Kopf's memo; Kopf's startup
handler then calls `starting.start`. Nothing imports this module but `cli`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import kopf
from pydantic import ValidationError

from corral.operator import handlers, metrics, settings


def run(
    namespaces: list[str],
    liveness_port: int,
    metrics_port: int,
    verbose: bool,
    peering: str | None = None,
) -> int:
    """Run the operator until SIGINT/SIGTERM; empty `namespaces` means every namespace."""
    configure_logging(verbose)
    try:
        config = settings.load(**({"peering": peering} if peering else {}))
    except ValidationError as err:
        print(f"corral operator: invalid CORRAL_* settings:\n{err}", file=sys.stderr)
        return 2
    registry_metrics = metrics.build()
    metrics.serve(metrics_port, config.listen_host)
    assert handlers.AGENTS  # importing `handlers` registered them on Kopf's registry
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=f"http://{config.listen_host}:{liveness_port}/healthz",
        memo=kopf.Memo(
            settings=config,
            metrics=registry_metrics,
            namespaces=list(namespaces),
            exact=exact_names(namespaces),
        ),
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
