"""Progress lines: the `Log` callable every long-running step takes, and its default (stderr).

Does I/O (writes to stderr). Lines are prefixed with `cluster:` so they stand out in test output.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

Log = Callable[[str], None]


def stderr(line: str) -> None:
    print(f"cluster: {line}", file=sys.stderr, flush=True)
