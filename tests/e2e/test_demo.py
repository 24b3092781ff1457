"""`make demo` end to end: hack/demo.py up installs the chart with Helm (the operator as a pod),
brings the example Agent's real pods to Ready on the real node and streams a chat from the real
llama-cpp-python server through the Agent's Service; hack/demo.py down stops every process it
started. The model is a tiny base model, so the answer is checked for shape only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from localcluster import handles, settings

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def demo(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "demo.py"), command],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def demo_processes() -> list[str]:
    pids = settings.Settings.from_env().pids_dir
    return sorted(p.stem for p in pids.glob("demo-*.json")) if pids.exists() else []


def streamed_answer(stdout: str) -> tuple[str, int]:
    """The whole streamed answer (every line of it) and the completion tokens the demo printed."""
    found = re.search(
        r"^    assistant:\n(?P<answer>.*)\n"
        r"    \(\d+ prompt \+ (?P<tokens>\d+) completion tokens\)$",
        stdout,
        flags=re.MULTILINE | re.DOTALL,
    )
    assert found, f"no `assistant:` block followed by a token count in:\n{stdout}"
    return found["answer"], int(found["tokens"])


def test_streamed_answer_reads_an_answer_that_starts_with_a_newline() -> None:
    stdout = "    user: hi\n    assistant:\n\nHello,\nworld\n    (5 prompt + 3 completion tokens)\n"
    assert streamed_answer(stdout) == ("\nHello,\nworld", 3)


def test_make_demo_reaches_a_streamed_chat_and_demo_down_stops_it(
    cluster: handles.Cluster,
) -> None:
    try:
        up = demo("up")
        assert up.returncode == 0, f"stdout:\n{up.stdout}\nstderr:\n{up.stderr}"
        assert "agent.corral.dev/support   True    Available   gemma-3-270m" in up.stdout
        # The operator and the Agent run as pods on the real node.
        assert re.search(r"^    corral-\S+\s+1/1\s+Running .* corral-node ", up.stdout, re.M)
        assert re.search(r"^support-\S+\s+1/1\s+Running .* corral-node ", up.stdout, re.M)
        answer, completion_tokens = streamed_answer(up.stdout)
        assert answer.strip(), f"the model streamed nothing:\n{up.stdout}"
        assert completion_tokens > 0, up.stdout
        assert demo_processes() == ["demo-llama", "demo-port-forward"]
    finally:
        down = demo("down")
    assert down.returncode == 0, down.stderr
    assert demo_processes() == []
    assert "stopped" in down.stdout
    assert "already gone" not in down.stdout
