#!/usr/bin/env python3
"""The headless browser the console tests drive: Debian's Chromium, installed with apt-get.

Playwright's own browser downloads are not used (only package registries are reachable, and a
system browser is what a Debian user has anyway): the `playwright` Python package drives this
Chromium through `executable_path`. Fonts come with it so screenshots show text. Idempotent:
once the packages are installed it is a dpkg query. Does I/O (dpkg, apt-get as root). Called by
`make browser` (a prerequisite of `make test` and `make screenshots`) and by the console test
fixtures (tests/e2e/console/conftest.py), which need `executable()`:

    python hack/browser.py install      # idempotent
    python hack/browser.py path         # print the browser's path
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from localcluster import debian, output, settings

PACKAGES = ("chromium", "fonts-dejavu-core", "fonts-liberation")
CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")


class BrowserMissing(RuntimeError):
    """Chromium is not installed; the message says how to install it."""


def install(log: output.Log | None = None) -> Path:
    """Install Debian's Chromium (and fonts) when missing; return the browser's path."""
    debian.ensure(settings.Settings.from_env(), PACKAGES, log or output.stderr)
    return executable()


def executable() -> Path:
    """The installed Chromium's path, or BrowserMissing naming the command that installs it."""
    for candidate in CANDIDATES:
        if Path(candidate).exists():
            return Path(candidate)
    found = shutil.which("chromium")
    if found:
        return Path(found)
    raise BrowserMissing("Chromium is not installed: run `make browser` (apt-get install chromium)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("install", "path"))
    args = parser.parse_args(argv)
    path = install() if args.command == "install" else executable()
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
