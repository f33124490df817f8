"""Load and validate IVR flow files: YAML in, a `Flow` or every problem found out.

Each problem names the file, the line and the node (`ivr/flows/x.yaml:12: node 'menu': ...`),
and all of them are reported at once, so an administrator fixes a file in one pass. Sizes are
bounded before parsing (file bytes) and while parsing (YAML nodes, nesting, no aliases, so no
"billion laughs"), then the flow's node count. This module reads files; it plays nothing.

Unreachable nodes are warnings (a node kept for later is normal while editing); everything else
is an error and the flow is not loaded.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from callcenter.services.ivr.flow import (
    DTMF_DIGITS,
    INPUT_NODES,
    TEXT_PREFIX,
    WEEKDAYS,
    BusinessHours,
    Flow,
    Gather,
    HangUp,
    Menu,
    Node,
    Play,
    Queue,
    SetVariables,
    Transfer,
    Voicemail,
)

MAX_FILE_BYTES = 256 * 1024
MAX_YAML_NODES = 20_000
MAX_DEPTH = 32
MAX_FLOW_NODES = 500
MAX_TIMEOUT = 60.0
MAX_RETRIES = 10
MAX_GATHER_DIGITS = 32
MAX_TEXT = 1000
MAX_PRIORITY = 100

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
# A queue, box, skill or variable name; a transfer target (a user or a number, `+` allowed).
IDENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
TARGET = re.compile(r"\+?[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
# A prompt file under ivr/prompts/: a relative path without `..`.
PROMPT_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*\.wav")
HOURS = re.compile(r"([01][0-9]|2[0-4]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])")


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    message: str
    node: str | None = None
    warning: bool = False

    def __str__(self) -> str:
        where = f"node '{self.node}': " if self.node is not None else ""
        kind = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {kind}{where}{self.message}"


class FlowError(Exception):
    """A flow file did not load; `problems` holds every error (and warning) found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --- YAML with line numbers ----------------------------------------------------------------


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.composed = 0
        self.depth = 0
        self.duplicates: list[tuple[int, str]] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="aliases (*name) are not allowed in flows", problem_mark=mark
            )
        self.composed += 1
        if self.composed > MAX_YAML_NODES:
            raise yaml.MarkedYAMLError(
                problem=f"more than {MAX_YAML_NODES} YAML values", problem_mark=mark
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(
                    problem=f"nested deeper than {MAX_DEPTH} levels", problem_mark=mark
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise yaml.MarkedYAMLError(
                problem="a key must be a plain value", problem_mark=key_node.start_mark
            )
        line = key_node.start_mark.line + 1
        if key in data:
            loader.duplicates.append((line, f"duplicate key {key!r}"))
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = line


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)


# Dates stay strings (PyYAML raises a bare ValueError for 2026-13-01); holidays parse them.
def _construct_timestamp(loader: _Loader, node: yaml.ScalarNode) -> str:
    return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def parse_yaml(text: str, path: str) -> tuple[Any, list[Problem]]:
    """The document (mappings as `_Map`) and the problems found by the parser."""
    try:
        # The reader checks the characters as it is made: inside the try.
        loader = _Loader(text)
    except yaml.YAMLError as exc:
        return None, [Problem(path, 1, str(exc).splitlines()[0])]
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        return None, [Problem(path, line, exc.problem or str(exc))]
    except yaml.YAMLError as exc:
        return None, [Problem(path, 1, str(exc).splitlines()[0])]
    finally:
        loader.dispose()
    return document, [Problem(path, line, message) for line, message in loader.duplicates]


# --- validation ----------------------------------------------------------------------------


_MISSING = object()


class _Fields:
    """Reads one node's fields, recording a problem (at the field's line) for each bad one."""

    def __init__(self, problems: list[Problem], path: str, name: str, data: _Map) -> None:
        self.problems = problems
        self.path = path
        self.name = name
        self.data = data
        self.used = {"type"}
        self.ok = True

    def error(self, key: str | None, message: str) -> None:
        line = self.data.key_lines.get(key, self.data.line) if key is not None else self.data.line
        self.problems.append(Problem(self.path, line, message, self.name))
        self.ok = False

    def raw(self, key: str, default: Any = _MISSING) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.error(None, f"missing field '{key}'")
        return default

    def finish(self) -> None:
        for key in self.data:
            if key not in self.used:
                allowed = ", ".join(sorted(self.used - {"type"})) or "none"
                self.error(key, f"unknown field '{key}' (fields: {allowed})")

    # Converters: the value, or None after recording a problem.

    def text(self, key: str, pattern: re.Pattern[str] | None = None, what: str = "") -> Any:
        value = self.raw(key)
        if value is _MISSING:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            self.error(key, f"'{key}' must be a string")
            return None
        value = str(value)
        if pattern is not None and not pattern.fullmatch(value):
            self.error(key, f"'{key}': {value!r} is not {what}")
            return None
        return value

    def ref(self, key: str) -> Any:
        return self.text(key, NAME, "a node name")

    def prompt(self, key: str, optional: bool = False) -> Any:
        value = self.raw(key, None if optional else _MISSING)
        if value is None or value is _MISSING:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(key, f"'{key}' must be a prompt file or text:...")
        elif value.startswith(TEXT_PREFIX):
            if not value[len(TEXT_PREFIX) :].strip() or len(value) > MAX_TEXT:
                self.error(key, f"'{key}': the text must have 1 to {MAX_TEXT} characters")
            else:
                return value
        elif not PROMPT_FILE.fullmatch(value) or ".." in value.split("/"):
            self.error(
                key, f"'{key}': {value!r} is not a .wav file under ivr/prompts/ nor text:..."
            )
        else:
            return value
        return None

    def integer(self, key: str, low: int, high: int, default: Any = _MISSING) -> Any:
        value = self.raw(key, default)
        if value is _MISSING:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.error(key, f"'{key}' must be a whole number from {low} to {high}")
            return None
        return value

    def seconds(self, key: str, default: float) -> Any:
        value = self.raw(key, default)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not 0 < value <= MAX_TIMEOUT
        ):
            self.error(key, f"'{key}' must be a number of seconds above 0 and at most 60")
            return None
        return float(value)

    def names(self, key: str) -> Any:
        value = self.raw(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and IDENT.fullmatch(v) for v in value
        ):
            self.error(key, f"'{key}' must be a list of names")
            return None
        return tuple(value)


