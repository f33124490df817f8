"""The composition root and command line: `callcenter migrate` and `callcenter serve`.

The only module that sees every layer. It reads `Settings` once, builds the database engine and
the long-lived components (the SIP engine and the web app, once they exist), starts them in
order, and on SIGINT/SIGTERM stops them in reverse order. Nothing below it reads the
environment or installs signal handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import getpass
import logging
import math
import os
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import pydantic
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter import __version__
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.engine.browser import BrowserPhones
from callcenter.engine.media import MediaClock, PromptError, RtpLeg, RtpPortPool
from callcenter.engine.outbound import CallFailed
from callcenter.engine.registration import Registrations
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.engine.trunks import Trunk, Trunks
from callcenter.media import Frame, encode_wav, load_prompt
from callcenter.services.accounts import AccountError, AccountService
from callcenter.services.acd.callbacks import CallbackStore
from callcenter.services.acd.config import AcdConfig, AcdConfigError, load_acd_config
from callcenter.services.acd.queue import QueueTarget, VoicemailTarget
from callcenter.services.acd.runtime import AcdService
from callcenter.services.audit import AuditLog
from callcenter.services.callrecords import CallLog
from callcenter.services.customers import CustomerError, CustomerService
from callcenter.services.demo import DEMO_CUSTOMERS, DEMO_USERS, DemoSeeded, seed_demo
from callcenter.services.desk import AgentDesk
from callcenter.services.ivr import FlowError, FlowRegistry, load_flow, simulate
from callcenter.services.ivr.flow import TEXT_PREFIX, BusinessHours
from callcenter.services.ivr.prompts import PromptLibrary, TtsUnavailable, flow_prompts
from callcenter.services.ivr.session import IvrApplication
from callcenter.services.qa import QaServices
from callcenter.services.recordings import RecordingService
from callcenter.services.recordings.catalogue import RecordingCatalogue
from callcenter.services.recordings.retention import RecordingRetention
from callcenter.services.subscribers import SqlSubscriberDirectory, SubscriberError, add_user
from callcenter.services.supervisor import SupervisorDesk
from callcenter.services.voicemail import VoicemailApplication, VoicemailService
from callcenter.settings import Settings
from callcenter.sip import SipUri, parse_uri
from callcenter.sip.digest import DigestAccount, DigestClient
from callcenter.web.app import create_app
from callcenter.web.deps import WebDeps
from callcenter.web.server import WebServer

log = logging.getLogger("callcenter")

T = TypeVar("T")

# alembic.ini and migrations/ sit at the root of the source tree, next to the package; `make
# install` installs in editable mode so they are found from any working directory.
ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# IVR content (flows/, prompts/), relative to where `serve` runs, like `ivr check`'s default.


class StartupError(Exception):
    """The service must not start; the message tells the operator what to do."""


class Service(Protocol):
    """A long-lived component owned by `serve` (DESIGN convention 8).

    `start()` binds its sockets and spawns its tasks, raising if it cannot; `stop()` cancels and
    awaits everything it started. `listening()` is its line in the startup summary, e.g.
    "SIP: udp 0.0.0.0:5060", read after `start()` so ephemeral ports are real.
    """

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def listening(self) -> str: ...


def build_services(settings: Settings, engine: AsyncEngine) -> list[Service]:
    """The components `serve` runs, in start order (stopped in reverse): SIP and media, call
    records, voicemail, the IVR, the ACD, the agent desk, the supervisor desk, and the web app
    last (it serves what the others hold)."""
    registrations = Registrations(
        SqlSubscriberDirectory(create_sessionmaker(engine)),
        realm=settings.sip_realm,
        secret=digest_secret(settings),
        algorithms=settings.sip_digest_algorithms,
    )
    config = EndpointConfig(
        host=settings.sip_host,
        port=settings.sip_port,
        media_timeout=settings.media_timeout,
        ring_timeout=settings.ring_timeout,
        max_transactions=settings.sip_max_transactions,
        hold_music=str(settings.hold_music) if settings.hold_music else None,
    )
    media = (
        RtpPortPool(settings.sip_host, settings.rtp_port_min, settings.rtp_port_max),
        MediaClock(),
    )
    trunks = Trunks(
        [
            Trunk.build(t.name, t.peers, numbers=t.numbers, outbound=t.outbound)
            for t in settings.trunks
        ]
    )
    endpoint = SipEndpoint(config, registrations=registrations, media=media, trunks=trunks)
    services: list[Service] = [endpoint]
    sessions = create_sessionmaker(engine)
    web = WebDeps(
        accounts=AccountService(sessions),
        secret_key=settings.secret_key or session_secret(settings),
        https_only=settings.https_only,
    )
    if endpoint.router is None or endpoint.calls is None:
        services.append(_web_server(settings, web))
        return services
    library = PromptLibrary(
        settings.ivr_dir / "prompts",
        settings.data_dir / "prompt-cache",
        voice=settings.tts_voice,
    )
    call_log = CallLog(sessions)
    voicemail = VoicemailService(endpoint.calls, sessions, settings.recordings_dir, library)
    acd_file = settings.ivr_dir / "queues.yaml"
    try:
        acd_config = load_acd_config(acd_file)
    except AcdConfigError as exc:
        raise StartupError(f"{exc}\nfix {acd_file} (check it with `callcenter acd check`)") from exc
    phones = BrowserPhones()
    recordings = RecordingService(sessions, settings.recordings_dir)
    customers = CustomerService(sessions, default_region=settings.default_region)
    acd = AcdService(
        acd_config,
        calls=endpoint.calls,
        bridges=endpoint.bridges,
        registrations=registrations,
        trunks=trunks,
        library=library,
        customers=customers,
        call_log=call_log,
        callbacks=CallbackStore(sessions),
        voicemail=voicemail,
        hold_music=settings.hold_music,
        login_on_register=settings.acd_login_on_register,
        phones=phones,
        recordings=recordings,
    )
    audit = AuditLog(sessions)
    desk = AgentDesk(
        acd,
        phones=phones,
        customers=customers,
        call_log=call_log,
        sessions=sessions,
        audit=audit,
        alone=settings.conference_alone,
    )
    acd.observer = desk
    supervisor = SupervisorDesk(desk, audit=audit)
    # The IVR takes calls for `ivr` (the default flow) and `flow:NAME` (a trunk number
    # mapped to it); its queue, voicemail and transfer nodes hand the call to the ACD. The
    # engine knows them only as routing.CallApplications.
    ivr_app = IvrApplication(
        endpoint.calls,
        FlowRegistry(settings.ivr_dir / "flows"),
        library,
        hold_music=settings.hold_music,
        on_queued=acd.on_queued,
        on_voicemail=acd.on_voicemail,
        on_transfer=acd.on_transfer,
        call_log=call_log,
        recordings=recordings if settings.record_ivr else None,
        audit=audit,
    )
    endpoint.router.applications["ivr"] = ivr_app
    endpoint.router.applications["flow"] = ivr_app
    endpoint.router.applications["voicemail"] = VoicemailApplication(voicemail)
    retention = RecordingRetention(
        sessions,
        settings.recordings_dir,
        audit,
        retention_days=acd_config.retention_days,
        default_days=settings.recording_retention_days,
    )
    services.extend([call_log, voicemail, recordings, retention, ivr_app, acd, desk, supervisor])
    catalogue = RecordingCatalogue(sessions, settings.recordings_dir)
    web = replace(
        web,
        desk=desk,
        supervisor=supervisor,
        recordings=catalogue,
        audit=audit,
        qa=QaServices.over(sessions),
        retention=retention,
    )
    services.append(_web_server(settings, web))
    return services


def _web_server(settings: Settings, deps: WebDeps) -> WebServer:
    return WebServer(create_app(deps), host=settings.http_host, port=settings.http_port)


def session_secret(settings: Settings) -> str:
    """The key that signs session cookies, kept in the data directory so that sessions
    survive a restart; created on first use, readable by us only."""
    path = settings.data_dir / "web-session.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as key_file:
            key_file.write(secrets.token_urlsafe(48))
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise StartupError(f"{path} holds fewer than 32 characters: remove it to make a new key")
    return secret


def digest_secret(settings: Settings) -> bytes:
    """The key that signs digest nonces, kept in the data directory so that nonces handed out
    before a restart stay valid after it. Created on first use, readable by us only."""
    path = settings.data_dir / "sip-digest.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as key_file:
            key_file.write(secrets.token_bytes(32))
    secret = path.read_bytes()
    if len(secret) < 16:
        raise StartupError(f"{path} holds fewer than 16 bytes: remove it to make a new key")
    return secret


# --- plumbing shared by the commands -------------------------------------------------------


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def alembic_config(settings: Settings) -> Config:
    if not ALEMBIC_INI.is_file():
        raise StartupError(
            f"{ALEMBIC_INI} not found: run callcenter from its source tree "
            "(`make install`, an editable install), where alembic.ini and migrations/ live"
        )
    config = Config(ALEMBIC_INI)
    # migrations/env.py reads the URL from these settings rather than from the environment,
    # and leaves logging alone: ours is already configured.
    config.attributes["settings"] = settings
    config.attributes["configure_logger"] = False
    return config


def display_url(settings: Settings) -> str:
    # Never print a PostgreSQL password into logs.
    return make_url(settings.database_url).render_as_string(hide_password=True)


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file, or None for other backends and in-memory databases."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


async def database_heads(engine: AsyncEngine) -> tuple[str, ...]:
    """The Alembic revision(s) the database is at; () when it was never migrated."""

    def heads(sync: Connection) -> tuple[str, ...]:
        # Reading the revision is not a migration: keep alembic's "Context impl SQLiteImpl"
        # lines out of the log.
        migration_log = logging.getLogger("alembic.runtime.migration")
        level = migration_log.level
        migration_log.setLevel(logging.WARNING)
        try:
            return MigrationContext.configure(sync).get_current_heads()
        finally:
            migration_log.setLevel(level)

    async with engine.connect() as connection:
        return await connection.run_sync(heads)


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `main()` on uvloop when it is installed, else on the default asyncio loop."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


# --- callcenter migrate --------------------------------------------------------------------


def migrate(settings: Settings) -> int:
    configure_logging(settings)
    config = alembic_config(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = sqlite_path(settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        command.upgrade(config, "head")
    except CommandError as exc:
        # E.g. the database is at a revision this checkout does not have (newer code ran).
        raise StartupError(f"migration failed: {exc}") from exc

    async def reached() -> tuple[str, ...]:
        engine = create_engine(settings.database_url)
        try:
            return await database_heads(engine)
        finally:
            await engine.dispose()

    heads = run_async(reached)
    print(f"database {display_url(settings)} at revision {', '.join(heads) or '<none>'}")
    return 0


# --- callcenter serve ----------------------------------------------------------------------


def serve(settings: Settings) -> int:
    configure_logging(settings)
    return run_async(lambda: _serve(settings))


async def _serve(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig)
        stopping.set()

    # Installed before anything starts, so a signal during start-up still shuts down cleanly
    # (once start-up has finished) instead of killing the process half-way.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        log.info(
            "callcenter %s starting (pid %d, event loop %s.%s)",
            __version__,
            os.getpid(),
            type(loop).__module__,
            type(loop).__name__,
        )
        async with contextlib.AsyncExitStack() as stack:
            engine = create_engine(settings.database_url)
            stack.push_async_callback(engine.dispose)
            revision = await _check_database(settings, engine)

            summary = [f"database: {display_url(settings)} at revision {revision}"]
            for service in build_services(settings, engine):
                try:
                    await service.start()
                except OSError as exc:  # a port taken, an address not ours
                    raise StartupError(f"{type(service).__name__} cannot start: {exc}") from exc
                stack.push_async_callback(service.stop)
                summary.append(service.listening())
            # What exists at startup (modules, tables, the hold music) lives for the whole
            # run: keep it out of the cycle collector's full passes, which stall the loop.
            gc.collect()
            gc.freeze()
            log.info("ready: %s", "; ".join(summary))
            log.info("running until SIGINT (Ctrl-C) or SIGTERM")

            await stopping.wait()
            log.info("received %s: shutting down", received[0].name)
        log.info("stopped")
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _check_database(settings: Settings, engine: AsyncEngine) -> str:
    """The database's revision if it is the code's head; otherwise refuse to start."""
    url = display_url(settings)
    advice = "run `make run` (which migrates first) or `callcenter migrate`"
    path = sqlite_path(settings)
    # Connecting would create an empty SQLite file; say what is wrong instead.
    if path is not None and not path.exists():
        raise StartupError(f"database {url} does not exist: {advice}")
    expected = ScriptDirectory.from_config(alembic_config(settings)).get_heads()
    try:
        current = await database_heads(engine)
    except (SQLAlchemyError, OSError) as exc:
        raise StartupError(f"cannot open database {url}: {exc}") from exc
    if set(current) != set(expected):
        found = ", ".join(current) or "no revision (not migrated)"
        raise StartupError(
            f"database {url} is at {found}, but this code needs revision "
            f"{', '.join(expected)}: {advice}"
        )
    return ", ".join(current)


# --- callcenter user add -------------------------------------------------------------------


def user_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create a user; with --sip-password it may register SIP phones."""
    configure_logging(settings)

    async def create() -> None:
        engine = create_engine(settings.database_url)
        try:
            await _check_database(settings, engine)
            async with create_sessionmaker(engine).begin() as session:
                await add_user(
                    session,
                    username=args.username,
                    role=args.role,
                    realm=settings.sip_realm,
                    sip_password=args.sip_password,
                    display_name=args.display_name or "",
                )
        finally:
            await engine.dispose()

    try:
        run_async(create)
    except SubscriberError as exc:
        raise StartupError(str(exc)) from exc
    sip = f", SIP realm {settings.sip_realm}" if args.sip_password else ""
    print(f"user {args.username} ({args.role}{sip}) created")
    return 0


