"""Does a live object already hold everything we would apply? Pure.

Used by `applying` to skip writes. The desired manifest must be contained in the live object:
maps by key (extra live keys are server defaults or other managers' fields), lists of named
items by name, other lists by position, resource quantities by value ("0.5" == "500m").
Fields we stopped rendering are caught by the `corral.dev/applied-hash` annotation instead.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Mapping, Sequence
from typing import Any

_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([KMGTPE]i|[numkMGTPE])?$")
_SUFFIXES: dict[str, decimal.Decimal] = {
    suffix: decimal.Decimal(value)
    for suffix, value in {
        "": "1",
        "n": "1e-9",
        "u": "1e-6",
        "m": "1e-3",
        "k": "1e3",
        "M": "1e6",
        "G": "1e9",
        "T": "1e12",
        "P": "1e15",
        "E": "1e18",
        "Ki": str(2**10),
        "Mi": str(2**20),
        "Gi": str(2**30),
        "Ti": str(2**40),
        "Pi": str(2**50),
        "Ei": str(2**60),
    }.items()
}
_QUANTITY_KEYS = frozenset({"cpu", "memory", "ephemeral-storage", "storage", "sizeLimit"})


def contains(desired: Any, live: Any, parent: str = "") -> bool:
    """True when every field of `desired` is present with an equal value in `live`."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return not desired and live is None
        return all(
            contains(value, live.get(key), parent=key)
            for key, value in desired.items()
            if not (value in ({}, []) and live.get(key) is None)
        )
    if isinstance(desired, list):
        return isinstance(live, list) and _contains_list(desired, live)
    if parent in _QUANTITY_KEYS or parent.startswith("hugepages-"):
        return _same_quantity(desired, live)
    return bool(desired == live and type(desired) is type(live))


def _contains_list(desired: Sequence[Any], live: Sequence[Any]) -> bool:
    if desired and all(isinstance(item, Mapping) and "name" in item for item in desired):
        by_name = {item.get("name"): item for item in live if isinstance(item, Mapping)}
        return all(contains(item, by_name.get(item["name"])) for item in desired)
    return len(desired) == len(live) and all(
        contains(d, v) for d, v in zip(desired, live, strict=True)
    )


def _same_quantity(desired: Any, live: Any) -> bool:
    if desired == live:
        return True
    left, right = quantity(desired), quantity(live)
    return left is not None and left == right


def quantity(value: Any) -> decimal.Decimal | None:
    """The numeric value of a Kubernetes resource.Quantity, or None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    match = _QUANTITY.match(str(value).strip())
    if match is None:
        return None
    number, suffix = match.groups()
    return decimal.Decimal(number) * _SUFFIXES[suffix or ""]
