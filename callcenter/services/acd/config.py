"""Load the ACD configuration: `ivr/queues.yaml` in, an `AcdConfig` or every problem out.

Owns the file format of queues and agents (an administrator's file, next to the IVR flows) and
its validation. Each problem names the file, the line and the queue or agent
(`ivr/queues.yaml:7: queue 'support': ...`), all of them at once, like the IVR loader, whose
YAML reader (line numbers, bounded node count and depth, no aliases) this module reuses. The
file size is bounded before parsing. A missing file is an empty configuration (no queues).
Must not know: the router's state, the engine, the database.

Queue membership is a skill: a queue requires `queue:<name>` at level 1 and each agent has it
for every queue listed, so the router needs no membership concept and its decisions show it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from callcenter.services.acd.queue import (
    MAX_SKILL_LEVEL,
    OverflowTarget,
    QueueConfig,
    QueueTarget,
    RoutingError,
    Strategy,
    VoicemailTarget,
    frozen_skills,
)
from callcenter.services.ivr.loader import IDENT, parse_yaml

MAX_FILE_BYTES: Final = 1 << 20
MAX_QUEUES: Final = 500
MAX_AGENTS: Final = 5000
# Upper bounds of the knobs, in seconds: beyond them a value is a typo, not a policy.
MAX_RING_TIMEOUT: Final = 300.0
MAX_WRAP_UP: Final = 3600.0
MAX_ANNOUNCE_EVERY: Final = 3600.0
MAX_MAX_WAIT: Final = 86400.0
MAX_TIER_WEIGHT: Final = 1000
MAX_SERVICE_LEVEL: Final = 3600.0
# A call answered within this many seconds of joining the queue counts as answered in time
# (the service level: answered in time / (answered + abandoned)); `service_level` per queue.
DEFAULT_SERVICE_LEVEL: Final = 20.0
DEFAULT_AGENT_WRAP_UP: Final = 10.0
MEMBERSHIP_PREFIX: Final = "queue:"

QUEUE_KEYS: Final = (
    "strategy",
    "skills",
    "ring_timeout",
    "wrap_up",
    "announce_every",
    "max_wait",
    "overflow",
    "tier_weight",
    "callback",
    "retention_days",
    "service_level",
)
# Days a queue's recordings are kept at most (100 years: beyond it, a typo).
MAX_RETENTION_DAYS: Final = 36_500
AGENT_KEYS: Final = ("queues", "skills", "wrap_up")


def membership_skill(queue: str) -> str:
    """The skill that says an agent takes calls of `queue`."""
    return f"{MEMBERSHIP_PREFIX}{queue}"


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """One agent as configured: `skills` include `queue:<q>: 1` for each of `queues`."""

    username: str
    skills: Mapping[str, int]
    queues: tuple[str, ...]
    wrap_up_seconds: float = DEFAULT_AGENT_WRAP_UP

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", frozen_skills(self.skills, f"agent {self.username!r}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class AcdConfig:
    """Queues by name, the queues whose callers may ask for a callback, agents by username,
    how many days each queue's recordings are kept (queues not listed: the default) and each
    queue's service-level threshold in seconds (not listed: DEFAULT_SERVICE_LEVEL)."""

    queues: Mapping[str, QueueConfig]
    callback_queues: frozenset[str]
    agents: Mapping[str, AgentConfig]
    retention_days: Mapping[str, int] = dataclass_field(
        default_factory=lambda: MappingProxyType({})
    )
    service_level_seconds: Mapping[str, float] = dataclass_field(
        default_factory=lambda: MappingProxyType({})
    )

    def service_level(self, queue: str) -> float:
        """Seconds within which an answer counts as in time for `queue`."""
        return self.service_level_seconds.get(queue, DEFAULT_SERVICE_LEVEL)


EMPTY: Final = AcdConfig(
    queues=MappingProxyType({}), callback_queues=frozenset(), agents=MappingProxyType({})
)


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    path: str
    line: int
    message: str
    subject: str | None = None  # "queue 'support'", "agent 'amy'"

    def __str__(self) -> str:
        where = f"{self.subject}: " if self.subject is not None else ""
        return f"{self.path}:{self.line}: {where}{self.message}"