# --- callcenter user passwd ----------------------------------------------------------------

# Read by `user passwd` so a script can set a password without a terminal (and without putting
# it on the command line, where `ps` shows it to everyone).
NEW_PASSWORD_VARIABLE = "CALLCENTER_NEW_PASSWORD"


def user_passwd(settings: Settings, args: argparse.Namespace) -> int:
    """Set a user's web password (stored as argon2id only); its web sessions end."""
    configure_logging(settings)
    password = os.environ.get(NEW_PASSWORD_VARIABLE)
    if password is None:
        if not sys.stdin.isatty():
            raise StartupError(f"no terminal to ask for the password: set {NEW_PASSWORD_VARIABLE}")
        password = getpass.getpass(f"new web password for {args.username}: ")
        if getpass.getpass("the same again: ") != password:
            raise StartupError("the two passwords differ: nothing changed")

    async def change() -> None:
        engine = create_engine(settings.database_url)
        try:
            await _check_database(settings, engine)
            await AccountService(create_sessionmaker(engine)).set_password(args.username, password)
        finally:
            await engine.dispose()

    try:
        run_async(change)
    except AccountError as exc:
        raise StartupError(str(exc)) from exc
    print(f"user {args.username}: web password set")
    return 0


# --- callcenter call ----------------------------------------------------------------------


