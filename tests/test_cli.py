"""The `callcenter` command: migrate in-process, serve as a real subprocess with real signals."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from callcenter import __version__
from callcenter.cli import ALEMBIC_INI, build_parser, main

# The newest migration: every test that migrates expects the database to end there.
HEAD = ScriptDirectory.from_config(Config(ALEMBIC_INI)).get_current_head()

STARTUP_TIMEOUT = 30.0


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Nested and not yet created: migrate must create it.
    path = tmp_path / "nested" / "data"
    for name in ("DATABASE_URL", "RECORDINGS_DIR", "LOG_LEVEL"):
        monkeypatch.delenv(f"CALLCENTER_{name}", raising=False)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(path))
    return path


@pytest.fixture
def migrated(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["migrate"]) == 0
    capsys.readouterr()
    return data_dir


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"callcenter {__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_migrate_creates_the_database_at_head(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    database = data_dir / "callcenter.db"
    assert database.is_file()
    assert capsys.readouterr().out == (
        f"database sqlite+aiosqlite:///{database} at revision {HEAD}\n"
    )
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    connection.close()
    assert rows == [(HEAD,)]


def test_migrate_is_idempotent(migrated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate"]) == 0
    assert capsys.readouterr().out.endswith(f"at revision {HEAD}\n")


def test_migrate_refuses_an_unknown_revision(
    migrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A database migrated by newer code than this checkout.
    with sqlite3.connect(migrated / "callcenter.db") as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'ffff'")
    connection.close()
    assert main(["migrate"]) == 1
    assert "migration failed" in capsys.readouterr().err


# --- serve, as a real process ----------------------------------------------------------------


class Server:
    """`python -m callcenter serve` with its combined output collected line by line."""

    def __init__(self, data_dir: Path, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
        env |= {
            "CALLCENTER_DATA_DIR": str(data_dir),
            "CALLCENTER_LOG_LEVEL": "INFO",
            "CALLCENTER_HTTP_PORT": "0",
        }
        self.process = subprocess.Popen(
            # Port 0: the OS picks a free SIP port (never assume 5060 is free).
            [sys.executable, "-m", "callcenter", "serve", "--sip-port", "0"],
            cwd=cwd,  # not the repo root: alembic.ini must be found from anywhere
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = STARTUP_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"{text!r} not seen; output so far:\n{''.join(self.output)}")

    def finish(self, timeout: float = STARTUP_TIMEOUT) -> tuple[int, str]:
        returncode = self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        assert self.process.stdout is not None
        self.process.stdout.close()
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                self.output.append(line)
        return returncode, "".join(self.output)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.finish()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[list[Server]]:
    servers: list[Server] = []
    yield servers
    for server in servers:
        server.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_serve_runs_until_signalled(
    migrated: Path, tmp_path: Path, server_factory: list[Server], sig: signal.Signals
) -> None:
    server = Server(migrated, cwd=tmp_path)
    server_factory.append(server)

    ready = server.wait_for("ready:")
    database = migrated / "callcenter.db"
    assert f"database: sqlite+aiosqlite:///{database} at revision {HEAD}" in ready
    match = re.search(r"SIP: udp\+tcp 127\.0\.0\.1:(\d+)", ready)
    assert match is not None, ready
    port = int(match.group(1))
    assert port != 0
    assert _options_status(port) == 200
    web = re.search(r"HTTP: http://127\.0\.0\.1:(\d+)/", ready)
    assert web is not None, ready
    # The web app is up in the same process: an API route answers, refusing a stranger.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{web.group(1)}/api/auth/me", timeout=5)
    assert refused.value.code == 401
    assert json.loads(refused.value.read()) == {"detail": "not logged in"}

    time.sleep(0.5)
    assert server.process.poll() is None, "serve exited on its own"

    server.process.send_signal(sig)
    returncode, output = server.finish()
    assert returncode == 0, output
    assert f"received {sig.name}: shutting down" in output
    assert "stopped" in output
    assert "Traceback" not in output


def test_serve_refuses_a_missing_database(
    data_dir: Path, tmp_path: Path, server_factory: list[Server]
) -> None:
    server = Server(data_dir, cwd=tmp_path)
    server_factory.append(server)
    returncode, output = server.finish()
    assert returncode == 1, output
    assert "does not exist" in output
    assert "callcenter migrate" in output and "make run" in output
    assert not (data_dir / "callcenter.db").exists(), "serve must not create the database"
    assert "Traceback" not in output


def test_serve_refuses_an_unmigrated_database(
    data_dir: Path, tmp_path: Path, server_factory: list[Server]
) -> None:
    data_dir.mkdir(parents=True)
    sqlite3.connect(data_dir / "callcenter.db").close()  # an empty database file
    server = Server(data_dir, cwd=tmp_path)
    server_factory.append(server)
    returncode, output = server.finish()
    assert returncode == 1, output
    assert "not migrated" in output and f"needs revision {HEAD}" in output
    assert "callcenter migrate" in output
    assert "Traceback" not in output


def _options_status(port: int) -> int:
    """Ask the running service's SIP port with a real OPTIONS datagram."""
    request = (
        f"OPTIONS sip:pbx@127.0.0.1:{port} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKcli1;rport\r\n"
        "From: <sip:cli@127.0.0.1>;tag=1\r\nTo: <sip:pbx@127.0.0.1>\r\n"
        "Call-ID: cli-options@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(STARTUP_TIMEOUT)
        udp.sendto(request, ("127.0.0.1", port))
        data, _ = udp.recvfrom(65536)
    return int(data.split(b" ", 2)[1])


def test_serve_flags_override_the_environment() -> None:
    parser = build_parser()
    args = parser.parse_args(["serve", "--sip-host", "127.0.0.2", "--sip-port", "0"])
    assert (args.sip_host, args.sip_port, args.data_dir) == ("127.0.0.2", 0, None)
