#!/usr/bin/env python3
"""`make demo`: the whole Corral path on this machine, narrated step by step, as on a real cluster.

The local control plane and its real node come up (containerd, kubelet, kube-proxy, CoreDNS);
the project's image is built from the Dockerfile (buildah, cached by content) and loaded into
the node; llama-cpp-python serves Gemma 3 270M on 127.0.0.1:8000, which pods reach at the
node's bridge address; `helm install` runs the operator as a pod; the examples are applied and
the Agent's runtime pods become Ready; `kubectl port-forward svc/support 8080:8080` (as the
README says) carries a streamed chat from the official openai SDK to the Agent's Service.
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
from typing import Any

import yaml

import llamaserver
from localcluster import (
    cluster,
    components,
    handles,
    images,
    node,
    nodeconfigs,
    probes,
    processes,
    settings,
)

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".demo"
CHART = ROOT / "charts" / "corral"
RELEASE, RELEASE_NS = "corral", "corral-system"
AGENT, AGENT_NS = "support", "default"
EXAMPLES = ["persona-support-tone.yaml", "tool-order-lookup.yaml", "agent-support.yaml"]
LLAMA_PORT, FORWARD_PORT = 8000, 8080
PROCESSES = ("demo-port-forward", "demo-llama")
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


def build_image(config: settings.Settings) -> images.Image:
    step("Building the image from the Dockerfile with buildah (cached by content) for the node")
    image = images.corral(config, log=say)
    node.load_image(config, image)
    say(f"{image.reference} is in the node's containerd")
    return image


def install_chart(kube: handles.Cluster, image: images.Image) -> None:
    step("Installing the operator with Helm: helm upgrade --install corral charts/corral")
    placement = {
        "nodeSelector": dict([nodeconfigs.LABEL]),
        "tolerations": [nodeconfigs.TOLERATION],
    }
    values = {
        "image": {"repository": image.repository, "tag": image.tag},
        "runtime": {"image": {"repository": image.repository, "tag": image.tag}},
        # Only the demo's namespace: an operator watching every namespace would fight any
        # other operator on the cluster (the test suite's, for one) over their Agents.
        "watch": {"allNamespaces": False, "namespaces": [AGENT_NS]},
        "operator": placement,
    }
    kube.helm(
        "upgrade", "--install", RELEASE, str(CHART), "-n", RELEASE_NS, "--create-namespace",
        "--take-ownership", "--wait", "--timeout", "180s", "--values", "-",
        input=json.dumps(values),
    )  # fmt: skip
    kube.kubectl("rollout", "status", f"deployment/{RELEASE}", "-n", RELEASE_NS, "--timeout=180s")
    say(kube.kubectl("get", "pods", "-n", RELEASE_NS, "-o", "wide").stdout.strip())


def run_model_server(config: settings.Settings) -> str:
    step(f"Starting the model server: llama-cpp-python, Gemma 3 270M, on 127.0.0.1:{LLAMA_PORT}")
    say("Gemma 3 270M is a tiny *base* model: it is here to prove the path, not to be smart.")
    _spawn(
        config,
        "demo-llama",
        llamaserver.command(llamaserver.model_path(), LLAMA_PORT),
        LLAMA_PORT,
        f"http://127.0.0.1:{LLAMA_PORT}/v1/models",
        timeout=180,
    )  # fmt: skip
    address = node.expose_host_port(config, LLAMA_PORT)
    say(f"pods reach it at http://{address}/v1 (the node's bridge address)")
    return address


def apply_examples(kube: handles.Cluster, model_address: str) -> None:
    step(f"Sending namespace {AGENT_NS}'s pods to the real node (the kwok node runs nothing)")
    annotations = [f"{k}={v}" for k, v in nodeconfigs.namespace_annotations().items()]
    kube.kubectl("annotate", "--overwrite", "namespace", AGENT_NS, *annotations)
    step(f"Applying the examples: examples/{{{','.join(EXAMPLES)}}}")
    say(f"with the Agent's model.baseURL set to http://{model_address}/v1")
    documents = [
        _pointed_at(doc, model_address)
        for name in EXAMPLES
        for doc in yaml.safe_load_all((ROOT / "examples" / name).read_text())
        if doc
    ]
    manifest = yaml.safe_dump_all(documents, sort_keys=False)
    say(kube.kubectl("apply", "--server-side", "-n", AGENT_NS, "-f", "-", input=manifest).stdout)
    step(f"Waiting for Agent {AGENT} to be Ready (its pods run the image on the real node)")
    applied = time.monotonic()
    kube.kubectl(
        "wait", "--for=condition=Ready", f"agent/{AGENT}", "-n", AGENT_NS, "--timeout=180s"
    )
    say(f"Ready {time.monotonic() - applied:.1f}s after kubectl apply")
    print(kube.kubectl("get", "agents,personas,tools", "-n", AGENT_NS).stdout, flush=True)
    print(kube.kubectl("get", "pods", "-n", AGENT_NS, "-o", "wide").stdout, flush=True)


def _pointed_at(document: dict[str, Any], model_address: str) -> dict[str, Any]:
    """The example Agent's model server is 127.0.0.1:8000 on *your* machine; in a pod that is
    the pod itself, so the demo points it at the node's address for that port."""
    if document.get("kind") == "Agent":
        document["spec"]["model"]["baseURL"] = f"http://{model_address}/v1"
    return document