class _CallMedia:
    """What the test phone plays and records, one 20 ms frame per tick."""

    def __init__(self, leg: RtpLeg, play: Frame | None, digits: str, digits_at: int = 25) -> None:
        self.leg = leg
        self.digits_at = max(1, digits_at)  # in ticks
        self.play = play if play is not None else np.zeros(0, np.int16)
        self.digits = digits
        self.recorded: list[Frame] = []
        self.done = asyncio.Event()

    def tick(self, n: int) -> None:
        heard = self.leg.read_frame()
        self.recorded.append(heard.copy() if heard is not None else np.zeros(160, np.int16))
        start = n * 160
        chunk = self.play[start : start + 160]
        if len(chunk) < 160:
            chunk = np.concatenate([chunk, np.zeros(160 - len(chunk), np.int16)])
        self.leg.write_frame(chunk)
        if n == self.digits_at:  # by default half a second in, once media flows both ways
            for digit in self.digits:
                self.leg.send_digit(digit)
        if start >= len(self.play) and n >= self.digits_at + 10 * len(self.digits) + 25:
            self.done.set()


def _credentials(settings: Settings, user: str | None) -> DigestClient | None:
    if user is None:
        return None
    password = os.environ.get("CALLCENTER_CALL_PASSWORD")
    if not password:
        raise StartupError("--user needs the password in CALLCENTER_CALL_PASSWORD")
    return DigestClient([DigestAccount(realm=settings.sip_realm, username=user, password=password)])