def _digit_key(key: Any) -> str | None:
    if isinstance(key, int) and not isinstance(key, bool) and 0 <= key <= 9:
        return str(key)
    if isinstance(key, str) and len(key) == 1 and key in DTMF_DIGITS:
        return key
    return None


def _build_play(f: _Fields) -> Node | None:
    prompt, next_ = f.prompt("prompt"), f.ref("next")
    return Play(name=f.name, prompt=prompt, next=next_) if f.ok else None


def _retry_fields(f: _Fields) -> dict[str, Any]:
    return {
        "timeout": f.seconds("timeout", 5.0),
        "retries": f.integer("retries", 0, MAX_RETRIES, 2),
        "invalid_prompt": f.prompt("invalid_prompt", optional=True),
        "no_input_prompt": f.prompt("no_input_prompt", optional=True),
        "fallback": f.ref("fallback"),
    }


def _build_menu(f: _Fields) -> Node | None:
    prompt = f.prompt("prompt")
    raw = f.raw("options")
    options: dict[str, str] = {}
    if isinstance(raw, _Map) and raw:
        for key, target in raw.items():
            digit = _digit_key(key)
            line = raw.key_lines[key]
            if digit is None:
                f.problems.append(
                    Problem(f.path, line, f"option {key!r} is not one of 0-9, * or #", f.name)
                )
                f.ok = False
            elif not isinstance(target, str) or not NAME.fullmatch(target):
                f.problems.append(
                    Problem(f.path, line, f"option {digit}: {target!r} is not a node name", f.name)
                )
                f.ok = False
            elif digit in options:
                f.problems.append(Problem(f.path, line, f"option {digit} given twice", f.name))
                f.ok = False
            else:
                options[digit] = target
    elif raw is not _MISSING:
        f.error("options", "'options' must map digits to node names")
    rest = _retry_fields(f)
    return Menu(name=f.name, prompt=prompt, options=options, **rest) if f.ok else None


