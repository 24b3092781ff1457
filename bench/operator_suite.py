"""The operator benchmark (the control plane), on the local control plane with kwok.

One run, in order: the operator starts with nothing to do (its idle cost, and how long a start
takes); the baseline applies the Deployments, Services and ConfigMaps of N Agents directly
with `kubectl apply --server-side` (what a perfect operator would cost the API server), and is
deleted again so that the next phase starts from the same cluster; then N Agents with shared
Personas and Tools are applied at once and timed to Ready; the operator idles (writes, CPU,
RSS), is restarted (time to resume, writes while resuming), and one Persona used by 200 Agents
changes (time until all 200 have rolled, against patching 200 Deployments applied directly);
the restarted operator drift-checks every Agent once more (its reads and writes counted). The
operator's API requests are counted by `kubeproxy`; times come from watches (`kubewatch`).
Everything lives in `bench-*` namespaces and on the benchmark's own tainted kwok nodes, removed
at the end. Called by `bench.__main__`.
"""

from __future__ import annotations

import collections
import compileall
import dataclasses
import json
import time
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import figures, fleet, kubeproxy, kubewatch, operators, procs, runtimes, stats
from bench.figures import Figure, Target

MIB = 1024 * 1024
DRIFT_SECONDS = 30.0
"""The restarted operator's drift-check interval: every Agent is checked again soon after it
resumed, inside the benchmark (the default is 300 s)."""
HASH = "corral.dev/config-hash"
TOUCH = "corral.dev/bench-touch"