def call(settings: Settings, args: argparse.Namespace) -> int:
    """Place one call: the engine as a UAC, a test phone for people and for our tests."""
    configure_logging(settings)
    target = parse_uri(args.uri)
    if not isinstance(target, SipUri):
        raise StartupError(f"{args.uri}: a sip: URI is needed")
    play = load_prompt(Path(args.play).read_bytes()) if args.play else None
    return run_async(lambda: _call(settings, args, target, play))


async def _call(
    settings: Settings, args: argparse.Namespace, target: SipUri, play: Frame | None
) -> int:
    host = args.local_host
    pool = RtpPortPool(host, settings.rtp_port_min, settings.rtp_port_max)
    clock = MediaClock()
    endpoint = SipEndpoint(EndpointConfig(host=host, port=0), media=(pool, clock))
    await endpoint.start()
    try:
        assert endpoint.outbound is not None
        try:
            placed = await asyncio.wait_for(
                endpoint.outbound.dial(
                    target,
                    caller=args.user or "callcenter",
                    credentials=_credentials(settings, args.user),
                ),
                args.timeout,
            )
        except CallFailed as exc:
            print(f"call failed: {exc}", file=sys.stderr)
            return 1
        except TimeoutError:
            print(f"call failed: no answer in {args.timeout:g} s", file=sys.stderr)
            return 1
        digits_at = round(args.dtmf_at / 0.02) if math.isfinite(args.dtmf_at) else 25
        media = _CallMedia(placed.leg, play, args.dtmf or "", digits_at)
        clock.add(media)
        # With a file to play, the call ends when it has been played; without one (a caller
        # who presses keys and listens: an IVR, a queue) it lasts --duration.
        waits = [asyncio.ensure_future(placed.ended.wait())]
        if play is not None:
            waits.append(asyncio.ensure_future(media.done.wait()))
        await asyncio.wait(waits, timeout=args.duration, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        clock.remove(media)
        hung_up_by_peer = placed.ended.is_set()
        await endpoint.outbound.hang_up(placed)
        seconds = len(media.recorded) * 0.02
        if args.record:
            audio = np.concatenate(media.recorded) if media.recorded else np.zeros(0, np.int16)
            Path(args.record).write_bytes(encode_wav(audio, 8000, 1))
        who = "the other side" if hung_up_by_peer else "us"
        print(f"answered {placed.status}; {seconds:.1f} s of audio; hung up by {who}")
        return 0
    finally:
        await endpoint.stop()


# --- callcenter ivr -------------------------------------------------------------------------


def ivr(settings: Settings, args: argparse.Namespace) -> int:
    """`ivr check`: validate every flow; `ivr simulate`: print the path a caller would take."""
    flows: Path = args.flows
    if args.ivr_command == "check":
        reloaded = FlowRegistry(flows).reload()
        for problem in reloaded.problems:
            print(problem, file=sys.stderr)
        if not reloaded.ok or not reloaded.loaded:
            raise StartupError(f"{len(reloaded.failed)} flow(s) in {flows} have errors")
        print(f"{len(reloaded.loaded)} flow(s) OK in {flows}: {', '.join(reloaded.loaded)}")
        return 0
    path = Path(args.flow)
    if path.suffix not in (".yaml", ".yml"):
        path = flows / f"{args.flow}.yaml"
    if not path.is_file():
        raise StartupError(f"no flow {path} (flows are *.yaml files in {flows}; see --flows)")
    try:
        flow, warnings = load_flow(path)
    except FlowError as exc:
        raise StartupError(f"{path} has errors:\n{exc}") from exc
    for problem in warnings:
        print(problem, file=sys.stderr)
    # A time without an offset is the call center's wall clock: the flow's (first) business
    # hours timezone.
    zones = [n.timezone for n in flow.nodes.values() if isinstance(n, BusinessHours)]
    zone = zones[0] if zones else ZoneInfo("UTC")
    try:
        at = dt.datetime.fromisoformat(args.at) if args.at else dt.datetime.now(zone)
    except ValueError as exc:
        raise StartupError(f"--at {args.at!r}: expected e.g. 2026-11-24 10:00") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone)
    try:
        result = simulate(flow, args.digits, at)
    except ValueError as exc:
        raise StartupError(f"--digits: {exc}") from exc
    print(f"flow {flow.name} ({path}) at {at:%a %Y-%m-%d %H:%M %Z}, digits {args.digits!r}")
    for line in result.lines:
        print(line)
    return 0