def _build_gather(f: _Fields) -> Node | None:
    prompt = f.prompt("prompt")
    variable = f.text("variable", IDENT, "a variable name")
    max_digits = f.integer("max_digits", 1, MAX_GATHER_DIGITS)
    terminator = f.raw("terminator", "#")
    if terminator is not None and terminator not in ("#", "*"):
        f.error("terminator", "'terminator' must be '#', '*' or null")
    source = f.raw("pattern", r"[0-9]+")
    pattern: re.Pattern[str] | None = None
    if not isinstance(source, str) or len(source) > 200:
        f.error("pattern", "'pattern' must be a regular expression of at most 200 characters")
    else:
        try:
            pattern = re.compile(source)
        except re.error as exc:
            f.error("pattern", f"'pattern': bad regular expression: {exc}")
    next_ = f.ref("next")
    rest = _retry_fields(f)
    if not f.ok or pattern is None:
        return None
    return Gather(
        name=f.name,
        prompt=prompt,
        variable=variable,
        max_digits=max_digits,
        terminator=terminator,
        pattern=pattern,
        next=next_,
        **rest,
    )


def _minutes(hours: str, minutes: str) -> int:
    return int(hours) * 60 + int(minutes)


def _build_business_hours(f: _Fields) -> Node | None:
    zone: ZoneInfo | None = None
    name = f.text("timezone")
    if name is not None:
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            f.error("timezone", f"unknown timezone {name!r} (e.g. Europe/London)")
    raw = f.raw("schedule")
    days: list[tuple[tuple[int, int], ...]] = [() for _ in WEEKDAYS]
    if isinstance(raw, _Map):
        for day, ranges in raw.items():
            line = raw.key_lines[day]

            def bad(message: str, line: int = line) -> None:
                f.problems.append(Problem(f.path, line, message, f.name))
                f.ok = False

            if day not in WEEKDAYS:
                bad(f"schedule: {day!r} is not one of {', '.join(WEEKDAYS)}")
                continue
            if ranges is None or ranges == "closed":
                ranges = []
            if isinstance(ranges, str):
                ranges = [ranges]
            if not isinstance(ranges, list):
                bad(f"schedule: {day}: expected a list of HH:MM-HH:MM")
                continue
            parsed: list[tuple[int, int]] = []
            for text in ranges:
                match = HOURS.fullmatch(text) if isinstance(text, str) else None
                if match is None:
                    bad(f"schedule: {day}: {text!r} is not HH:MM-HH:MM")
                    continue
                start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
                if end > 24 * 60 or start >= end:
                    bad(f"schedule: {day}: {text!r} must end after it starts, by 24:00")
                    continue
                parsed.append((start, end))
            days[WEEKDAYS.index(day)] = tuple(sorted(parsed))
    elif raw is not _MISSING:
        f.error("schedule", "'schedule' must map weekdays (mon..sun) to HH:MM-HH:MM ranges")
    raw_holidays = f.raw("holidays", [])
    holidays: set[dt.date] = set()
    if not isinstance(raw_holidays, list):
        f.error("holidays", "'holidays' must be a list of dates (YYYY-MM-DD)")
    else:
        for value in raw_holidays:
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                holidays.add(value)
                continue
            try:
                holidays.add(dt.date.fromisoformat(str(value)))
            except ValueError:
                f.error("holidays", f"holidays: {value!r} is not a date (YYYY-MM-DD)")
    open_, closed = f.ref("open"), f.ref("closed")
    if not f.ok or zone is None:
        return None
    return BusinessHours(
        name=f.name,
        timezone=zone,
        schedule=tuple(days),
        holidays=frozenset(holidays),
        open=open_,
        closed=closed,
    )


