"""Loading and validating IVR flow files: every problem named by file, line and node."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.services.ivr import FlowError, FlowRegistry, load_flow
from callcenter.services.ivr.flow import BusinessHours, Menu, Queue
from callcenter.services.ivr.loader import MAX_FILE_BYTES, MAX_FLOW_NODES, Problem, load_flow_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "ivr" / "flows" / "default.yaml"
PATH = "ivr/flows/x.yaml"


def problems(text: str) -> list[str]:
    flow, found = load_flow_text(textwrap.dedent(text), PATH, "x")
    assert flow is None, "expected the flow to be rejected"
    return [str(p) for p in found]


def test_the_default_flow_loads_without_warnings() -> None:
    flow, warnings = load_flow(DEFAULT)
    assert warnings == []
    assert flow.name == "default"
    assert flow.start == "greeting"
    menu = flow.nodes["main_menu"]
    assert isinstance(menu, Menu)
    assert dict(menu.options) == {"1": "sales_hours", "2": "support_hours"}
    support = flow.nodes["support"]
    assert isinstance(support, Queue)
    assert (support.queue, support.priority, support.skills) == ("support", 5, ("english",))


def test_business_hours_in_the_flows_timezone_and_holidays() -> None:
    flow, _ = load_flow(DEFAULT)
    hours = flow.nodes["sales_hours"]
    assert isinstance(hours, BusinessHours)
    london = ZoneInfo("Europe/London")
    assert hours.is_open(dt.datetime(2026, 11, 24, 10, 0, tzinfo=london))
    assert not hours.is_open(dt.datetime(2026, 11, 24, 17, 30, tzinfo=london))  # end exclusive
    assert not hours.is_open(dt.datetime(2026, 11, 28, 10, 0, tzinfo=london))  # Saturday
    assert not hours.is_open(dt.datetime(2026, 12, 25, 10, 0, tzinfo=london))  # holiday (Fri)
    # 08:30 UTC in July is 09:30 in London (BST): open; 08:30 UTC in November is 08:30: closed.
    utc = dt.UTC
    assert hours.is_open(dt.datetime(2026, 7, 14, 8, 30, tzinfo=utc))
    assert not hours.is_open(dt.datetime(2026, 11, 24, 8, 30, tzinfo=utc))
    with pytest.raises(ValueError, match="timezone-aware"):
        hours.is_open(dt.datetime(2026, 11, 24, 10, 0))


def test_unknown_node_type_names_file_line_and_node() -> None:
    assert problems(
        """\
        start: a
        nodes:
          a:
            type: play
            prompt: "text:hi"
            next: b
          b:
            type: dance
        """
    ) == [
        "ivr/flows/x.yaml:8: node 'b': unknown node type 'dance' (types: play, menu, gather, "
        "business_hours, set, queue, voicemail, transfer, hangup)"
    ]


def test_missing_and_extra_fields() -> None:
    assert problems(
        """\
        start: a
        nodes:
          a:
            type: play
            next: b
            colour: blue
          b:
            type: hangup
        """
    ) == [
        "ivr/flows/x.yaml:3: node 'a': missing field 'prompt'",
        "ivr/flows/x.yaml:6: node 'a': unknown field 'colour' (fields: next, prompt)",
    ]


def test_references_to_undefined_nodes() -> None:
    assert problems(
        """\
        start: menu
        nodes:
          menu:
            type: menu
            prompt: "text:press 1"
            options:
              1: sales
              2: nowhere
            fallback: gone
          sales:
            type: queue
            queue: sales
        """
    ) == [
        "ivr/flows/x.yaml:8: node 'menu': options.2: no node named 'nowhere'",
        "ivr/flows/x.yaml:9: node 'menu': fallback: no node named 'gone'",
    ]


def test_undefined_start() -> None:
    assert problems("start: nope\nnodes:\n  a:\n    type: hangup\n") == [
        "ivr/flows/x.yaml:1: 'start': no node named 'nope'"
    ]


def test_unreachable_nodes_are_warnings() -> None:
    text = "start: a\nnodes:\n  a:\n    type: hangup\n  spare:\n    type: hangup\n"
    flow, found = load_flow_text(text, PATH, "x")
    assert flow is not None
    assert [str(p) for p in found] == [
        "ivr/flows/x.yaml:5: warning: node 'spare': unreachable from 'start'"
    ]
    assert found[0].warning


def test_a_cycle_without_input_is_an_error() -> None:
    assert problems(
        """\
        start: a
        nodes:
          a:
            type: play
            prompt: "text:hello"
            next: b
          b:
            type: set
            variables: {seen: "yes"}
            next: c
          c:
            type: business_hours
            timezone: Europe/London
            schedule: {mon: ["09:00-17:00"]}
            open: a
            closed: d
          d:
            type: hangup
        """
    ) == ["ivr/flows/x.yaml:3: node 'a': cycle without input (no menu or gather): a -> b -> c -> a"]


def test_a_cycle_through_a_menu_is_fine() -> None:
    text = """\
        start: menu
        nodes:
          menu:
            type: menu
            prompt: "text:press 1 to hear this again"
            options: {1: again}
            fallback: bye
          again:
            type: play
            prompt: "text:again"
            next: menu
          bye:
            type: hangup
        """
    flow, found = load_flow_text(textwrap.dedent(text), PATH, "x")
    assert flow is not None and found == []


def test_bad_timezone_times_regex_and_digits_all_reported() -> None:
    assert problems(
        """\
        start: hours
        nodes:
          hours:
            type: business_hours
            timezone: Mars/Olympus
            schedule:
              mon: ["09:00-17:00", "18:00-17:00"]
              tue: ["9am-5pm"]
              funday: ["10:00-11:00"]
            holidays: [2026-13-01]
            open: menu
            closed: menu
          menu:
            type: menu
            prompt: "text:choose"
            options:
              1: id
              A: id
              12: id
            timeout: 0
            fallback: id
          id:
            type: gather
            prompt: "text:your account number"
            variable: account
            max_digits: 8
            pattern: "[0-9"
            next: done
            fallback: done
          done:
            type: hangup
        """
    ) == [
        "ivr/flows/x.yaml:5: node 'hours': unknown timezone 'Mars/Olympus' (e.g. Europe/London)",
        "ivr/flows/x.yaml:7: node 'hours': schedule: mon: '18:00-17:00' must end after it starts,"
        " by 24:00",
        "ivr/flows/x.yaml:8: node 'hours': schedule: tue: '9am-5pm' is not HH:MM-HH:MM",
        "ivr/flows/x.yaml:9: node 'hours': schedule: 'funday' is not one of mon, tue, wed, thu,"
        " fri, sat, sun",
        "ivr/flows/x.yaml:10: node 'hours': holidays: '2026-13-01' is not a date (YYYY-MM-DD)",
        "ivr/flows/x.yaml:18: node 'menu': option 'A' is not one of 0-9, * or #",
        "ivr/flows/x.yaml:19: node 'menu': option 12 is not one of 0-9, * or #",
        "ivr/flows/x.yaml:20: node 'menu': 'timeout' must be a number of seconds above 0 and at"
        " most 60",
        "ivr/flows/x.yaml:27: node 'id': 'pattern': bad regular expression: unterminated"
        " character set at position 0",
    ]


def test_prompts_stay_inside_the_prompts_folder() -> None:
    found = problems(
        'start: a\nnodes:\n  a:\n    type: play\n    prompt: "../../etc/passwd.wav"\n'
        "    next: b\n  b:\n    type: hangup\n"
    )
    assert found == [
        "ivr/flows/x.yaml:5: node 'a': 'prompt': '../../etc/passwd.wav' is not a .wav file "
        "under ivr/prompts/ nor text:..."
    ]


def test_yaml_syntax_errors_duplicates_and_aliases() -> None:
    assert problems("start: a\nnodes:\n  a: [unclosed\n") == [
        "ivr/flows/x.yaml:4: expected ',' or ']', but got '<stream end>'"
    ]
    assert problems("start: a\nnodes:\n  a: {type: hangup}\n  a: {type: hangup}\n") == [
        "ivr/flows/x.yaml:4: duplicate key 'a'"
    ]
    assert problems("start: a\nnodes:\n  a: &x {type: hangup}\n  b: *x\n") == [
        "ivr/flows/x.yaml:4: aliases (*name) are not allowed in flows"
    ]


def test_size_bounds() -> None:
    big = "start: a\nnodes:\n  a: {type: hangup}\n" + "#" * MAX_FILE_BYTES
    assert problems(big) == [f"ivr/flows/x.yaml:1: larger than {MAX_FILE_BYTES} bytes"]
    many = "start: n0\nnodes:\n" + "".join(
        f"  n{i}: {{type: hangup}}\n" for i in range(MAX_FLOW_NODES + 1)
    )
    assert problems(many) == [f"ivr/flows/x.yaml:2: more than {MAX_FLOW_NODES} nodes"]
    deep = "start: a\nnodes: " + "[" * 100 + "]" * 100 + "\n"
    assert problems(deep) == ["ivr/flows/x.yaml:2: nested deeper than 32 levels"]


def test_a_file_on_disk_is_named_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ivr" / "flows").mkdir(parents=True)
    path = Path("ivr/flows/broken.yaml")
    path.write_text(
        "start: a\nnodes:\n  a:\n    type: queue\n    queue: sales\n    priority: 500\n"
    )
    with pytest.raises(FlowError) as caught:
        load_flow(path)
    assert str(caught.value) == (
        "ivr/flows/broken.yaml:6: node 'a': 'priority' must be a whole number from 0 to 100"
    )
    assert caught.value.problems == [
        Problem(
            "ivr/flows/broken.yaml",
            6,
            "'priority' must be a whole number from 0 to 100",
            "a",
        )
    ]


def test_registry_reload_keeps_the_old_flow_when_the_new_file_is_broken(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("start: a\nnodes:\n  a: {type: hangup}\n")
    (tmp_path / "other.yaml").write_text("start: a\nnodes:\n  a: {type: voicemail, box: x}\n")
    registry = FlowRegistry(tmp_path)
    first = registry.reload()
    assert first.ok and first.loaded == ("main", "other") and registry.names() == first.loaded
    old = registry.get("main")

    (tmp_path / "main.yaml").write_text("start: a\nnodes:\n  a: {type: nope}\n")
    (tmp_path / "other.yaml").unlink()
    (tmp_path / "new.yaml").write_text("start: a\nnodes:\n  a: {type: transfer, to: '+4420'}\n")
    second = registry.reload()
    assert not second.ok
    assert second.failed == ("main",)
    assert second.loaded == ("new",)
    assert [p.line for p in second.problems] == [3]
    assert str(tmp_path / "main.yaml") in str(second.problems[0])
    assert registry.get("main") is old
    assert registry.names() == ("main", "new")
    with pytest.raises(KeyError):
        registry.get("other")

    (tmp_path / "main.yaml").write_text("start: b\nnodes:\n  b: {type: hangup}\n")
    assert registry.reload().ok
    assert registry.get("main").start == "b"


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_any_text_gives_a_flow_or_problems_never_an_exception(text: str) -> None:
    flow, found = load_flow_text(text, PATH, "x")
    assert flow is not None or any(not p.warning for p in found)
    assert all(str(p).startswith(f"{PATH}:") for p in found)


def test_control_characters_and_non_utf8(tmp_path: Path) -> None:
    assert problems("\x1f") == [
        "ivr/flows/x.yaml:1: unacceptable character #x001f: special characters are not allowed"
    ]
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"start: caf\xe9\n")
    with pytest.raises(FlowError, match="not UTF-8"):
        load_flow(path)