def ivr_render(settings: Settings, args: argparse.Namespace) -> int:
    """`ivr render`: speak every `text:` prompt of every flow into the prompt cache now, so
    that `serve` (and the first caller) finds them ready; what is cached already is kept."""
    configure_logging(settings)
    ivr_dir: Path = args.ivr_dir if args.ivr_dir is not None else settings.ivr_dir
    registry = FlowRegistry(ivr_dir / "flows")
    reloaded = registry.reload()
    for problem in reloaded.problems:
        print(problem, file=sys.stderr)
    texts = list(
        dict.fromkeys(
            prompt[len(TEXT_PREFIX) :]
            for name in registry.names()
            for prompt in flow_prompts(registry.get(name))
            if prompt.startswith(TEXT_PREFIX)
        )
    )
    cache_dir = settings.data_dir / "prompt-cache"
    library = PromptLibrary(ivr_dir / "prompts", cache_dir, voice=settings.tts_voice)

    async def render_all() -> list[Path | BaseException]:
        # One espeak-ng per core at a time; a flow may have many prompts.
        slots = asyncio.Semaphore(os.cpu_count() or 1)

        async def render(text: str) -> Path:
            async with slots:
                return await library.render(text)

        return await asyncio.gather(*(render(t) for t in texts), return_exceptions=True)

    results = run_async(render_all)
    failures = [r for r in results if isinstance(r, BaseException)]
    if any(isinstance(f, TtsUnavailable) for f in failures):
        raise StartupError(
            f"espeak-ng is not installed, so {len(failures)} text prompt(s) cannot be "
            "rendered: install it (apt-get install espeak-ng, as root), then run this again"
        )
    for failure in failures:
        if not isinstance(failure, PromptError):
            raise failure
        print(failure, file=sys.stderr)
    cached = len(texts) - library.renders
    print(
        f"text prompts of {len(registry.names())} flow(s) in {ivr_dir / 'flows'}: "
        f"rendered {library.renders - len(failures)}, cached {cached} (in {cache_dir})"
    )
    if failures:
        raise StartupError(f"{len(failures)} prompt(s) could not be rendered")
    if not reloaded.ok:
        raise StartupError(f"{len(reloaded.failed)} flow(s) have errors: `callcenter ivr check`")
    return 0