def _build_set(f: _Fields) -> Node | None:
    raw = f.raw("variables")
    variables: dict[str, str] = {}
    if isinstance(raw, _Map) and raw:
        for key, value in raw.items():
            if not isinstance(key, str) or not IDENT.fullmatch(key):
                f.error("variables", f"variables: {key!r} is not a variable name")
            elif not isinstance(value, str | int | float) or isinstance(value, bool):
                f.error(
                    "variables",
                    f"variables: {key}: the value must be a string or number (quote yes/no)",
                )
            elif key == "recording" and value not in ("paused", "active"):
                # The call's recording obeys this variable (a card number is never recorded).
                f.error("variables", "variables: recording is 'paused' or 'active'")
            else:
                variables[key] = str(value)
    elif raw is not _MISSING:
        f.error("variables", "'variables' must map names to values")
    next_ = f.ref("next")
    return SetVariables(name=f.name, variables=variables, next=next_) if f.ok else None


def _build_queue(f: _Fields) -> Node | None:
    queue = f.text("queue", IDENT, "a queue name")
    priority = f.integer("priority", 0, MAX_PRIORITY, 0)
    skills = f.names("skills")
    return Queue(name=f.name, queue=queue, priority=priority, skills=skills) if f.ok else None


def _build_voicemail(f: _Fields) -> Node | None:
    box = f.text("box", IDENT, "a voicemail box name")
    return Voicemail(name=f.name, box=box) if f.ok else None


def _build_transfer(f: _Fields) -> Node | None:
    to = f.text("to", TARGET, "a user name or number")
    return Transfer(name=f.name, to=to) if f.ok else None


def _build_hangup(f: _Fields) -> Node | None:
    return HangUp(name=f.name)


BUILDERS: dict[str, Callable[[_Fields], Node | None]] = {
    "play": _build_play,
    "menu": _build_menu,
    "gather": _build_gather,
    "business_hours": _build_business_hours,
    "set": _build_set,
    "queue": _build_queue,
    "voicemail": _build_voicemail,
    "transfer": _build_transfer,
    "hangup": _build_hangup,
}


def validate(document: Any, path: str, name: str) -> tuple[Flow | None, list[Problem]]:
    """The flow (None if there are errors) and every problem, errors and warnings."""
    problems: list[Problem] = []
    if not isinstance(document, _Map):
        return None, [Problem(path, 1, "a flow is a mapping with 'start' and 'nodes'")]
    for key in document:
        if key not in ("start", "nodes", "description"):
            line = document.key_lines[key]
            problems.append(Problem(path, line, f"unknown top-level key {key!r}"))
    description = document.get("description", "")
    if not isinstance(description, str):
        problems.append(Problem(path, document.key_lines["description"], "bad description"))
    start = document.get("start")
    start_line = document.key_lines.get("start", document.line)
    if not isinstance(start, str):
        problems.append(Problem(path, start_line, "'start' must name the first node"))
    raw_nodes = document.get("nodes")
    if not isinstance(raw_nodes, _Map) or not raw_nodes:
        line = document.key_lines.get("nodes", document.line)
        problems.append(Problem(path, line, "'nodes' must map node names to nodes"))
        return None, problems
    if len(raw_nodes) > MAX_FLOW_NODES:
        line = document.key_lines["nodes"]
        problems.append(Problem(path, line, f"more than {MAX_FLOW_NODES} nodes"))
        return None, problems

    nodes: dict[str, Node] = {}
    lines: dict[str, int] = {}
    for node_name, data in raw_nodes.items():
        line = raw_nodes.key_lines[node_name]
        label = str(node_name)
        if not isinstance(node_name, str) or not NAME.fullmatch(node_name):
            problems.append(Problem(path, line, "not a node name (letters, digits, _ and -)"))
            continue
        lines[node_name] = line
        if not isinstance(data, _Map):
            problems.append(Problem(path, line, "a node is a mapping with a 'type'", label))
            continue
        data.line = line
        kind = data.get("type")
        builder = BUILDERS.get(kind) if isinstance(kind, str) else None
        if builder is None:
            where = data.key_lines.get("type", line)
            message = (
                "missing field 'type'"
                if kind is None
                else f"unknown node type {kind!r} (types: {', '.join(BUILDERS)})"
            )
            problems.append(Problem(path, where, message, node_name))
            continue
        fields = _Fields(problems, path, node_name, data)
        node = builder(fields)
        fields.finish()
        if node is not None and fields.ok:
            nodes[node_name] = node

    for node_name, node in nodes.items():
        for field_name, target in node.references():
            if target not in lines:
                data = raw_nodes[node_name]
                key = field_name.split(".")[0]
                line = data.key_lines.get(key, lines[node_name])
                if key == "options":
                    options = data["options"]
                    for digit_key, line_of in options.key_lines.items():
                        if _digit_key(digit_key) == field_name.split(".")[1]:
                            line = line_of
                problems.append(
                    Problem(path, line, f"{field_name}: no node named '{target}'", node_name)
                )
    if isinstance(start, str) and start not in lines:
        problems.append(Problem(path, start_line, f"'start': no node named '{start}'"))

    if any(not p.warning for p in problems):
        return None, problems
    assert isinstance(start, str)
    problems.extend(_graph_problems(nodes, lines, start, path))
    if any(not p.warning for p in problems):
        return None, problems
    flow = Flow(
        name=name,
        path=path,
        start=start,
        nodes=nodes,
        description=description if isinstance(description, str) else "",
        lines=lines,
    )
    return flow, problems


