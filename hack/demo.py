#!/usr/bin/env python3
"""`make demo`: the whole Corral path on this machine, narrated step by step.

The local control plane comes up; the Helm chart installs the CRDs and the operator's RBAC;
the operator runs as a local process with the chart's ServiceAccount token (pods on kwok nodes
are simulated, nothing runs in them); llama-cpp-python serves Gemma 3 270M on 127.0.0.1:8000;
the examples are applied and the Agent becomes Ready; then the runtime serves that Agent from
its rendered ConfigMap and the official openai SDK streams a chat through it.
`make demo-down` stops what the demo started. Does I/O throughout.

Usage: python hack/demo.py up|down
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import llamaserver
import serviceaccounts
from localcluster import cluster, components, handles, probes, processes, settings

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".demo"
VENV_BIN = Path(sys.executable).parent
# Run `corral` through the interpreter so /proc/<pid>/cmdline starts with the executable
# recorded in the PID file (a script's cmdline starts with its interpreter).
CORRAL = [sys.executable, str(VENV_BIN / "corral")]
CHART = ROOT / "charts" / "corral"
RELEASE, RELEASE_NS = "corral", "corral-system"
AGENT, AGENT_NS = "support", "default"
EXAMPLES = ["persona-support-tone.yaml", "tool-order-lookup.yaml", "agent-support.yaml"]
LLAMA_PORT, RUNTIME_PORT, OPERATOR_HEALTH_PORT, OPERATOR_METRICS_PORT = 8000, 8080, 28081, 28082
PROCESSES = ("demo-runtime", "demo-operator", "demo-llama")
QUESTION = "Hello! In one sentence, what can you help me with?"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def say(text: str) -> None:
    print("\n".join(f"    {line}" for line in text.splitlines()), flush=True)


def _spawn(
    config: settings.Settings,
    name: str,
    argv: list[str],
    port: int,
    health: str,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> None:
    """Start `argv` tracked by a PID file under the cluster's state dir; wait for `health`."""
    if processes.running(config, name):
        say(f"{name} already running")
        return
    component = components.Component(name, argv, port, health, env or {})
    processes.start(config, component)
    probes.wait_for(
        name,
        lambda: probes.healthy(health),
        timeout,
        detail=lambda: (
            processes.exited_early(config, name) or processes.tail(processes.log_file(config, name))
        ),
    )
    say(f"{name} is up; log: {processes.log_file(config, name)}")


def install_chart(kube: handles.Cluster) -> None:
    step("Installing the CRDs and the operator's RBAC with the Helm chart (charts/corral)")
    kube.helm(
        "upgrade", "--install", RELEASE, str(CHART), "-n", RELEASE_NS, "--create-namespace",
        "--take-ownership", "--wait", "--timeout", "180s",
    )  # fmt: skip
    say(kube.kubectl("get", "crd", "-l", "app.kubernetes.io/part-of=corral").stdout.strip())


