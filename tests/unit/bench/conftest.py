"""The benchmark harness lives in bench/ at the repository root, outside the installed package;
make it importable for its unit tests."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
