"""`callcenter ivr simulate` and `callcenter ivr check`, run as an administrator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(tmp_path: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALLCENTER_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "callcenter", "ivr", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("digits", "at", "path", "result"),
    [
        (
            "2",
            "2026-11-24 10:00",
            ["support_hours", "support"],
            "queue support (priority 5, skills english)",
        ),
        ("1", "2026-11-24 10:00", ["sales_hours", "sales"], "queue sales (priority 3)"),
        (
            "1",
            "2026-11-24 19:00",
            ["sales_hours", "sales_closed", "sales_voicemail"],
            "voicemail sales",
        ),
        ("2", "2026-12-25 10:00", ["support_hours", "support_closed", "goodbye"], "hang up"),
        (
            "5",
            "2026-11-24 10:00",
            ["main_menu", "main_menu", "support_hours", "support"],
            "queue support (priority 5, skills english)",
        ),
        (
            "",
            "2026-11-28 15:00",
            ["main_menu", "support_hours", "support_closed", "goodbye"],
            "hang up",
        ),
    ],
)
def test_simulate_the_default_flow(
    tmp_path: Path, digits: str, at: str, path: list[str], result: str
) -> None:
    done = run(tmp_path, "simulate", "default", "--digits", digits, "--at", at)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("flow default (ivr/flows/default.yaml) at ")
    assert lines[1] == "greeting (play): start"
    visited = [line.split(" ")[0] for line in lines[1:] if not line.startswith((" ", "result:"))]
    assert visited[-len(path) :] == path
    assert lines[-1] == f"result: {result}"


def test_simulate_prints_each_step(tmp_path: Path) -> None:
    done = run(tmp_path, "simulate", "default", "--digits", "2", "--at", "2026-11-24 10:00")
    assert done.stdout.splitlines() == [
        "flow default (ivr/flows/default.yaml) at Tue 2026-11-24 10:00 GMT, digits '2'",
        "greeting (play): start",
        "  play text:Thank you for calling Example Limited. Calls are recorded for quality.",
        "main_menu (menu)",
        "  play text:For sales, press 1. For support, press 2.",
        "  wait for 1 digit(s), 5 s",
        "  caller presses 2",
        "support_hours (business_hours): pressed 2 at main_menu; open at Tue 2026-11-24 10:00 GMT",
        "support (queue)",
        "  queue support (priority 5, skills english)",
        "result: queue support (priority 5, skills english)",
    ]


def test_simulate_takes_a_path_and_an_offset(tmp_path: Path) -> None:
    flow = ROOT / "ivr" / "flows" / "default.yaml"
    # 09:30 in New York is 14:30 in London: sales are open.
    done = run(tmp_path, "simulate", str(flow), "--digits", "1", "--at", "2026-11-24T09:30-05:00")
    assert done.returncode == 0, done.stderr
    assert "open at Tue 2026-11-24 14:30 GMT" in done.stdout
    assert done.stdout.splitlines()[-1] == "result: queue sales (priority 3)"


def test_user_errors_exit_1(tmp_path: Path) -> None:
    missing = run(tmp_path, "simulate", "nope")
    assert missing.returncode == 1
    assert "no flow ivr/flows/nope.yaml" in missing.stderr
    bad_digits = run(tmp_path, "simulate", "default", "--digits", "1x")
    assert bad_digits.returncode == 1 and "--digits" in bad_digits.stderr
    bad_time = run(tmp_path, "simulate", "default", "--at", "tomorrow")
    assert bad_time.returncode == 1 and "--at 'tomorrow'" in bad_time.stderr


def test_check_passes_on_the_shipped_flows(tmp_path: Path) -> None:
    done = run(tmp_path, "check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 flow(s) OK in ivr/flows: default")


def test_check_reports_every_error_with_file_line_and_node(tmp_path: Path) -> None:
    flows = tmp_path / "ivr" / "flows"
    flows.mkdir(parents=True)
    (flows / "good.yaml").write_text("start: a\nnodes:\n  a: {type: hangup}\n")
    (flows / "bad.yaml").write_text(
        "start: menu\n"
        "nodes:\n"
        "  menu:\n"
        "    type: menu\n"
        "    prompt: 'text:hi'\n"
        "    options: {1: sales}\n"
        "    fallback: bye\n"
        "  bye:\n"
        "    type: hangup\n"
        "    box: x\n"
    )
    done = run(tmp_path, "check", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "ivr/flows/bad.yaml:6: node 'menu': options.1: no node named 'sales'",
        "ivr/flows/bad.yaml:10: node 'bye': unknown field 'box' (fields: none)",
        "callcenter ivr: 1 flow(s) in ivr/flows have errors",
    ]
    simulate = run(tmp_path, "simulate", "bad", cwd=tmp_path)
    assert simulate.returncode == 1
    assert "ivr/flows/bad.yaml:6: node 'menu'" in simulate.stderr
    other = run(tmp_path, "--flows", str(flows), "simulate", "good")
    assert other.returncode == 0 and other.stdout.splitlines()[-1] == "result: hang up"