def run_operator(config: settings.Settings, kube: handles.Cluster) -> None:
    step("Running the operator locally with the chart's ServiceAccount token (not admin)")
    kubeconfig = serviceaccounts.kubeconfig(
        kube, RELEASE_NS, RELEASE, STATE / "operator.kubeconfig"
    )
    _spawn(
        config,
        "demo-operator",
        # Only the demo's namespace: an operator watching every namespace would fight any
        # other operator on the cluster (the test suite's, for one) over their Agents.
        [*CORRAL, "operator", f"--namespace={AGENT_NS}",
         f"--liveness-port={OPERATOR_HEALTH_PORT}", f"--metrics-port={OPERATOR_METRICS_PORT}"],
        OPERATOR_HEALTH_PORT,
        f"http://127.0.0.1:{OPERATOR_HEALTH_PORT}/healthz",
        env={"KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip


def run_model_server(config: settings.Settings) -> None:
    step("Starting the model server: llama-cpp-python serving Gemma 3 270M on 127.0.0.1:8000")
    say("Gemma 3 270M is a tiny *base* model: it is here to prove the path, not to be smart.")
    _spawn(
        config,
        "demo-llama",
        llamaserver.command(llamaserver.model_path(), LLAMA_PORT),
        LLAMA_PORT,
        f"http://127.0.0.1:{LLAMA_PORT}/v1/models",
        timeout=180,
    )  # fmt: skip


def apply_examples(kube: handles.Cluster) -> None:
    step(f"Applying the examples: kubectl apply --server-side -f examples/{{{','.join(EXAMPLES)}}}")
    args = [arg for name in EXAMPLES for arg in ("-f", str(ROOT / "examples" / name))]
    say(kube.kubectl("apply", "--server-side", "-n", AGENT_NS, *args).stdout.strip())
    step(f"Waiting for Agent {AGENT} to be Ready (the operator rolls out its Deployment)")
    kube.kubectl(
        "wait", "--for=condition=Ready", f"agent/{AGENT}", "-n", AGENT_NS, "--timeout=180s"
    )
    print(kube.kubectl("get", "agents,personas,tools", "-n", AGENT_NS).stdout, flush=True)


def run_runtime(config: settings.Settings, kube: handles.Cluster) -> None:
    step(f"Serving Agent {AGENT} locally from its rendered ConfigMap ({AGENT}-runtime)")
    configmap = json.loads(
        kube.kubectl("get", "configmap", f"{AGENT}-runtime", "-n", AGENT_NS, "-o", "json").stdout
    )
    path = STATE / "runtime.json"
    path.write_text(configmap["data"]["runtime.json"])
    say(f"wrote {path.relative_to(ROOT)}")
    _spawn(
        config,
        "demo-runtime",
        [*CORRAL, "runtime", "--config", str(path), "--host", "127.0.0.1",
         "--port", str(RUNTIME_PORT)],
        RUNTIME_PORT,
        f"http://127.0.0.1:{RUNTIME_PORT}/readyz",
    )  # fmt: skip


def chat() -> None:
    """Stream one answer as it arrives, between an `assistant:` line and a `(N ... tokens)` line.

    The model's text is printed verbatim on lines of its own (it may start with a newline or
    hold several), so the whole answer reads, and tests read it, between those two lines.
    """
    step(f"Chatting with Agent {AGENT} through the runtime, with the official openai SDK")
    from openai import OpenAI

    client = OpenAI(base_url=f"http://127.0.0.1:{RUNTIME_PORT}/v1", api_key="demo")
    say(f"user: {QUESTION}")
    say("assistant:")
    stream = client.chat.completions.create(
        model=AGENT, messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    usage = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
        usage = chunk.usage or usage
    print(flush=True)
    if usage is None:
        raise SystemExit("the runtime's stream ended without a usage chunk")
    say(f"({usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens)")


def up() -> int:
    started = time.monotonic()
    STATE.mkdir(exist_ok=True)
    step("Starting the local control plane (etcd, kube-apiserver, controller-manager, "
         "scheduler, kwok)")  # fmt: skip
    config = settings.Settings.from_env()
    if not cluster.status(config).ready:
        (STATE / "started-cluster").touch()
    kube = cluster.up(config)
    install_chart(kube)
    run_operator(config, kube)
    run_model_server(config)
    apply_examples(kube)
    run_runtime(config, kube)
    chat()
    step(f"Done in {time.monotonic() - started:.0f}s. Everything keeps running:")
    say(f"export KUBECONFIG={kube.kubeconfig}; kubectl get agents")
    say(f"curl http://127.0.0.1:{RUNTIME_PORT}/v1/models")
    say("make demo-down   # stops the runtime, the operator, the model server and the cluster")
    return 0


def down() -> int:
    config = settings.Settings.from_env()
    for name in PROCESSES:
        step(f"Stopping {name}: {processes.stop(config, name)}")
    if (STATE / "started-cluster").exists():
        step("Stopping the local control plane the demo started")
        cluster.down(config)
    else:
        kube = cluster.handle(config)
        if cluster.status(config).ready:
            step("Leaving the control plane running (it was up before the demo); removing the demo")
            kube.kubectl("delete", "agent", AGENT, "-n", AGENT_NS, "--ignore-not-found")
            kube.helm("uninstall", RELEASE, "-n", RELEASE_NS, "--ignore-not-found")
    for leftover in STATE.glob("*"):
        leftover.unlink()
    if STATE.exists():
        STATE.rmdir()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/demo.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    return up() if args.command == "up" else down()


if __name__ == "__main__":
    sys.exit(main())
