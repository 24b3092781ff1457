"""Leases: one file per live user of the cluster (a test session), so the session that started
the cluster can tell whether others still need it.

Does I/O: files in `<state>/sessions`, named `<pid>-<random>`; a lease whose process is gone is
stale and is removed when leases are listed. Used by `sessions` and by `cluster.down` (to warn).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from localcluster import settings


def take(config: settings.Settings) -> Path:
    config.sessions_dir.mkdir(parents=True, exist_ok=True)
    lease = config.sessions_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lease.write_text(f"{os.getpid()}\n")
    return lease


def live(config: settings.Settings) -> list[Path]:
    """Leases whose process still exists; stale ones (from crashed sessions) are removed."""
    if not config.sessions_dir.is_dir():
        return []
    result = []
    for lease in sorted(config.sessions_dir.iterdir()):
        pid = lease.name.split("-", 1)[0]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            result.append(lease)
        else:
            lease.unlink(missing_ok=True)
    return result