@dataclass(frozen=True)
class Plan:
    agents: int = 1000
    tools: int = 10
    idle_seconds: float = 30.0
    settle_seconds: float = 10.0
    timeout: float = 900.0

    @property
    def personas(self) -> int:
        """So that one Persona is used by 200 Agents (or by all of fewer)."""
        return max(1, self.agents // 200)


FULL = Plan()
QUICK = Plan(agents=100, idle_seconds=10.0, settle_seconds=5.0, timeout=300.0)


def with_agents(plan: Plan, agents: int) -> Plan:
    return dataclasses.replace(plan, agents=agents)


def _percentiles(times: dict[str, float], start: float) -> dict[str, float]:
    seconds = [t - start for t in times.values()]
    return {
        "p50": stats.percentile(seconds, 50),
        "p99": stats.percentile(seconds, 99),
        "max": max(seconds),
    }


@dataclass
class _Context:
    plan: Plan
    cluster: Any
    workdir: Path
    ours: str
    theirs: str
    tls: Any
    result: figures.SuiteResult

    def watcher(self, namespace: str, plural: str, reached: kubewatch.Predicate) -> Any:
        group = "apis/corral.dev/v1alpha1" if plural == "agents" else "apis/apps/v1"
        path = f"/{group}/namespaces/{namespace}/{plural}"
        return kubewatch.Watcher(self.cluster.server, self.tls, path, reached)

    def figure(self, name: str, unit: str, value: float, baseline: float, **kw: Any) -> None:
        self.result.figures.append(
            Figure(
                section=kw.pop("section", f"Operator, {self.plan.agents:,} Agents"),
                name=name,
                unit=unit,
                value=stats.Spread.of([value]),
                baseline=stats.Spread.of([baseline]),
                ratio=stats.Spread.of([stats.ratio(value, baseline)]) if baseline else None,
                added=stats.Spread.of([value - baseline]),
                **kw,
            )
        )


def run(plan: Plan, workdir: Path) -> figures.SuiteResult:
    result = figures.SuiteResult("operator")
    result.method = (
        f"{plan.agents:,} Agents over {plan.personas} Persona(s) and {plan.tools} Tools, applied"
        " at once; the baseline applies the same Deployments, Services and ConfigMaps"
        " (`corral render` output) with `kubectl apply --server-side`, then deletes them, so"
        " both phases start from the same cluster. Per-Agent times are"
        " from one run (p50/p99 across the Agents); requests are counted by a proxy between"
        " the operator (or kubectl) and the API server. The control plane and kwok run on the"
        " same machine."
    )
    tag = uuid.uuid4().hex[:6]
    # The operator starts from compiled bytecode, as from the image (and from `make venv`),
    # also where PYTHONDONTWRITEBYTECODE keeps Python from caching it.
    compileall.compile_dir(runtimes.REPO / "src", quiet=1)
    with operators.cluster_session() as cluster:
        from localcluster import pki, probes

        operators.install_crds(cluster)
        result.raw["versions"] = {"kubernetes": _server_version(cluster)}
        tls = probes.admin_tls(pki.files(cluster.config))
        ctx = _Context(plan, cluster, workdir, f"bench-op-{tag}", f"bench-base-{tag}", tls, result)
        nodes = [fleet.node(i) for i in range(fleet.nodes_for(plan.agents * 2 + 400))]
        try:
            operators.apply(cluster, nodes)
            cluster.kubectl(
                "wait", "--for=condition=Ready", *(f"node/{n['metadata']['name']}" for n in nodes)
            )
            for namespace in (ctx.ours, ctx.theirs):
                cluster.create_namespace(namespace, labels={"corral.dev/bench": "true"})
            _measure(ctx)
        finally:
            for namespace in (ctx.ours, ctx.theirs):
                cluster.delete_namespace(namespace)
            names = [f"node/{n['metadata']['name']}" for n in nodes]
            cluster.kubectl("delete", "--ignore-not-found", "--wait=false", *names)
    return result


def _server_version(cluster: Any) -> str:
    out = cluster.kubectl("version", "-o", "json").stdout
    return str(json.loads(out)["serverVersion"]["gitVersion"])


def _measure(ctx: _Context) -> None:
    plan, cluster = ctx.plan, ctx.cluster
    docs = fleet.fleet(plan.agents, plan.personas, plan.tools)
    names = [d["metadata"]["name"] for d in docs if d["kind"] == "Agent"]
    baseline = fleet.baseline(operators.render(docs, ctx.workdir), ctx.theirs)
    op_proxy = kubeproxy.Proxy(cluster.server, ctx.tls)
    kubectl_proxy = kubeproxy.Proxy(cluster.server, ctx.tls)
    op_proxy.start()
    kubectl_proxy.start()
    try:
        config = op_proxy.kubeconfig(ctx.workdir / "operator.kubeconfig")
        with operators.OperatorRun(ctx.ours, config, ctx.workdir / "operator.log") as first:
            empty_start = first.alive_after
            idle0 = _idle(ctx, first, op_proxy)
            base_times = _baseline_apply(ctx, baseline, kubectl_proxy)
            _empty(ctx, ctx.theirs)
            ours = _operator_apply(ctx, names, docs, op_proxy, first)
            idle = _idle(ctx, first, op_proxy)
        _apply_figures(ctx, ours, base_times)
        _idle_figures(ctx, idle0, idle)
        log = ctx.workdir / "operator.log"
        with operators.OperatorRun(ctx.ours, config, log, drift_seconds=DRIFT_SECONDS) as second:
            _resume(ctx, second, op_proxy, empty_start)
            _drift_check(ctx, second, op_proxy)
            _fan_out(ctx, baseline)
    finally:
        op_proxy.stop()
        kubectl_proxy.stop()


def _cpu(ctx: _Context, op: operators.OperatorRun | None = None) -> dict[str, float]:
    """CPU seconds used so far by each control-plane process (and the operator)."""
    from localcluster import cluster as localcluster

    used = {
        c.name: procs.cpu_seconds(c.pid)
        for c in localcluster.status(ctx.cluster.config).components
        if c.pid is not None
    }
    if op is not None:
        used["operator"] = op.proc.cpu()
    return used


def _cpu_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 1) for name in after}


def _baseline_apply(
    ctx: _Context, baseline: list[dict[str, Any]], proxy: kubeproxy.Proxy
) -> dict[str, Any]:
    deployments = [d["metadata"]["name"] for d in baseline if d["kind"] == "Deployment"]
    config = proxy.kubeconfig(ctx.workdir / "kubectl.kubeconfig")
    with ctx.watcher(ctx.theirs, "deployments", kubewatch.deployment_available) as watch:
        cpu = _cpu(ctx)
        start = time.monotonic()
        operators.apply(ctx.cluster, baseline, namespace=ctx.theirs, kubeconfig=config)
        applied = time.monotonic()
        times = watch.wait(deployments, ctx.plan.timeout, "baseline Deployments Available")
        cpu = _cpu_since(cpu, _cpu(ctx))
    counts = proxy.count(start)
    ctx.result.raw["baseline_apply"] = {
        "kubectl_seconds": applied - start,
        "requests": dict(counts),
        "cpu_seconds": cpu,
        **_percentiles(times, start),
    }
    return {"start": start, "times": times, "requests": sum(counts.values())}