# --- callcenter demo seed ------------------------------------------------------------------


def demo(settings: Settings, args: argparse.Namespace) -> int:
    """`demo seed`: the demo's agents, supervisor (with SIP passwords) and customers; what
    exists already is left alone, so it can run on every `make run`."""
    configure_logging(settings)

    async def seed() -> DemoSeeded:
        engine = create_engine(settings.database_url)
        try:
            await _check_database(settings, engine)
            return await seed_demo(
                create_sessionmaker(engine),
                realm=settings.sip_realm,
                default_region=settings.default_region,
            )
        finally:
            await engine.dispose()

    try:
        seeded = run_async(seed)
    except (SubscriberError, CustomerError) as exc:
        raise StartupError(str(exc)) from exc
    users = {user.username: user for user in DEMO_USERS}
    for name in seeded.users_created:
        user = users[name]
        print(
            f"user {name} ({user.role}) created: password {user.sip_password} (web page and SIP), "
            f"realm {settings.sip_realm}"
        )
    customers = {customer.name: customer for customer in DEMO_CUSTOMERS}
    for name in seeded.customers_created:
        customer = customers[name]
        print(f"customer {name} ({customer.tier}, {', '.join(customer.phones)}) created")
    there = len(seeded.users_existing), len(seeded.customers_existing)
    if not seeded.changed:
        print(f"demo already seeded ({there[0]} users, {there[1]} customers): nothing changed")
    else:
        print(
            f"demo seeded: {len(seeded.users_created)} user(s) and "
            f"{len(seeded.customers_created)} customer(s) created, "
            f"{there[0]} user(s) and {there[1]} customer(s) already there"
        )
    return 0


