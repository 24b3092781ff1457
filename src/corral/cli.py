"""The `corral` command: `operator`, `runtime`, `render`, `crds`, `console` and `chat`.

Parses arguments only; each command's work lives in its own half, imported lazily so that
`corral runtime` never loads Kopf and `corral operator` never loads FastAPI.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EPILOG = """\
examples:
  corral operator -A                          watch Agents in every namespace
  corral operator -n team-a -n team-b         watch two namespaces
  corral runtime --config /etc/corral/runtime.json --port 8080
  corral render -f examples/                  print what the operator would apply
  corral crds > crds.yaml                     print the CRDs generated from the models
  corral console                              the web console on http://127.0.0.1:8090/
  corral chat support -n shop                 chat with the Agent shop/support in the terminal
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral",
        description="Run AI agents on Kubernetes: a Kopf operator for Agent, Persona and Tool"
        " resources, and the OpenAI-compatible runtime that serves each Agent.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    op = commands.add_parser(
        "operator",
        help="run the operator (reconciles Agents into Deployments)",
        description="Run the Kopf operator. Reconciles each Agent into a ConfigMap, a Deployment"
        " and a Service, and keeps their status. Example: corral operator -A",
    )
    scope = op.add_mutually_exclusive_group()
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="watch every namespace (default)"
    )
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable; glob patterns as in Kopf)",
    )
    op.add_argument(
        "--peering",
        metavar="NAME",
        default=None,
        help="high availability: run several replicas, the one holding the Lease NAME works",
    )
    op.add_argument("--liveness-port", type=int, default=8081, help="health endpoint port")
    op.add_argument("--metrics-port", type=int, default=8082, help="Prometheus metrics port")
    op.add_argument("--verbose", action="store_true", help="debug logging")

    rt = commands.add_parser(
        "runtime",
        help="serve one Agent over the OpenAI API",
        description="Serve one Agent: POST /v1/chat/completions, GET /v1/models, /healthz,"
        " /readyz, /metrics. Example: corral runtime --config runtime.json --port 8080",
    )
    rt.add_argument(
        "--config", required=True, type=Path, help="runtime config (the ConfigMap's runtime.json)"
    )
    rt.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    rt.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")

    render = commands.add_parser(
        "render",
        help="print, offline, the objects the operator would apply",
        description="Render Agent/Persona/Tool manifests into the ConfigMaps, Deployments and"
        " Services the operator would apply, as multi-document YAML. No cluster needed."
        " Example: corral render -f examples/",
    )
    render.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="manifest file or directory (repeatable)",
    )
    render.add_argument("--image", default=None, help="runtime image to render")

    crds = commands.add_parser(
        "crds",
        help="print the CRDs generated from corral.api",
        description="Print the Agent, Persona and Tool CustomResourceDefinitions."
        " Example: corral crds | kubectl apply --server-side -f -",
    )
    crds.add_argument(
        "--output-dir", type=Path, default=None, help="write one file per CRD into this directory"
    )
    _console_parser(commands)
    _chat_parser(commands)
    return parser


def _chat_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser(
        "chat",
        help="chat with an Agent in the terminal, through the API server (your kubeconfig)",
        description="Chat with an Agent through the API server's service proxy, streamed. One"
        " question with -m or piped stdin, a conversation when stdin is a terminal. The answer"
        " goes to stdout; tool calls, the model that answered and token usage to stderr."
        " Needs 'create' on services/proxy. Example: corral chat support -n shop -m 'Hi'",
    )
    chat.add_argument("agent", metavar="AGENT", help="the Agent's name")
    chat.add_argument(
        "-n", "--namespace", default=None, help="the Agent's namespace (default: the context's)"
    )
    chat.add_argument("-m", "--message", default=None, help="ask this one question and exit")
    chat.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    chat.add_argument("--context", default=None, help="kubeconfig context to use")


def _console_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    console = commands.add_parser(
        "console",
        help="the web console: registry, Agent status, forms (with your kubeconfig)",
        description="Serve the web console with your own credentials (kubeconfig as kubectl"
        " finds it, or the pod's ServiceAccount in the cluster). It stores nothing."
        " Example: corral console --port 8090",
    )
    # Defaults live in corral.console.settings (so CORRAL_CONSOLE_* env vars apply too).
    console.add_argument("--host", default=None, help="address to bind (127.0.0.1)")
    console.add_argument("--port", type=int, default=None, help="port to bind (8090)")
    console.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    console.add_argument("--context", default=None, help="kubeconfig context to use")
    console.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="namespace to show when you may not list all namespaces (repeatable;"
        " default: the context's namespace)",
    )
    console.add_argument(
        "--read-only", action="store_true", help="hide the forms that create and edit objects"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "operator":
        from corral.operator import main as operator_main

        return operator_main.run(
            namespaces=args.namespace,
            peering=args.peering,
            liveness_port=args.liveness_port,
            metrics_port=args.metrics_port,
            verbose=args.verbose,
        )
    if args.command == "runtime":
        from corral.runtime import main as runtime_main

        return runtime_main.run(config_path=args.config, host=args.host, port=args.port)
    if args.command == "render":
        from corral.operator import offline

        return offline.run(paths=args.filename, image=args.image, out=sys.stdout, err=sys.stderr)
    if args.command == "chat":
        from corral.console import chatterm

        return chatterm.run(
            chatterm.Options(
                agent=args.agent,
                namespace=args.namespace,
                message=args.message,
                kubeconfig=args.kubeconfig,
                context=args.context,
            )
        )
    if args.command == "console":
        from corral.console import main as console_main
        from corral.console import settings as console_settings

        flags = {
            "host": args.host,
            "port": args.port,
            "kubeconfig": args.kubeconfig,
            "context": args.context,
            "namespaces": tuple(args.namespace) or None,
            "read_only": args.read_only or None,
        }
        given = {name: value for name, value in flags.items() if value is not None}
        return console_main.run(console_settings.Settings(**given))
    from corral.api import crds as crd_gen

    return crd_gen.run(output_dir=args.output_dir, out=sys.stdout)


def entrypoint() -> None:
    """Console-script entry: exit with main()'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