def _empty(ctx: _Context, namespace: str) -> None:
    """Delete everything in `namespace` and wait until it is gone: the next phase starts from
    the cluster the previous one started from. (Left in place, the baseline's 1,000 Services
    made every later ClusterIP allocation scan 1,000 more IPAddresses, and its objects grew
    the API server's heap: costs the next phase paid for the previous one's leftovers.)"""
    ctx.cluster.delete_namespace(namespace)
    deadline = time.monotonic() + ctx.plan.timeout
    while ctx.cluster.kubectl("get", "namespace", namespace, check=False).returncode == 0:
        if time.monotonic() > deadline:
            raise procs.BenchError(f"namespace {namespace} still exists after deleting it")
        time.sleep(1.0)
    ctx.cluster.create_namespace(namespace, labels={"corral.dev/bench": "true"})
    time.sleep(ctx.plan.settle_seconds)


def _operator_apply(
    ctx: _Context,
    names: list[str],
    docs: list[dict[str, Any]],
    proxy: kubeproxy.Proxy,
    op: operators.OperatorRun,
) -> dict[str, Any]:
    with ctx.watcher(ctx.ours, "agents", kubewatch.agent_ready) as watch:
        cpu = _cpu(ctx, op)
        start = time.monotonic()
        operators.apply(ctx.cluster, docs, namespace=ctx.ours)
        times = watch.wait(names, ctx.plan.timeout, "Agents Ready")
        cpu = _cpu_since(cpu, _cpu(ctx, op))
    end = max(times.values())
    counts = proxy.count(start, end)
    window = [s for s in proxy.seen if start <= s.at < end]
    ctx.result.raw["operator_apply"] = {
        "requests": dict(counts),
        "by_resource": _by_resource(window),
        "cpu_seconds": cpu,
        **_percentiles(times, start),
    }
    return {"start": start, "times": times, "requests": sum(counts.values())}


def _apply_figures(ctx: _Context, ours: dict[str, Any], base: dict[str, Any]) -> None:
    mine = _percentiles(ours["times"], ours["start"])
    theirs = _percentiles(base["times"], base["start"])
    for key in ("p50", "p99", "max"):
        target = None
        ratio = stats.ratio(mine[key], theirs[key])
        if key == "p50":
            target = Target("within 2x of baseline", ratio <= 2, f"{ratio:.2f}x baseline")
        if key == "max":
            target = Target("<= 1.15x baseline", ratio <= 1.15, f"{ratio:.2f}x baseline")
        ctx.figure(
            f"apply → Ready, {key} per Agent" if key != "max" else "apply → every Agent Ready",
            "s",
            mine[key],
            theirs[key],
            baseline_name="direct apply → Available",
            target=target,
        )
    ctx.result.notes.append(
        "CPU seconds used from apply until every Agent was Ready (baseline: every Deployment"
        " Available), by process: "
        + _cpu_text(ctx.result.raw["operator_apply"]["cpu_seconds"])
        + "; baseline: "
        + _cpu_text(ctx.result.raw["baseline_apply"]["cpu_seconds"])
        + ". Everything shares the machine's cores."
    )
    n = ctx.plan.agents
    raw = ctx.result.raw["operator_apply"]["requests"]
    per_agent = ours["requests"] / n
    ctx.figure(
        "API requests per Agent, apply → Ready",
        "requests",
        per_agent,
        base["requests"] / n,
        baseline_name="kubectl apply --server-side",
        target=Target("<= 6", per_agent <= 6, f"{per_agent:.1f} requests"),
        note="operator requests by verb: " + ", ".join(f"{v} {c}" for v, c in sorted(raw.items())),
    )
    mine_cpu = ctx.result.raw["operator_apply"]["cpu_seconds"].get("kube-apiserver", 0.0)
    base_cpu = ctx.result.raw["baseline_apply"]["cpu_seconds"].get("kube-apiserver", 0.0)
    cpu_ratio = stats.ratio(mine_cpu, base_cpu) if base_cpu else float("inf")
    ctx.figure(
        "kube-apiserver CPU, apply → every Agent Ready",
        "s",
        mine_cpu,
        base_cpu,
        baseline_name="kubectl apply --server-side → every Deployment Available",
        target=Target("<= 1.3x baseline", cpu_ratio <= 1.3, f"{cpu_ratio:.2f}x baseline"),
    )