def port_forward(config: settings.Settings, kube: handles.Cluster) -> None:
    step(f"kubectl port-forward svc/{AGENT} {FORWARD_PORT}:8080 (the README's way in)")
    _spawn(
        config,
        "demo-port-forward",
        [str(kube.kubectl_path), f"--kubeconfig={kube.kubeconfig}", "port-forward",
         "-n", AGENT_NS, f"svc/{AGENT}", f"{FORWARD_PORT}:8080"],
        FORWARD_PORT,
        f"http://127.0.0.1:{FORWARD_PORT}/readyz",
    )  # fmt: skip


def chat() -> None:
    """Stream one answer as it arrives, between an `assistant:` line and a `(N ... tokens)` line.

    The model's text is printed verbatim on lines of its own (it may start with a newline or
    hold several), so the whole answer reads, and tests read it, between those two lines.
    """
    step(f"Chatting with Agent {AGENT} through its Service, with the official openai SDK")
    from openai import OpenAI

    client = OpenAI(base_url=f"http://127.0.0.1:{FORWARD_PORT}/v1", api_key="demo")
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
    step("Starting the local control plane and its real node (containerd, kubelet, "
         "kube-proxy, CoreDNS) beside a kwok node")  # fmt: skip
    config = settings.Settings.from_env()
    if not cluster.status(config).ready:
        (STATE / "started-cluster").touch()
    kube = cluster.up(config)
    image = build_image(config)
    install_chart(kube, image)
    model_address = run_model_server(config)
    apply_examples(kube, model_address)
    port_forward(config, kube)
    chat()
    step(f"Done in {time.monotonic() - started:.0f}s. Everything keeps running:")
    say(f"export KUBECONFIG={kube.kubeconfig}; kubectl get agents,pods")
    say(f"curl http://127.0.0.1:{FORWARD_PORT}/v1/models   # through svc/{AGENT}")
    say("make demo-down   # stops the port-forward, the model server, the release, the cluster")
    return 0


def down() -> int:
    config = settings.Settings.from_env()
    for name in PROCESSES:
        step(f"Stopping {name}: {processes.stop(config, name)}")
    if (STATE / "started-cluster").exists():
        step("Stopping the local control plane and node the demo started")
        cluster.down(config)
    else:
        kube = cluster.handle(config)
        if cluster.status(config).ready:
            step("Leaving the cluster running (it was up before the demo); removing the demo")
            kube.kubectl("delete", "agent", AGENT, "-n", AGENT_NS, "--ignore-not-found")
            kube.helm("uninstall", RELEASE, "-n", RELEASE_NS, "--ignore-not-found")
            keys = [f"{key}-" for key in nodeconfigs.namespace_annotations()]
            kube.kubectl("annotate", "namespace", AGENT_NS, *keys, check=False)
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
