"""What changed since the operator last saw an object, so that only real changes cause work.

Pure in-memory bookkeeping, no I/O. One of each per operator process: a restarted operator
starts from nothing, and the resume reconcile of every Agent covers what happened meanwhile.
`operating` keeps the generation of each Persona and Tool (a status-only event leaves it
unchanged), a digest of each Secret's data and the Personas/Tools each Agent references;
`reconciling` keeps the resourceVersions its own writes of children returned, because the watch
event echoing such a write tells the operator nothing new.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from corral.api import groups

Key = tuple[str, str, str]
"""(kind, namespace, name)"""


class Change(enum.Enum):
    NONE = "none"
    """Seen before with the same version: a status- or metadata-only event, or a re-listing."""
    LISTED = "listed"
    """First seen in the listing a watch starts with (at startup, or after a watch gap)."""
    NEW = "new"
    """First seen in a watch event: created while the operator was watching."""
    CHANGED = "changed"
    GONE = "gone"


@dataclasses.dataclass
class Versions:
    """The last version seen of each object: a Persona's or Tool's generation, a digest of
    a Secret's data."""

    _seen: dict[Key, str] = dataclasses.field(default_factory=dict)

    def observe(self, key: Key, event_type: str | None, version: str) -> Change:
        """Record a Kopf event (`event_type` None for a listing) and say what it changed."""
        if event_type == "DELETED":
            self._seen.pop(key, None)
            return Change.GONE
        before = self._seen.get(key)
        self._seen[key] = version
        if before is None:
            return Change.LISTED if event_type is None else Change.NEW
        return Change.NONE if before == version else Change.CHANGED

    def forget(self, key: Key) -> None:
        self._seen.pop(key, None)


@dataclasses.dataclass(frozen=True)
class Usage:
    """How one Agent event changes which Personas and Tools are used."""

    stale: frozenset[Key]
    """Personas and Tools whose `usedBy` may now be out of date."""
    came_or_went: bool
    """The Agent was seen for the first time, or deleted (agent Tools calling it care)."""


@dataclasses.dataclass
class References:
    """The Personas and Tools each Agent referenced when last seen."""

    _seen: dict[tuple[str, str], frozenset[Key]] = dataclasses.field(default_factory=dict)

    def observe(
        self, namespace: str, name: str, event_type: str | None, references: Iterable[Key]
    ) -> Usage:
        agent = (namespace, name)
        if event_type == "DELETED":
            return Usage(stale=self._seen.pop(agent, frozenset()), came_or_went=True)
        now = frozenset(key for key in references if key[0] in (groups.PERSONA, groups.TOOL))
        before = self._seen.get(agent)
        self._seen[agent] = now
        if before is None:
            return Usage(stale=now, came_or_went=True)
        return Usage(stale=before ^ now, came_or_went=False)


@dataclasses.dataclass
class Echoes:
    """The resourceVersion each child had right after the operator's own write."""

    _written: dict[Key, str] = dataclasses.field(default_factory=dict)

    def wrote(self, key: Key, resource_version: str | None) -> None:
        if resource_version:
            self._written[key] = resource_version

    def is_echo(self, key: Key, resource_version: str | None) -> bool:
        """True for the watch event of the operator's own last write (once)."""
        if resource_version is None or self._written.get(key) != resource_version:
            return False
        del self._written[key]
        return True

    def forget(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._written.pop(key, None)
