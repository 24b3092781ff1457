"""docs/metrics.md is generated from the metric declarations, and the alerting rules use only
series that are declared."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

import metricsdoc

ROOT = Path(__file__).resolve().parents[3]


def test_metrics_reference_is_generated_from_the_declarations() -> None:
    committed = (ROOT / "docs" / "metrics.md").read_text()
    assert metricsdoc.render() == committed, "docs/metrics.md is stale: run `make docs`"


def test_alert_rules_use_only_declared_series_and_say_what_to_do() -> None:
    rule = yaml.safe_load((ROOT / metricsdoc.ALERTS).read_text())
    exposed = metricsdoc.all_exposed_names()
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert len(rules) >= 5
    for alert in rules:
        used = set(re.findall(r"\b(?:corral|gen_ai)_[a-z_]+", alert["expr"]))
        assert used, f"{alert['alert']} uses no Corral series"
        assert used <= exposed, f"{alert['alert']} uses undeclared series {used - exposed}"
        assert alert["annotations"]["summary"]
        assert alert["annotations"]["description"]
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}
