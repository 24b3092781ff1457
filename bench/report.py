"""bench/RESULTS.md from a run's figures: headline, machine, versions, method, tables. Pure.

Each figure is printed as median [lowest-highest run] next to its baseline, the ratio
(median of run-by-run ratios), the added amount where that is what the target is about, and
the target with whether this run met it. Called by `bench.__main__`; returns text, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bench import figures, stats
from bench.figures import Figure, SuiteResult

PROFILE_NOTES = "PROFILE.md"


number = figures.number


def spread(value: stats.Spread | None, unit: str = "") -> str:
    if value is None:
        return ""
    suffix = f" {unit}" if unit else ""
    if value.runs == 1 or value.low == value.high:
        return f"{number(value.median)}{suffix}"
    return f"{number(value.median)}{suffix} [{number(value.low)} to {number(value.high)}]"


def ratio(value: stats.Spread | None) -> str:
    if value is None:
        return ""
    if value.runs == 1 or value.low == value.high:
        return f"{value.median:.2f}x"
    return f"{value.median:.2f}x [{value.low:.2f} to {value.high:.2f}]"


def target(figure: Figure) -> str:
    if figure.target is None:
        return ""
    mark = "met" if figure.target.met else "**missed**"
    return f"{figure.target.text}: {mark}"


def table(rows: Sequence[Figure]) -> list[str]:
    lines = [
        "| figure | measured | baseline | ratio | added | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in rows:
        baseline = f"{spread(f.baseline, f.unit)} ({f.baseline_name})" if f.baseline else ""
        lines.append(
            f"| {f.name} | {spread(f.value, f.unit)} | {baseline} | {ratio(f.ratio)} "
            f"| {spread(f.added, f.unit)} | {target(f)} |"
        )
    notes = [f"- {f.name}: {f.note}" for f in rows if f.note]
    return [*lines, "", *notes] if notes else lines


def headline(results: Sequence[SuiteResult]) -> list[str]:
    """One line per figure with a target: what the README quotes."""
    lines = []
    for result in results:
        for f in result.figures:
            if f.target is None:
                continue
            mark = "met" if f.target.met else "MISSED"
            lines.append(f"- {f.section}, {f.name}: {f.target.measured} ({f.target.text}: {mark})")
    return lines


def suite(result: SuiteResult, context: Mapping[str, str] | None = None) -> list[str]:
    """One suite's section; `context` (command, date, commit, load) when it is printed alone."""
    sections: dict[str, list[Figure]] = {}
    for f in result.figures:
        sections.setdefault(f.section, []).append(f)
    out = [f"## {result.name.capitalize()}", ""]
    if context is not None:
        out += [
            f"Measured alone by `{context['command']}` on {context['date']} in"
            f" {context['elapsed']} (commit {context['commit']}, load average at start / end"
            f" {context['load_start']} / {context['load_end']}); the machine and versions are"
            " as above.",
            "",
        ]
        out += ["Targets:", "", *headline([result]), ""]
    if result.method:
        out += [result.method, ""]
    for section, rows in sections.items():
        out += [f"### {section}", "", *table(rows), ""]
    if result.notes:
        out += ["Notes:", "", *(f"- {n}" for n in result.notes), ""]
    return out


def update(existing: str, result: SuiteResult, context: Mapping[str, str]) -> str:
    """`existing` RESULTS.md with the suite's section replaced (or added at the end)."""
    title = f"## {result.name.capitalize()}"
    lines = existing.rstrip("\n").split("\n")
    fresh = suite(result, context)
    if title in lines:
        start = lines.index(title)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines[start:end] = fresh
    else:
        lines += ["", *fresh]
    return "\n".join(lines).rstrip() + "\n"


def render(
    results: Sequence[SuiteResult],
    machine: Mapping[str, str],
    versions: Mapping[str, str],
    context: Mapping[str, str],
    failures: Mapping[str, str] | None = None,
) -> str:
    out = [
        "# Corral benchmark results",
        "",
        f"Written by `{context['command']}` on {context['date']} in {context['elapsed']};"
        " regenerate it with `make bench` rather than editing it. Profiles of missed targets,"
        f" with before/after measurements, are in [{PROFILE_NOTES}]({PROFILE_NOTES}).",
        "",
        "## Headline (targets from issues #7 and #15)",
        "",
        *headline(results),
        *(f"- the {name} suite did not finish: see below" for name in failures or {}),
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in machine.items()),
        f"| load average at start / end | {context['load_start']} / {context['load_end']} |",
        "",
        "## Versions",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {k} | {v} |" for k, v in versions.items()),
        "",
        "## How to read this",
        "",
        "Each figure is the median over its runs with the lowest and highest run in brackets."
        " Its baseline was measured in the same run, alternating with it, and the ratio is the"
        " median of the run-by-run ratios (figure / baseline). *Added* is figure minus baseline"
        " (for latency: what the runtime adds to a request).",
        "",
    ]
    for result in results:
        out += suite(result)
    for name, reason in (failures or {}).items():
        out += [f"## {name.capitalize()}: not measured", "", "```", reason.strip(), "```", ""]
    return "\n".join(out).rstrip() + "\n"