class AcdConfigError(Exception):
    """The ACD configuration did not load; `problems` holds every error found."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# --- reading -------------------------------------------------------------------------------


def load_acd_config(path: Path) -> AcdConfig:
    """The configuration in `path` (empty when the file does not exist); raises
    `AcdConfigError` with every problem, each naming file:line and the queue or agent."""
    shown = str(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return EMPTY
    except OSError as exc:
        problem = ConfigProblem(shown, 1, f"cannot read: {exc.strerror or exc}")
        raise AcdConfigError([problem]) from exc
    if len(data) > MAX_FILE_BYTES:
        raise AcdConfigError([ConfigProblem(shown, 1, f"larger than {MAX_FILE_BYTES} bytes")])
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise AcdConfigError([ConfigProblem(shown, 1, "not UTF-8 text")]) from None
    return load_acd_config_text(text, shown)


def load_acd_config_text(text: str, path: str) -> AcdConfig:
    """The configuration in `text`, problems shown as coming from `path`."""
    document, parsed = parse_yaml(text, path)
    problems = [ConfigProblem(p.path, p.line, p.message) for p in parsed]
    if document is None and problems:
        raise AcdConfigError(problems)
    config = _Validator(path, problems).document(document)
    if problems or config is None:
        raise AcdConfigError(sorted(problems, key=lambda p: p.line))
    return config


# --- validation ----------------------------------------------------------------------------


def _line(mapping: Any, key: Any = None) -> int:
    """The line of `key` in a YAML mapping read by the IVR loader (of the mapping if None)."""
    lines: dict[Any, int] = getattr(mapping, "key_lines", {})
    if key is not None and key in lines:
        return lines[key]
    line: int = getattr(mapping, "line", 1)
    return line


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Validator:
    def __init__(self, path: str, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems

    def error(self, line: int, message: str, subject: str | None = None) -> None:
        self.problems.append(ConfigProblem(self.path, line, message, subject))

    def document(self, document: Any) -> AcdConfig | None:
        if document is None:  # an empty file, or comments only
            return EMPTY
        if not isinstance(document, dict):
            self.error(1, "the file is a mapping with 'queues' and 'agents'")
            return None
        for key in document:
            if key not in ("queues", "agents"):
                self.error(_line(document, key), f"unknown top-level key {key!r}")
        raw_queues = self.section(document, "queues", MAX_QUEUES)
        raw_agents = self.section(document, "agents", MAX_AGENTS)

        queues: dict[str, QueueConfig] = {}
        callback: set[str] = set()
        retention: dict[str, int] = {}
        service_level: dict[str, float] = {}
        overflows: list[tuple[str, int, str]] = []
        for name, data in raw_queues.items():
            line = _line(raw_queues, name)
            if not isinstance(name, str) or not IDENT.fullmatch(name):
                self.error(line, f"{name!r} is not a queue name (letters, digits, _ . -)")
                continue
            built = self.queue(name, data, line)
            if built is None:
                continue
            queues[name], wants_callback, overflow_line, keep_days, in_time = built
            if wants_callback:
                callback.add(name)
            if keep_days is not None:
                retention[name] = keep_days
            if in_time is not None:
                service_level[name] = in_time
            target = queues[name].overflow
            if isinstance(target, QueueTarget):
                overflows.append((name, overflow_line, target.queue))
        for name, line, target_queue in overflows:
            # Checked against every queue's name, loaded or not, so one bad queue is not
            # reported again by each queue that overflows into it.
            if target_queue not in raw_queues:
                self.error(line, f"overflow: no queue named {target_queue!r}", f"queue {name!r}")

        agents: dict[str, AgentConfig] = {}
        for username, data in raw_agents.items():
            line = _line(raw_agents, username)
            if not isinstance(username, str) or not IDENT.fullmatch(username):
                self.error(line, f"{username!r} is not a username (letters, digits, _ . -)")
                continue
            agent = self.agent(username, data, line, raw_queues)
            if agent is not None:
                agents[username] = agent
        if self.problems:
            return None
        return AcdConfig(
            queues=MappingProxyType(queues),
            callback_queues=frozenset(callback),
            agents=MappingProxyType(agents),
            retention_days=MappingProxyType(retention),
            service_level_seconds=MappingProxyType(service_level),
        )

    def section(self, document: dict[Any, Any], key: str, limit: int) -> dict[Any, Any]:
        value = document.get(key)
        if value is None:
            return {}
        line = _line(document, key)
        if not isinstance(value, dict):
            self.error(line, f"'{key}' must map names to settings")
            return {}
        if len(value) > limit:
            self.error(line, f"more than {limit} {key}")
            return {}
        return value

    # A converter records a problem and returns None for a bad value.

    def seconds(
        self,
        data: dict[Any, Any],
        key: str,
        subject: str,
        *,
        high: float,
        positive: bool,
        nullable: bool = False,
    ) -> tuple[bool, float | None]:
        value = data[key]
        if value is None and nullable:
            return True, None
        number = _is_number(value) and math.isfinite(value)
        if number and (value > 0 if positive else value >= 0) and value <= high:
            return True, float(value)
        low = "above 0" if positive else "from 0"
        null = " (or null)" if nullable else ""
        self.error(
            _line(data, key),
            f"'{key}' must be a number of seconds {low} to {high:g}{null}",
            subject,
        )
        return False, None

    def skills(self, data: dict[Any, Any], subject: str) -> dict[str, int] | None:
        raw = data.get("skills")
        if raw is None:
            return {}
        line = _line(data, "skills")
        if not isinstance(raw, dict):
            self.error(line, "'skills' must map skill names to levels", subject)
            return None
        skills: dict[str, int] = {}
        for name, level in raw.items():
            at = _line(raw, name)
            if not isinstance(name, str) or not IDENT.fullmatch(name):
                self.error(at, f"skills: {name!r} is not a skill name", subject)
            elif (
                isinstance(level, bool)
                or not isinstance(level, int)
                or not 0 <= level <= MAX_SKILL_LEVEL
            ):
                self.error(at, f"skills: {name}: the level must be a whole number 0..100", subject)
            else:
                skills[name] = level
        return skills if len(skills) == len(raw) else None

    def unknown_keys(self, data: dict[Any, Any], allowed: tuple[str, ...], subject: str) -> bool:
        ok = True
        for key in data:
            if key not in allowed:
                self.error(
                    _line(data, key), f"unknown key {key!r} (keys: {', '.join(allowed)})", subject
                )
                ok = False
        return ok

    def queue(
        self, name: str, data: Any, line: int
    ) -> tuple[QueueConfig, bool, int, int | None, float | None] | None:
        subject = f"queue {name!r}"
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error(line, "a queue is a mapping of settings", subject)
            return None
        ok = self.unknown_keys(data, QUEUE_KEYS, subject)
        settings: dict[str, Any] = {}

        if "strategy" in data:
            value = data["strategy"]
            try:
                settings["strategy"] = Strategy(value)
            except ValueError:
                strategies = ", ".join(s.value for s in Strategy)
                self.error(
                    _line(data, "strategy"),
                    f"unknown strategy {value!r} (strategies: {strategies})",
                    subject,
                )
                ok = False
        skills = self.skills(data, subject)
        if skills is None:
            ok = False
        else:
            settings["required_skills"] = {**skills, membership_skill(name): 1}

        seconds = (
            ("ring_timeout", "ring_timeout_seconds", MAX_RING_TIMEOUT, True, False),
            ("wrap_up", "wrap_up_seconds", MAX_WRAP_UP, False, False),
            ("announce_every", "announcement_interval_seconds", MAX_ANNOUNCE_EVERY, True, True),
            ("max_wait", "max_wait_seconds", MAX_MAX_WAIT, True, True),
        )
        for key, field, high, positive, nullable in seconds:
            if key in data:
                good, value = self.seconds(
                    data, key, subject, high=high, positive=positive, nullable=nullable
                )
                ok = ok and good
                settings[field] = value

        overflow_line = _line(data, "overflow")
        if data.get("overflow") is not None:
            target = self.overflow(data, subject)
            if target is None:
                ok = False
            settings["overflow"] = target
        has_wait = data.get("max_wait") is not None
        if has_wait != (data.get("overflow") is not None):
            where = "max_wait" if has_wait else "overflow"
            self.error(
                _line(data, where),
                "'max_wait' and 'overflow' go together (both or neither)",
                subject,
            )
            ok = False

        if "tier_weight" in data:
            value = data["tier_weight"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= MAX_TIER_WEIGHT
            ):
                self.error(
                    _line(data, "tier_weight"),
                    f"'tier_weight' must be a whole number 0..{MAX_TIER_WEIGHT}",
                    subject,
                )
                ok = False
            settings["tier_weight"] = value
        callback = data.get("callback", False)
        if not isinstance(callback, bool):
            self.error(_line(data, "callback"), "'callback' must be true or false", subject)
            ok = False
        keep_days = data.get("retention_days")
        if keep_days is not None and (
            isinstance(keep_days, bool)
            or not isinstance(keep_days, int)
            or not 1 <= keep_days <= MAX_RETENTION_DAYS
        ):
            self.error(
                _line(data, "retention_days"),
                f"'retention_days' must be a whole number of days 1..{MAX_RETENTION_DAYS}",
                subject,
            )
            ok = False
        in_time: float | None = None
        if "service_level" in data:
            good, in_time = self.seconds(
                data, "service_level", subject, high=MAX_SERVICE_LEVEL, positive=True
            )
            ok = ok and good
        if not ok:
            return None
        try:
            config = QueueConfig(name=name, **settings)
        except RoutingError as exc:
            self.error(line, str(exc), subject)
            return None
        return config, callback, overflow_line, keep_days, in_time

    def overflow(self, data: dict[Any, Any], subject: str) -> OverflowTarget | None:
        raw = data["overflow"]
        line = _line(data, "overflow")
        message = "'overflow' must be {queue: NAME} or {voicemail: BOX}"
        if not isinstance(raw, dict) or len(raw) != 1:
            self.error(line, message, subject)
            return None
        [(kind, target)] = raw.items()
        line = _line(raw, kind)
        if kind not in ("queue", "voicemail"):
            self.error(line, message, subject)
            return None
        if not isinstance(target, str) or not IDENT.fullmatch(target):
            self.error(line, f"overflow: {target!r} is not a {kind} name", subject)
            return None
        return QueueTarget(queue=target) if kind == "queue" else VoicemailTarget(box=target)

    def agent(
        self, username: str, data: Any, line: int, queues: dict[Any, Any]
    ) -> AgentConfig | None:
        subject = f"agent {username!r}"
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.error(line, "an agent is a mapping of settings", subject)
            return None
        ok = self.unknown_keys(data, AGENT_KEYS, subject)
        raw_queues = data.get("queues", [])
        queue_line = _line(data, "queues")
        member: list[str] = []
        if not isinstance(raw_queues, list) or not all(isinstance(q, str) for q in raw_queues):
            self.error(queue_line, "'queues' must be a list of queue names", subject)
            ok = False
        else:
            for queue in raw_queues:
                if queue not in queues:
                    self.error(queue_line, f"queues: no queue named {queue!r}", subject)
                    ok = False
                elif queue in member:
                    self.error(queue_line, f"queues: {queue!r} listed twice", subject)
                    ok = False
                else:
                    member.append(queue)
        skills = self.skills(data, subject)
        wrap_up: float | None = DEFAULT_AGENT_WRAP_UP
        if "wrap_up" in data:
            good, wrap_up = self.seconds(data, "wrap_up", subject, high=MAX_WRAP_UP, positive=False)
            ok = ok and good
        if not ok or skills is None or wrap_up is None:
            return None
        skills.update((membership_skill(q), 1) for q in member)
        try:
            return AgentConfig(
                username=username, skills=skills, queues=tuple(member), wrap_up_seconds=wrap_up
            )
        except RoutingError as exc:
            self.error(line, str(exc), subject)
            return None
