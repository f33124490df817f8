"""`callcenter demo seed`, `ivr render` and `acd check`: what `make run` does before `serve`.

Also `user passwd`, which gives a user (a demo user, say) a web password.
"""

from __future__ import annotations

import getpass
import sqlite3
import sys
from pathlib import Path

import pytest
from pwdlib import PasswordHash

from callcenter.cli import main
from callcenter.services.demo import DEMO_CUSTOMERS, DEMO_USERS
from callcenter.sip.digest import compute_ha1

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ROOT / "ivr" / "queues.yaml"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    for name in ("DATABASE_URL", "LOG_LEVEL", "SIP_REALM", "DEFAULT_REGION", "TTS_VOICE"):
        monkeypatch.delenv(f"CALLCENTER_{name}", raising=False)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(path))
    monkeypatch.setenv("CALLCENTER_IVR_DIR", str(ROOT / "ivr"))
    return path


@pytest.fixture
def migrated(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    return data_dir


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        result = connection.execute(query).fetchall()
    connection.close()
    return result


# --- demo seed -----------------------------------------------------------------------------


def test_demo_seed_creates_the_demo_once(
    migrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "seed"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert (
        out[0]
        == "user amy (agent) created: password demo-amy-1 (web page and SIP), realm callcenter"
    )
    assert (
        "user sam (supervisor) created: password demo-sam-1 (web page and SIP), realm callcenter"
        in out
    )
    assert "customer Dev Desai (vip, +44 1632 960004) created" in out
    assert (
        "user quinn (qa) created: password demo-quinn-1 (web page and SIP), realm callcenter" in out
    )
    assert (
        "user ada (admin) created: password demo-ada-1 (web page and SIP), realm callcenter" in out
    )
    assert out[-1] == (
        "demo seeded: 6 user(s) and 5 customer(s) created, "
        "0 user(s) and 0 customer(s) already there"
    )
    database = migrated / "callcenter.db"
    users = rows(
        database, "SELECT username, role, sip_ha1_md5, password_hash FROM users ORDER BY username"
    )
    assert [(name, role) for name, role, _, _ in users] == [
        ("ada", "admin"),
        ("amy", "agent"),
        ("ben", "agent"),
        ("cara", "agent"),
        ("quinn", "qa"),
        ("sam", "supervisor"),
    ]
    passwords = {u.username: u.sip_password for u in DEMO_USERS}
    for name, _, ha1, password_hash in users:
        assert isinstance(name, str)
        assert len(passwords[name]) >= 8
        assert ha1 == compute_ha1(name, "callcenter", passwords[name], "MD5")
        # The web password is the same one, as argon2id.
        assert isinstance(password_hash, str)
        assert PasswordHash.recommended().verify(passwords[name], password_hash)
    tiers = rows(database, "SELECT tier, count(*) FROM customers GROUP BY tier ORDER BY tier")
    assert tiers == [("gold", 1), ("regular", 2), ("silver", 1), ("vip", 1)]
    phones = [str(e164) for (e164,) in rows(database, "SELECT e164 FROM customer_phones")]
    assert len(phones) == sum(len(c.phones) for c in DEMO_CUSTOMERS) == 6
    # Ofcom's drama ranges only: 01632 960xxx and 07700 900xxx.
    assert all(p.startswith(("+441632960", "+447700900")) and len(p) == 13 for p in phones)
    assert rows(database, "SELECT count(*) FROM customer_notes") == [(5,)]

    # A second run (every `make run`) changes nothing and says so.
    assert main(["demo", "seed"]) == 0
    assert capsys.readouterr().out == (
        "demo already seeded (6 users, 5 customers): nothing changed\n"
    )
    assert rows(database, "SELECT count(*) FROM users") == [(6,)]
    assert rows(database, "SELECT count(*) FROM customers") == [(5,)]
    assert rows(database, "SELECT count(*) FROM customer_phones") == [(6,)]
    assert rows(database, "SELECT count(*) FROM customer_notes") == [(5,)]


def test_demo_seed_fills_in_what_is_missing(
    migrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user", "add", "ben", "--sip-password", "bens-own-password"]) == 0
    capsys.readouterr()
    assert main(["demo", "seed"]) == 0
    out = capsys.readouterr().out
    assert "user ben" not in out
    assert out.splitlines()[-1] == (
        "demo seeded: 5 user(s) and 5 customer(s) created, "
        "1 user(s) and 0 customer(s) already there"
    )
    # ben keeps his own password, and gets no web password printed in README.md.
    [(ha1, password_hash)] = rows(
        migrated / "callcenter.db",
        "SELECT sip_ha1_md5, password_hash FROM users WHERE username='ben'",
    )
    assert ha1 == compute_ha1("ben", "callcenter", "bens-own-password", "MD5")
    assert password_hash is None


def test_demo_seed_gives_an_older_demo_its_web_passwords(
    migrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A demo seeded before users had web passwords: the demo's SIP password, no web password.
    assert main(["user", "add", "amy", "--sip-password", "demo-amy-1"]) == 0
    capsys.readouterr()
    assert main(["demo", "seed"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "demo seeded: 5 user(s) and 5 customer(s) created, "
        "1 user(s) and 0 customer(s) already there"
    )
    [(password_hash,)] = rows(
        migrated / "callcenter.db", "SELECT password_hash FROM users WHERE username='amy'"
    )
    assert isinstance(password_hash, str)
    assert PasswordHash.recommended().verify("demo-amy-1", password_hash)
    assert main(["demo", "seed"]) == 0
    assert "nothing changed" in capsys.readouterr().out


def test_demo_seed_needs_a_migrated_database(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "seed"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("callcenter demo: database sqlite+aiosqlite:///")
    assert "callcenter migrate" in err


# --- user passwd ---------------------------------------------------------------------------


def test_user_passwd_from_the_environment(
    migrated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user", "add", "quinn", "--role", "qa"]) == 0
    monkeypatch.setenv("CALLCENTER_NEW_PASSWORD", "quinns-new-password")
    assert main(["user", "passwd", "quinn"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "user quinn: web password set"
    assert "quinns-new-password" not in out
    [(password_hash,)] = rows(
        migrated / "callcenter.db", "SELECT password_hash FROM users WHERE username='quinn'"
    )
    assert isinstance(password_hash, str) and password_hash.startswith("$argon2id$")
    assert PasswordHash.recommended().verify("quinns-new-password", password_hash)

    monkeypatch.setenv("CALLCENTER_NEW_PASSWORD", "short")
    assert main(["user", "passwd", "quinn"]) == 1
    assert capsys.readouterr().err == ("callcenter user: a password needs at least 8 characters\n")
    monkeypatch.setenv("CALLCENTER_NEW_PASSWORD", "long-enough")
    assert main(["user", "passwd", "nobody"]) == 1
    assert capsys.readouterr().err == "callcenter user: no user 'nobody'\n"


def test_user_passwd_asks_twice_on_a_terminal(
    migrated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user", "add", "ada", "--role", "admin"]) == 0
    monkeypatch.delenv("CALLCENTER_NEW_PASSWORD", raising=False)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    answers = iter(["adas-password", "adas-passwrod"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    assert main(["user", "passwd", "ada"]) == 1
    assert capsys.readouterr().err == (
        "callcenter user: the two passwords differ: nothing changed\n"
    )
    answers = iter(["adas-password", "adas-password"])
    assert main(["user", "passwd", "ada"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "user ada: web password set"

    # No terminal and no variable: say how to do it instead of reading stdin.
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(["user", "passwd", "ada"]) == 1
    assert "set CALLCENTER_NEW_PASSWORD" in capsys.readouterr().err


# --- ivr render ----------------------------------------------------------------------------


def test_ivr_render_fills_the_prompt_cache_once(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = data_dir / "prompt-cache"
    assert main(["ivr", "render", "--ivr-dir", str(ROOT / "ivr")]) == 0
    out = capsys.readouterr().out
    flows = ROOT / "ivr" / "flows"
    assert out == f"text prompts of 1 flow(s) in {flows}: rendered 6, cached 0 (in {cache})\n"
    rendered = sorted(cache.glob("*.wav"))
    assert len(rendered) == 6
    assert all(path.stat().st_size > 1000 for path in rendered)

    # The default --ivr-dir is CALLCENTER_IVR_DIR; everything is in the cache now.
    assert main(["ivr", "render"]) == 0
    out = capsys.readouterr().out
    assert out == f"text prompts of 1 flow(s) in {flows}: rendered 0, cached 6 (in {cache})\n"
    assert sorted(cache.glob("*.wav")) == rendered


def test_ivr_render_renders_good_flows_and_names_the_bad(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ivr_dir = tmp_path / "ivr"
    (ivr_dir / "flows").mkdir(parents=True)
    (ivr_dir / "flows" / "good.yaml").write_text(
        "start: hi\nnodes:\n  hi: {type: play, prompt: 'text:Hello.', next: bye}\n"
        "  bye: {type: hangup}\n"
    )
    (ivr_dir / "flows" / "bad.yaml").write_text("start: a\nnodes:\n  a: {type: dance}\n")
    assert main(["ivr", "render", "--ivr-dir", str(ivr_dir)]) == 1
    captured = capsys.readouterr()
    assert "rendered 1, cached 0" in captured.out
    assert f"{ivr_dir}/flows/bad.yaml:3: node 'a': unknown node type 'dance'" in captured.err
    assert "callcenter ivr: 1 flow(s) have errors" in captured.err


def test_ivr_render_without_espeak_ng_says_what_to_do(
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))
    assert main(["ivr", "render"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "callcenter ivr: espeak-ng is not installed, so 6 text prompt(s) cannot be rendered: "
        "install it (apt-get install espeak-ng, as root), then run this again"
    )
    assert not list((data_dir / "prompt-cache").glob("*.wav"))


# --- acd check -----------------------------------------------------------------------------


def test_acd_check_passes_on_the_shipped_queues(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["acd", "check"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{QUEUES}: 2 queue(s), 3 agent(s) OK",
        "  queue sales: round-robin, ring 15 s, wrap-up 10 s, announce every 30 s, "
        "after 300 s to voicemail sales, callback; agents amy, cara",
        "  queue support: longest-idle, skills english>=1, ring 15 s, wrap-up 15 s, "
        "announce every 30 s, after 600 s to voicemail support, callback; agents amy, ben",
        "  agent amy: queues sales, support; skills english 5; wrap-up 10 s",
        "  agent ben: queues support; skills english 3; wrap-up 10 s",
        "  agent cara: queues sales; skills none; wrap-up 10 s",
    ]
    assert main(["acd", "check", str(QUEUES)]) == 0


def test_acd_check_names_file_and_line_of_each_error(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "queues.yaml"
    broken.write_text(
        "queues:\n  sales:\n    strategy: random\nagents:\n  amy: {queues: [sales, support]}\n"
    )
    assert main(["acd", "check", str(broken)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{broken}:3: queue 'sales': unknown strategy 'random' "
        "(strategies: longest-idle, round-robin, ring-all, fewest-calls)",
        f"{broken}:5: agent 'amy': queues: no queue named 'support'",
        f"callcenter acd: {broken} has 2 error(s)",
    ]
    assert main(["acd", "check", str(tmp_path / "missing.yaml")]) == 1
    assert "no file" in capsys.readouterr().err