def _cpu_text(seconds: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:g} s" for name, value in seconds.items())


def _idle(ctx: _Context, op: operators.OperatorRun, proxy: kubeproxy.Proxy) -> dict[str, Any]:
    """CPU, RSS and writes over an idle window, from `settle_seconds` after the last change:
    a Persona's or Tool's `usedBy` is written up to `status_refresh_interval_seconds` (5 s)
    after the last Agent using it changed, which is the apply's work, not idleness."""
    time.sleep(ctx.plan.settle_seconds)
    start, cpu = time.monotonic(), op.proc.cpu()
    time.sleep(ctx.plan.idle_seconds)
    end = time.monotonic()
    counts = proxy.count(start, end)
    window = [s for s in proxy.seen if start <= s.at < end]
    ctx.result.raw.setdefault("idle_windows", []).append(
        {
            "requests": dict(counts),
            "top": _top(window),
            "top_writes": _top([s for s in window if s.verb in kubeproxy.WRITES]),
        }
    )
    return {
        "cpu_share": (op.proc.cpu() - cpu) / (end - start),
        "rss": op.proc.rss(),
        "writes": kubeproxy.Proxy.writes(counts),
        "requests": sum(counts.values()),
        "by_verb": ", ".join(f"{verb} {n}" for verb, n in sorted(counts.items())) or "none",
    }


def _by_resource(seen: list[kubeproxy.Seen]) -> dict[str, int]:
    """Requests by verb and resource (`patch agents/status`), names and namespaces left out."""
    counts: collections.Counter[str] = collections.Counter()
    for s in seen:
        parts = s.path.partition("?")[0].strip("/").split("/")
        if "namespaces" in parts:
            rest = parts[parts.index("namespaces") + 2 :]
            resource = "/".join([rest[0], *rest[2:]]) if rest else "namespaces"
        else:
            resource = "/".join(parts[-1:])
        counts[f"{s.verb} {resource}"] += 1
    return dict(counts.most_common())


def _top(seen: list[kubeproxy.Seen]) -> list[tuple[str, int]]:
    """The most frequent requests (verb and path without the query)."""
    return collections.Counter(f"{s.verb} {s.path.partition('?')[0]}" for s in seen).most_common(10)


def _idle_figures(ctx: _Context, before: dict[str, Any], after: dict[str, Any]) -> None:
    base = "the same operator with 0 Agents"
    ctx.figure(
        "operator RSS at steady state",
        "MiB",
        after["rss"] / MIB,
        before["rss"] / MIB,
        baseline_name=base,
        target=Target(
            "<= 200 MiB", after["rss"] / MIB <= 200, f"{figures.number(after['rss'] / MIB)} MiB"
        ),
    )
    share = after["cpu_share"] * 100
    ctx.figure(
        "operator CPU at steady state",
        "% of a core",
        share,
        before["cpu_share"] * 100,
        baseline_name=base,
        target=Target("<= 2% of a core", share <= 2, f"{share:.2f}% of a core"),
    )
    ctx.figure(
        f"API writes while idle ({ctx.plan.idle_seconds:g} s)",
        "writes",
        after["writes"],
        before["writes"],
        baseline_name=base,
        target=Target("0", after["writes"] == 0, f"{after['writes']:.0f} writes"),
        note=f"{after['requests']:.0f} requests in all, by verb: {after['by_verb']}",
    )


def _resume(
    ctx: _Context, op: operators.OperatorRun, proxy: kubeproxy.Proxy, empty_start: float
) -> None:
    resumed = op.wait_reconciled(ctx.plan.agents, ctx.plan.timeout)
    time.sleep(ctx.plan.settle_seconds)
    writes = kubeproxy.Proxy.writes(proxy.count(op.started))
    ctx.figure(
        "restart → every Agent resumed",
        "s",
        resumed - op.started,
        empty_start,
        baseline_name="start with 0 Agents → alive",
        target=Target(
            "<= 5 s", resumed - op.started <= 5, f"{figures.number(resumed - op.started)} s"
        ),
    )
    ctx.figure(
        "API writes while resuming",
        "writes",
        writes,
        0,
        baseline_name="a perfect operator",
        target=Target("0", writes == 0, f"{writes} writes"),
        note=f"counted from the restart to {ctx.plan.settle_seconds:g} s after the last resume",
    )