# --- callcenter acd check ------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:g} s"


def _describe(config: AcdConfig) -> list[str]:
    lines = []
    for queue in config.queues.values():
        skills = [f"{k}>={v}" for k, v in queue.required_skills.items() if ":" not in k]
        agents = [a.username for a in config.agents.values() if queue.name in a.queues]
        parts = [
            queue.strategy.value,
            *([f"skills {' '.join(skills)}"] if skills else []),
            f"ring {_seconds(queue.ring_timeout_seconds)}",
            f"wrap-up {_seconds(queue.wrap_up_seconds)}",
            f"announce every {_seconds(queue.announcement_interval_seconds)}",
        ]
        overflow = queue.overflow
        if isinstance(overflow, QueueTarget):
            parts.append(f"after {_seconds(queue.max_wait_seconds)} to queue {overflow.queue}")
        elif isinstance(overflow, VoicemailTarget):
            parts.append(f"after {_seconds(queue.max_wait_seconds)} to voicemail {overflow.box}")
        if queue.name in config.callback_queues:
            parts.append("callback")
        lines.append(
            f"queue {queue.name}: {', '.join(parts)}; agents {', '.join(agents) or 'none'}"
        )
    for agent in config.agents.values():
        skills = [f"{k} {v}" for k, v in agent.skills.items() if ":" not in k]
        lines.append(
            f"agent {agent.username}: queues {', '.join(agent.queues) or 'none'}; "
            f"skills {', '.join(skills) or 'none'}; wrap-up {_seconds(agent.wrap_up_seconds)}"
        )
    return lines


def acd(settings: Settings, args: argparse.Namespace) -> int:
    """`acd check [FILE]`: validate the queues file; print its queues and agents."""
    path: Path = args.file if args.file is not None else settings.ivr_dir / "queues.yaml"
    if not path.is_file():
        raise StartupError(f"no file {path} (without it there are no queues)")
    try:
        config = load_acd_config(path)
    except AcdConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        raise StartupError(f"{path} has {len(exc.problems)} error(s)") from exc
    print(f"{path}: {len(config.queues)} queue(s), {len(config.agents)} agent(s) OK")
    for line in _describe(config):
        print(f"  {line}")
    return 0


