"""Kubernetes Events about Agents, Personas and Tools (`kubectl describe` shows them).

`event` builds a core/v1 Event (pure); `post` creates it through `kube.Kube` (I/O) and never
raises: an Event that cannot be posted must not fail a reconcile. Called by `reconciling` on
failures, rollouts and Ready transitions only, so an idle operator posts nothing. Reasons
are CamelCase; messages never contain secret values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from corral.operator import errors, kube, naming

EventType = Literal["Normal", "Warning"]
MAX_MESSAGE = 1024

log = logging.getLogger(__name__)


def event(
    regarding: Mapping[str, Any],
    type_: EventType,
    reason: str,
    message: str,
    now: str,
    instance: str,
) -> dict[str, Any]:
    meta = regarding.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": regarding.get("apiVersion"),
            "kind": regarding.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "source": {"component": naming.MANAGER},
        "reportingComponent": naming.MANAGER,
        "reportingInstance": instance,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


async def post(client: kube.Kube, obj: Mapping[str, Any]) -> None:
    namespace = obj["metadata"]["namespace"]
    try:
        await client.create("Event", kube.path("v1", "Event", namespace), obj)
    except errors.OperatorError as err:
        log.warning("could not post Event %s: %s", obj.get("reason"), err)
