"""The ACD configuration file: queues and agents from YAML, every error with file:line:who."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.services.acd.config import (
    MAX_FILE_BYTES,
    AcdConfigError,
    AgentConfig,
    load_acd_config,
    membership_skill,
)
from callcenter.services.acd.queue import QueueTarget, Strategy, VoicemailTarget
from callcenter.services.acd.routing import CallOfferedToAgent, Router

ROOT = Path(__file__).resolve().parents[2]

VALID = """\
queues:
  support:
    strategy: longest-idle
    skills: {english: 1}
    ring_timeout: 15
    wrap_up: 10
    announce_every: 30
    max_wait: 600
    overflow: {voicemail: support}
    tier_weight: 10
    callback: true
    retention_days: 730
    service_level: 30
  sales:
    strategy: round-robin
    announce_every: null
    max_wait: 120.5
    overflow: {queue: support}
  plain:
agents:
  amy: {queues: [support, sales], skills: {english: 5}, wrap_up: 7}
  ben: {queues: [support], skills: {english: 3}}
  cara:
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "queues.yaml"
    path.write_text(text)
    return path


def errors(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(AcdConfigError) as caught:
        load_acd_config(path)
    lines = [str(p) for p in caught.value.problems]
    assert str(caught.value) == "\n".join(lines)
    return [line.removeprefix(f"{path}:") for line in lines]


def test_a_valid_file_round_trips(tmp_path: Path) -> None:
    config = load_acd_config(write(tmp_path, VALID))
    assert list(config.queues) == ["support", "sales", "plain"]
    support = config.queues["support"]
    assert support.strategy is Strategy.LONGEST_IDLE
    assert dict(support.required_skills) == {"english": 1, "queue:support": 1}
    assert support.ring_timeout_seconds == 15.0
    assert support.wrap_up_seconds == 10.0
    assert support.announcement_interval_seconds == 30.0
    assert support.max_wait_seconds == 600.0
    assert support.overflow == VoicemailTarget(box="support")
    assert support.tier_weight == 10
    sales = config.queues["sales"]
    assert sales.strategy is Strategy.ROUND_ROBIN
    assert sales.announcement_interval_seconds is None
    assert sales.max_wait_seconds == 120.5
    assert sales.overflow == QueueTarget(queue="support")
    # Left out: QueueConfig's defaults.
    plain = config.queues["plain"]
    assert plain.strategy is Strategy.LONGEST_IDLE and plain.overflow is None
    assert dict(plain.required_skills) == {"queue:plain": 1}
    assert config.callback_queues == frozenset({"support"})
    assert dict(config.retention_days) == {"support": 730}
    assert dict(config.service_level_seconds) == {"support": 30.0}
    assert (config.service_level("support"), config.service_level("sales")) == (30.0, 20.0)
    assert config.agents["amy"] == AgentConfig(
        username="amy",
        skills={"english": 5, "queue:sales": 1, "queue:support": 1},
        queues=("support", "sales"),
        wrap_up_seconds=7.0,
    )
    assert config.agents["ben"].queues == ("support",)
    assert config.agents["ben"].wrap_up_seconds == 10.0
    assert dict(config.agents["cara"].skills) == {} and config.agents["cara"].queues == ()


def test_the_configuration_is_read_only(tmp_path: Path) -> None:
    config = load_acd_config(write(tmp_path, VALID))
    with pytest.raises(TypeError):
        config.queues["x"] = config.queues["plain"]  # type: ignore[index]
    with pytest.raises(TypeError):
        config.agents["amy"].skills["english"] = 100  # type: ignore[index]


def test_membership_is_a_skill_the_router_checks(tmp_path: Path) -> None:
    config = load_acd_config(write(tmp_path, VALID))
    assert membership_skill("sales") == "queue:sales"
    router = Router(config.queues.values())
    for agent in config.agents.values():
        router.set_agent(agent.username, skills=agent.skills)
        router.agent_available(agent.username, 0.0)
    # cara is in no queue: of two sales calls, amy (the only member) gets one, the other waits
    # beside cara, who is free but not a member.
    router.enqueue("c1", "sales", 1.0)
    router.enqueue("c2", "sales", 1.5)
    [offer] = router.route(2.0)
    assert isinstance(offer, CallOfferedToAgent)
    assert (offer.agent_id, offer.call.call_id) == ("amy", "c1")
    assert dict(offer.call.required_skills) == {"queue:sales": 1}
    assert [call.call_id for call in router.waiting("sales")] == ["c2"]
    # ben is a support member with english 3: he takes a support call while amy rings.
    router.enqueue("c3", "support", 3.0)
    [offer] = router.route(4.0)
    assert isinstance(offer, CallOfferedToAgent) and offer.agent_id == "ben"


def test_the_shipped_demo_file_loads() -> None:
    config = load_acd_config(ROOT / "ivr" / "queues.yaml")
    assert sorted(config.queues) == ["sales", "support"]
    assert config.callback_queues == frozenset({"sales", "support"})
    assert config.queues["sales"].strategy is Strategy.ROUND_ROBIN
    assert config.queues["sales"].overflow == VoicemailTarget(box="sales")
    assert config.queues["support"].overflow == VoicemailTarget(box="support")
    assert config.queues["support"].required_skills["english"] == 1
    assert {name: a.queues for name, a in config.agents.items()} == {
        "amy": ("sales", "support"),
        "ben": ("support",),
        "cara": ("sales",),
    }


def test_a_missing_file_is_an_empty_configuration(tmp_path: Path) -> None:
    config = load_acd_config(tmp_path / "nope.yaml")
    assert dict(config.queues) == {} and dict(config.agents) == {}
    assert config.callback_queues == frozenset()


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "queues:\nagents:\n"])
def test_an_empty_file_is_an_empty_configuration(tmp_path: Path, text: str) -> None:
    config = load_acd_config(write(tmp_path, text))
    assert dict(config.queues) == {} and dict(config.agents) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "queues:\n  q:\n    strategy: fastest\n",
            "3: queue 'q': unknown strategy 'fastest' "
            "(strategies: longest-idle, round-robin, ring-all, fewest-calls)",
        ),
        (
            "queues:\n  q:\n    retention_days: 0\n",
            "3: queue 'q': 'retention_days' must be a whole number of days 1..36500",
        ),
        (
            "queues:\n  q:\n    retention_days: 30.5\n",
            "3: queue 'q': 'retention_days' must be a whole number of days 1..36500",
        ),
        (
            "queues:\n  q:\n    colour: red\n",
            "3: queue 'q': unknown key 'colour' (keys: strategy, skills, ring_timeout, wrap_up, "
            "announce_every, max_wait, overflow, tier_weight, callback, retention_days, "
            "service_level)",
        ),
        (
            "queues:\n  q:\n    service_level: 0\n",
            "3: queue 'q': 'service_level' must be a number of seconds above 0 to 3600",
        ),
        (
            "queues:\n  q:\n    ring_timeout: soon\n",
            "3: queue 'q': 'ring_timeout' must be a number of seconds above 0 to 300",
        ),
        (
            "queues:\n  q:\n    wrap_up: -1\n",
            "3: queue 'q': 'wrap_up' must be a number of seconds from 0 to 3600",
        ),
        (
            "queues:\n  q:\n    announce_every: .inf\n",
            "3: queue 'q': 'announce_every' must be a number of seconds above 0 to 3600 (or null)",
        ),
        (
            "queues:\n  q:\n    tier_weight: true\n",
            "3: queue 'q': 'tier_weight' must be a whole number 0..1000",
        ),
        (
            "queues:\n  q:\n    callback: yes please\n",
            "3: queue 'q': 'callback' must be true or false",
        ),
        (
            "queues:\n  q:\n    skills: {english: 101}\n",
            "3: queue 'q': skills: english: the level must be a whole number 0..100",
        ),
        (
            "queues:\n  q:\n    skills: [english]\n",
            "3: queue 'q': 'skills' must map skill names to levels",
        ),
        (
            "queues:\n  q:\n\n    max_wait: 60\n",
            "4: queue 'q': 'max_wait' and 'overflow' go together (both or neither)",
        ),
        (
            "queues:\n  q:\n    overflow: {voicemail: q}\n",
            "3: queue 'q': 'max_wait' and 'overflow' go together (both or neither)",
        ),
        (
            "queues:\n  q:\n    max_wait: 60\n    overflow: {queue: elsewhere}\n",
            "4: queue 'q': overflow: no queue named 'elsewhere'",
        ),
        (
            "queues:\n  q:\n    max_wait: 60\n    overflow: {phone: '123'}\n",
            "4: queue 'q': 'overflow' must be {queue: NAME} or {voicemail: BOX}",
        ),
        (
            # QueueConfig's own RoutingError, at the queue's line.
            "queues:\n  q:\n    max_wait: 60\n    overflow: {queue: q}\n",
            "2: queue 'q': queue 'q': cannot overflow into itself",
        ),
        ("queues:\n  q: 3\n", "2: queue 'q': a queue is a mapping of settings"),
        (
            "queues:\n  'bad name': {}\n",
            "2: 'bad name' is not a queue name (letters, digits, _ . -)",
        ),
        ("queues: [a, b]\n", "1: 'queues' must map names to settings"),
        ("routes: {}\n", "1: unknown top-level key 'routes'"),
        ("- a\n", "1: the file is a mapping with 'queues' and 'agents'"),
        ("queues:\n  q: {}\n  q: {}\n", "3: duplicate key 'q'"),
        ("queues:\n  q: {a: [}\n", "2: expected the node content, but found '}'"),
        ("queues: &x {}\nagents: *x\n", "2: aliases (*name) are not allowed in flows"),
        (
            "queues:\n  q: {}\nagents:\n  amy:\n    queues: [q, nope]\n",
            "5: agent 'amy': queues: no queue named 'nope'",
        ),
        (
            "queues:\n  q: {}\nagents:\n  amy: {queues: [q, q]}\n",
            "4: agent 'amy': queues: 'q' listed twice",
        ),
        (
            "agents:\n  amy: {queues: sales}\n",
            "2: agent 'amy': 'queues' must be a list of queue names",
        ),
        (
            "agents:\n  amy:\n    phone: 1001\n",
            "3: agent 'amy': unknown key 'phone' (keys: queues, skills, wrap_up)",
        ),
        (
            "agents:\n  amy:\n    wrap_up: forever\n",
            "3: agent 'amy': 'wrap_up' must be a number of seconds from 0 to 3600",
        ),
        (
            "agents:\n  amy:\n    skills: {'queue:x': 1}\n",
            "3: agent 'amy': skills: 'queue:x' is not a skill name",
        ),
        ("agents:\n  amy: [q]\n", "2: agent 'amy': an agent is a mapping of settings"),
    ],
)
def test_each_error_names_file_line_and_who(tmp_path: Path, text: str, expected: str) -> None:
    assert errors(tmp_path, text) == [expected]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        "queues:\n"
        "  sales:\n"
        "    strategy: random\n"
        "  support:\n"
        "    max_wait: 60\n"
        "    overflow: {queue: billing}\n"
        "agents:\n"
        "  amy: {queues: [sales, billing]}\n"
    )
    assert errors(tmp_path, text) == [
        "3: queue 'sales': unknown strategy 'random' "
        "(strategies: longest-idle, round-robin, ring-all, fewest-calls)",
        "6: queue 'support': overflow: no queue named 'billing'",
        "8: agent 'amy': queues: no queue named 'billing'",
    ]


def test_the_file_size_is_bounded_before_parsing(tmp_path: Path) -> None:
    path = write(tmp_path, "# " + "x" * MAX_FILE_BYTES + "\n")
    with pytest.raises(AcdConfigError, match=rf"^{path}:1: larger than {MAX_FILE_BYTES} bytes$"):
        load_acd_config(path)


def test_unreadable_files_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "queues.yaml"
    path.write_bytes(b"queues: \xff\n")
    with pytest.raises(AcdConfigError, match=r":1: not UTF-8 text$"):
        load_acd_config(path)
    with pytest.raises(AcdConfigError, match=r":1: cannot read: "):
        load_acd_config(tmp_path)