# --- entry point ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcenter",
        description="Call-center telephony service. Configured by CALLCENTER_* variables.",
    )
    parser.add_argument("--version", action="version", version=f"callcenter {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "migrate", help="create or upgrade the database to the latest schema (Alembic head)"
    ).set_defaults(run=lambda settings, _args: migrate(settings))
    user_parser = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    add_parser = user_parser.add_parser("add", help="create a user")
    add_parser.add_argument("username")
    add_parser.add_argument("--role", default="agent", help="agent, supervisor, qa or admin")
    add_parser.add_argument("--display-name")
    add_parser.add_argument(
        "--sip-password", help="lets the user register SIP phones (stored as digest HA1 only)"
    )
    add_parser.set_defaults(run=user_add)
    passwd_parser = user_parser.add_parser(
        "passwd",
        help=f"set a user's web password (from {NEW_PASSWORD_VARIABLE}, else asked twice)",
    )
    passwd_parser.add_argument("username")
    passwd_parser.set_defaults(run=user_passwd)
    call_parser = commands.add_parser("call", help="place a test call (the engine as a UAC)")
    call_parser.add_argument("uri", help="e.g. sip:echo@127.0.0.1:5060")
    call_parser.add_argument("--play", help="a WAV file to send (any rate; sent as 8 kHz)")
    call_parser.add_argument("--record", help="write what the other side sends to this WAV")
    call_parser.add_argument("--dtmf", help="RFC 4733 digits to send (see --dtmf-at)")
    call_parser.add_argument(
        "--dtmf-at", type=float, default=0.5, help="seconds after the answer to send them"
    )
    call_parser.add_argument("--duration", type=float, default=30.0, help="hang up after (s)")
    call_parser.add_argument("--timeout", type=float, default=32.0, help="give up ringing (s)")
    call_parser.add_argument("--local-host", default="127.0.0.1", help="our SIP/RTP address")
    call_parser.add_argument(
        "--user",
        help="call as this user, answering a digest challenge (password from the "
        "CALLCENTER_CALL_PASSWORD variable, so it stays out of `ps`)",
    )
    call_parser.set_defaults(run=call)
    ivr_parser = commands.add_parser("ivr", help="check IVR flows, simulate a caller")
    ivr_parser.add_argument(
        "--flows", type=Path, default=Path("ivr/flows"), help="the flows directory"
    )
    ivr_commands = ivr_parser.add_subparsers(dest="ivr_command", required=True, metavar="ACTION")
    ivr_commands.add_parser("check", help="validate every flow; exit 1 with the errors")
    simulate_parser = ivr_commands.add_parser(
        "simulate", help="print the path a caller takes for given digits and time"
    )
    simulate_parser.add_argument("flow", help="a flow name in the flows directory, or a path")
    simulate_parser.add_argument("--digits", default="", help="what the caller presses, e.g. 2")
    simulate_parser.add_argument(
        "--at", help='the time of the call, e.g. "2026-11-24 10:00" (the flow\'s timezone)'
    )
    ivr_parser.set_defaults(run=ivr)
    render_parser = ivr_commands.add_parser(
        "render", help="speak every text: prompt of every flow into the prompt cache now"
    )
    render_parser.add_argument(
        "--ivr-dir", type=Path, help="flows/ and prompts/ live here (CALLCENTER_IVR_DIR)"
    )
    render_parser.set_defaults(run=ivr_render)
    demo_parser = commands.add_parser("demo", help="the demo that `make run` starts with")
    demo_commands = demo_parser.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    demo_commands.add_parser(
        "seed", help="create the demo agents, supervisor and customers (idempotent)"
    ).set_defaults(run=demo)
    acd_parser = commands.add_parser("acd", help="queues and agents")
    acd_commands = acd_parser.add_subparsers(dest="acd_command", required=True, metavar="ACTION")
    check_parser = acd_commands.add_parser(
        "check", help="validate the queues file; exit 1 with the errors"
    )
    check_parser.add_argument(
        "file", nargs="?", type=Path, help="default: <CALLCENTER_IVR_DIR>/queues.yaml"
    )
    check_parser.set_defaults(run=acd)
    serve_parser = commands.add_parser(
        "serve", help="run the service until SIGINT or SIGTERM (the database must be migrated)"
    )
    serve_parser.set_defaults(run=lambda settings, _args: serve(settings))
    # Flags override the CALLCENTER_* variables, so scripts can start isolated instances.
    serve_parser.add_argument("--sip-host", help="SIP listen address (CALLCENTER_SIP_HOST)")
    serve_parser.add_argument(
        "--sip-port", type=int, help="SIP UDP+TCP port, 0 for any (CALLCENTER_SIP_PORT)"
    )
    serve_parser.add_argument(
        "--http-port", type=int, help="web app and API port (CALLCENTER_HTTP_PORT)"
    )
    serve_parser.add_argument(
        "--data-dir", help="database, recordings and logs live here (CALLCENTER_DATA_DIR)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name in ("sip_host", "sip_port", "http_port", "data_dir")
        if (value := getattr(args, name, None)) is not None
    }
    try:
        settings = Settings(**overrides)
    except pydantic.ValidationError as exc:
        print(f"callcenter: invalid configuration (CALLCENTER_* variables): {exc}", file=sys.stderr)
        return 2
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    try:
        return run(settings, args)
    except StartupError as exc:
        print(f"callcenter {args.command}: {exc}", file=sys.stderr)
        return 1
