"""`python -m bench` (what `make bench` runs): every suite end to end, then bench/RESULTS.md.

`--quick` is a smoke run (fewer and shorter runs, 100 Agents) that writes its report into the
work directory instead of bench/RESULTS.md; so does a run of one suite (`--suite runtime`),
unless `--output` says otherwise, or `--update bench/RESULTS.md` replaces just that suite's
section there (`--suite sharedstate --update bench/RESULTS.md`). Raw summaries go next to the
report as results.json. Exit status 0 when every suite ran (missed targets are results, not
failures), 1 when one could not (the report then says which and why, and keeps what the other
suite measured).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import figures, machine, procs, report, runtime_suite, sharedstate_suite

HERE = Path(__file__).resolve().parent
SUITES = ("runtime", "operator", "sharedstate", "mcp")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; not for RESULTS.md")
    parser.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    parser.add_argument("--output", type=Path, default=None, help="where to write the report")
    parser.add_argument(
        "--update",
        type=Path,
        default=None,
        help="with one --suite: replace that suite's section of this report (bench/RESULTS.md)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="logs and configs go here")
    parser.add_argument(
        "--agents", type=int, default=None, help="Agents in the operator suite (default 1000)"
    )
    return parser.parse_args(argv)


def _run_suite(name: str, args: argparse.Namespace, workdir: Path) -> figures.SuiteResult:
    if name == "runtime":
        budget = runtime_suite.QUICK if args.quick else runtime_suite.FULL
        return runtime_suite.run(budget, workdir)
    if name == "sharedstate":
        shared = sharedstate_suite.QUICK if args.quick else sharedstate_suite.FULL
        return sharedstate_suite.run(shared, workdir)
    if name == "mcp":
        from bench import mcp_suite

        return mcp_suite.run(mcp_suite.QUICK if args.quick else mcp_suite.FULL, workdir)
    from bench import operator_suite

    plan = operator_suite.QUICK if args.quick else operator_suite.FULL
    if args.agents is not None:
        plan = operator_suite.with_agents(plan, args.agents)
    return operator_suite.run(plan, workdir)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.monotonic()
    load_start = machine.load()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="corral-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    names = SUITES if args.suite == "all" else (args.suite,)
    official = not args.quick and args.suite == "all" and args.agents is None
    output = args.output or (HERE / "RESULTS.md" if official else workdir / "RESULTS.md")
    print(f"bench: logs and configs in {workdir}", file=sys.stderr)
    results: list[figures.SuiteResult] = []
    failures: dict[str, str] = {}
    for name in names:
        print(f"bench: {name} suite", file=sys.stderr)
        try:
            results.append(_run_suite(name, args, workdir))
        except (procs.BenchError, subprocess.CalledProcessError, OSError) as err:
            print(f"bench: the {name} suite failed: {err}", file=sys.stderr)
            failures[name] = str(err)
    elapsed = time.monotonic() - started
    context = {
        "command": shlex.join(["python", "-m", "bench", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed": f"{elapsed / 60:.1f} minutes",
        "load_start": load_start,
        "load_end": machine.load(),
    }
    extra_versions: dict[str, str] = {}
    for result in results:
        extra_versions.update(result.raw.pop("versions", {}))
    text = report.render(
        results,
        machine.describe(HERE.parent),
        {**machine.versions(), **extra_versions},
        context,
        failures,
    )
    if not results:
        print("bench: nothing was measured; no report written", file=sys.stderr)
        return 1
    if args.update is not None and len(names) == 1 and not failures:
        described = machine.describe(HERE.parent)
        context["commit"] = described.get("git commit", "?")
        args.update.write_text(report.update(args.update.read_text(), results[0], context))
        print(f"bench: updated the {names[0]} section of {args.update}", file=sys.stderr)
    output.write_text(text)
    raw = {r.name: {"figures": [f.to_json() for f in r.figures], **r.raw} for r in results}
    raw["failures"] = failures
    output.with_name("results.json").write_text(json.dumps(raw, indent=1) + "\n")
    print(f"bench: wrote {output} (logs in {workdir})", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
