#!/usr/bin/env python3
"""Command line for the local Kubernetes control plane (see hack/localcluster).

python hack/cluster.py build [NAME...]   build the pinned binaries into ~/.cache/corral/bin
python hack/cluster.py up                build what is missing, start, wait until ready
python hack/cluster.py down              stop what `up` started and remove .cluster/
python hack/cluster.py status            one line per component; exit 1 unless all ready
python hack/cluster.py image             build the image (cached by content), load it into the node
python hack/cluster.py expose PORT        let pods reach 127.0.0.1:PORT at the node's bridge address
python hack/cluster.py kubectl ARGS...   the pinned kubectl against the local cluster
python hack/cluster.py helm ARGS...      the pinned helm against the local cluster
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from localcluster import (
    api,
    binaries,
    cluster,
    debian,
    images,
    node,
    output,
    pki,
    probes,
    processes,
    settings,
)

# Failures with a message that says what went wrong and what to do: no traceback needed.
EXPECTED_ERRORS = (
    api.ApiError,
    binaries.BuildError,
    debian.PackageError,
    images.ImageError,
    node.NodeError,
    pki.PkiError,
    probes.NotReadyError,
    processes.StartError,
)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("kubectl", "helm"):
        # Passed through verbatim: argparse would take their flags (-n, -o) for its own.
        return _exec_tool(argv[0], argv[1:])
    parser = argparse.ArgumentParser(prog="hack/cluster.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build the pinned binaries that are missing")
    build.add_argument("names", nargs="*", metavar="NAME", help=", ".join(binaries.BY_NAME))
    commands.add_parser("up", help="start the control plane (idempotent)")
    commands.add_parser("down", help="stop it and remove its state")
    commands.add_parser("status", help="show what runs; exit 1 unless everything is ready")
    commands.add_parser("image", help="build the project's image and load it into the node")
    expose = commands.add_parser("expose", help="let pods reach a loopback port of this host")
    expose.add_argument("port", type=int)
    for name in ("kubectl", "helm"):
        commands.add_parser(name, help=f"run the pinned {name} against the cluster")
    args = parser.parse_args(argv)
    config = settings.Settings.from_env()

    if args.command == "build":
        unknown = sorted(set(args.names) - set(binaries.BY_NAME))
        if unknown:
            parser.error(f"unknown binaries {unknown}; choose from {list(binaries.BY_NAME)}")
        started = time.monotonic()
        paths = binaries.ensure(config, args.names or None)
        for name, path in paths.items():
            output.stderr(f"{name}: {path}")
        output.stderr(f"all present after {time.monotonic() - started:.0f}s")
    elif args.command == "up":
        cluster.up(config)
    elif args.command == "down":
        cluster.down(config)
    elif args.command == "status":
        return _print_status(config)
    elif args.command == "image":
        image = images.corral(config)
        node.load_image(config, image)
        print(image.reference)
    elif args.command == "expose":
        print(node.expose_host_port(config, args.port))
    return 0


def _exec_tool(tool: str, args: list[str]) -> int:
    handle = cluster.handle()
    path = handle.kubectl_path if tool == "kubectl" else handle.helm_path
    argv = [str(path), f"--kubeconfig={handle.kubeconfig}", *args]
    os.execve(argv[0], argv, handle.env())


def _print_status(config: settings.Settings) -> int:
    state = cluster.status(config)
    for component in state.components:
        pid = "-" if component.pid is None else str(component.pid)
        health = "healthy" if component.healthy else "NOT healthy"
        print(f"{component.name:<24} pid {pid:<8} {health}")
    print(f"{'kwok node':<24} {'':<12} {'Ready' if state.node_ready else 'NOT Ready'}")
    print(f"{'real node':<24} {'':<12} {'Ready' if state.real_node_ready else 'NOT Ready'}")
    if state.ready:
        print(f"ready: export KUBECONFIG={config.kubeconfig}")
    return 0 if state.ready else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EXPECTED_ERRORS as error:
        output.stderr(f"error: {error}")
        sys.exit(1)