def _graph_problems(
    nodes: dict[str, Node], lines: dict[str, int], start: str, path: str
) -> list[Problem]:
    problems: list[Problem] = []
    reached = {start}
    todo = [start]
    while todo:
        for _, target in nodes[todo.pop()].references():
            if target not in reached:
                reached.add(target)
                todo.append(target)
    for name in nodes:
        if name not in reached:
            problems.append(
                Problem(path, lines[name], "unreachable from 'start'", name, warning=True)
            )

    # A cycle among nodes that never wait for digits would spin (or replay prompts) forever.
    # Depth-first search over the edges between such nodes; a grey target closes a cycle.
    edges = {
        name: [t for _, t in node.references() if not isinstance(nodes[t], INPUT_NODES)]
        for name, node in nodes.items()
        if not isinstance(node, INPUT_NODES)
    }
    colour: dict[str, int] = {}  # absent white, 1 grey (on the stack), 2 black (done)
    reported: set[frozenset[str]] = set()
    for root in edges:
        if root in colour:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        colour[root] = 1
        while stack:
            node_name, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node_name] = 2
                stack.pop()
            elif colour.get(child) == 1:
                names = [n for n, _ in stack]
                cycle = names[names.index(child) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    first = min(cycle, key=lines.__getitem__)
                    at = cycle.index(first)
                    ordered = [*cycle[at:], *cycle[:at], first]
                    problems.append(
                        Problem(
                            path,
                            lines[first],
                            "cycle without input (no menu or gather): " + " -> ".join(ordered),
                            first,
                        )
                    )
            elif child not in colour:
                colour[child] = 1
                stack.append((child, iter(edges[child])))
    return problems


def load_flow_text(text: str, path: str, name: str) -> tuple[Flow | None, list[Problem]]:
    if len(text.encode()) > MAX_FILE_BYTES:
        return None, [Problem(path, 1, f"larger than {MAX_FILE_BYTES} bytes")]
    document, problems = parse_yaml(text, path)
    if document is None and problems:
        return None, problems
    flow, more = validate(document, path, name)
    problems = sorted(problems + more, key=lambda p: p.line)
    if any(not p.warning for p in problems):
        return None, problems
    return flow, problems


def load_flow(path: Path) -> tuple[Flow, list[Problem]]:
    """The flow in `path` and its warnings; raises FlowError with every problem."""
    shown = str(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FlowError([Problem(shown, 1, f"cannot read: {exc.strerror or exc}")]) from exc
    if len(data) > MAX_FILE_BYTES:
        raise FlowError([Problem(shown, 1, f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise FlowError([Problem(shown, 1, "not UTF-8 text")]) from exc
    flow, problems = load_flow_text(text, shown, path.stem)
    if flow is None:
        raise FlowError(problems)
    return flow, problems
