"""Generate docs/metrics.md from the metric declarations of the operator and the runtime.

The metrics are declared once, in `corral.operator.metrics` and `corral.runtime.metrics`; this
turns those declarations into the reference table, and a test fails when the file is stale.
Does I/O only with `--write`. Usage: python hack/metricsdoc.py [--write]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import prometheus_client
from prometheus_client.metrics import MetricWrapperBase

from corral.operator import metrics as operator_metrics
from corral.runtime import metrics as runtime_metrics

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "metrics.md"
ALERTS = "deploy/prometheus/corral-alerts.yaml"
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}

HEADER = f"""\
# Metrics reference

<!-- Generated from corral.operator.metrics and corral.runtime.metrics by
     `python hack/metricsdoc.py --write`. Do not edit by hand. -->

Every label takes values from a small fixed set (kinds, outcomes, HTTP statuses, routes, the
models and tools named in the Agent's config); no API key, user, session or prompt is ever a
label. The operator serves `/metrics` on `--metrics-port` (8082); each runtime pod on its
`http` port (8080), and its pod template carries `prometheus.io/scrape` annotations.
Alerting rules built on these series: [`{ALERTS}`](../{ALERTS}).
"""


def declared(holder: object) -> list[MetricWrapperBase]:
    """The metric objects held as attributes of a metrics container, in declaration order."""
    return [v for v in vars(holder).values() if isinstance(v, MetricWrapperBase)]


def exposed_names(metric: MetricWrapperBase) -> list[str]:
    """The series names Prometheus scrapes for `metric` (a counter gains `_total`, ...)."""
    return [metric._name + s for s in SUFFIXES.get(metric._type, [""])]


def table(title: str, metrics: Iterable[MetricWrapperBase]) -> str:
    rows = []
    for m in metrics:
        name = m._name if m._type == "histogram" else exposed_names(m)[0]
        labels = ", ".join(f"`{n}`" for n in m._labelnames)
        rows.append(f"| `{name}` | {m._type} | {labels} | {m._documentation} |")
    head = (
        "Histograms are scraped as `<name>_bucket`, `<name>_sum` and `<name>_count`.\n\n"
        "| series | type | labels | meaning |\n| --- | --- | --- | --- |\n"
    )
    return f"\n## {title}\n\n{head}" + "\n".join(rows) + "\n"


def operator_declared() -> list[MetricWrapperBase]:
    return declared(operator_metrics.build(prometheus_client.CollectorRegistry()))


def runtime_declared() -> list[MetricWrapperBase]:
    return declared(runtime_metrics.Metrics())


def render() -> str:
    return (
        HEADER
        + table("Operator (`corral operator`)", operator_declared())
        + table("Runtime (`corral runtime`, one per Agent pod)", runtime_declared())
    )


def all_exposed_names() -> set[str]:
    return {n for m in operator_declared() + runtime_declared() for n in exposed_names(m)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write docs/metrics.md")
    text = render()
    if parser.parse_args(argv).write:
        TARGET.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