def _drift_check(ctx: _Context, op: operators.OperatorRun, proxy: kubeproxy.Proxy) -> None:
    """Reads and writes while the operator drift-checks every Agent once (nothing changed)."""
    start = time.monotonic()
    done = op.reconciles()
    finished = op.wait_reconciled(int(done) + ctx.plan.agents, DRIFT_SECONDS * 2 + ctx.plan.timeout)
    counts = proxy.count(start, finished)
    reads = counts.get("read", 0)
    ctx.result.raw["drift_check"] = {
        "requests": dict(counts),
        "seconds": finished - start,
        "top": _top([s for s in proxy.seen if start <= s.at < finished]),
    }
    ctx.figure(
        "API reads during a drift check of every Agent",
        "reads",
        reads,
        0,
        baseline_name="a perfect operator",
        target=Target("0", reads == 0, f"{reads} reads"),
        note=f"{kubeproxy.Proxy.writes(counts)} writes; every request by verb: "
        + (", ".join(f"{v} {n}" for v, n in sorted(counts.items())) or "none"),
    )


def _fan_out(ctx: _Context, baseline: list[dict[str, Any]]) -> None:
    plan = ctx.plan
    users = fleet.users_of(0, plan.agents, plan.personas)
    old = _hashes(ctx, users)

    def rolled(obj: dict[str, Any]) -> bool:
        name = obj["metadata"]["name"]
        fresh = kubewatch.template_annotation(obj, HASH) not in (None, old.get(name))
        return fresh and kubewatch.deployment_rolled(obj)

    with ctx.watcher(ctx.ours, "deployments", rolled) as watch:
        start = time.monotonic()
        operators.apply(ctx.cluster, [fleet.persona(0, prompt_version=2)], namespace=ctx.ours)
        mine = watch.wait(users, plan.timeout, "Deployments rolled after the Persona change")
    # The same Deployments applied directly, rolled out, then changed the same way.
    theirs_docs = [
        d for d in baseline if d["kind"] == "Deployment" and d["metadata"]["name"] in set(users)
    ]
    with ctx.watcher(ctx.theirs, "deployments", kubewatch.deployment_available) as watch:
        operators.apply(ctx.cluster, theirs_docs, namespace=ctx.theirs)
        watch.wait(users, plan.timeout, "baseline Deployments Available")
    mark = "t" + uuid.uuid4().hex[:8]  # never all digits and one "e": YAML would read a float
    touched = [fleet.touched(d, mark) for d in theirs_docs]

    def touched_rolled(obj: dict[str, Any]) -> bool:
        marked = kubewatch.template_annotation(obj, TOUCH) == mark
        return marked and kubewatch.deployment_rolled(obj)

    with ctx.watcher(ctx.theirs, "deployments", touched_rolled) as watch:
        base_start = time.monotonic()
        operators.apply(ctx.cluster, touched, namespace=ctx.theirs, manager="bench-touch")
        theirs = watch.wait(users, plan.timeout, "baseline Deployments rolled")
    section = f"Operator, one Persona used by {len(users)} Agents changes"
    for key in ("p50", "max"):
        ctx.figure(
            f"Persona change → rolled, {key} per Agent"
            if key == "p50"
            else f"Persona change → all {len(users)} rolled",
            "s",
            _percentiles(mine, start)[key],
            _percentiles(theirs, base_start)[key],
            baseline_name=f"patching the {len(users)} Deployments directly",
            section=section,
        )


def _hashes(ctx: _Context, names: Collection[str]) -> dict[str, str | None]:
    """The config-hash pod annotation of each named Deployment before the change."""
    out: dict[str, str | None] = {}
    listing = ctx.cluster.kubectl(
        "get",
        "deployments",
        "-n",
        ctx.ours,
        "-o",
        "jsonpath={range .items[*]}"
        "{.metadata.name}={.spec.template.metadata.annotations.corral\\.dev/config-hash}"
        '{"\\n"}{end}',
    ).stdout
    for line in listing.splitlines():
        name, _, value = line.partition("=")
        if name in names:
            out[name] = value or None
    if len(out) != len(names):
        raise procs.BenchError(f"found the config hash of {len(out)} of {len(names)} Deployments")
    return out
