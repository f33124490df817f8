"""Phones register with digest auth against a running endpoint; bindings survive a restart.

Real peers: baresip and pyVoIP register as they would against any PBX; a raw client checks
the challenge/answer round and that unknown users and wrong passwords look alike.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from callcenter.cli import migrate
from callcenter.db.session import create_engine, create_sessionmaker
from callcenter.engine.registration import Registrations
from callcenter.engine.sip_endpoint import EndpointConfig, SipEndpoint
from callcenter.services.subscribers import SqlSubscriberDirectory, add_user
from callcenter.settings import Settings
from callcenter.sip import Response
from callcenter.sip.digest import DigestAccount, DigestClient, make_cnonce, parse_challenge

from .sip_client import UdpClient

REALM = "callcenter.test"
SECRET = b"0123456789abcdef0123456789abcdef"
PASSWORD = "s3cret-phone"


@dataclass
class Pbx:
    engine: AsyncEngine
    endpoint: SipEndpoint

    @property
    def registrations(self) -> Registrations:
        assert self.endpoint.registrations is not None
        return self.endpoint.registrations

    async def restart(self) -> None:
        await self.endpoint.stop()
        self.endpoint = _endpoint(self.engine)
        await self.endpoint.start()


def _endpoint(engine: AsyncEngine) -> SipEndpoint:
    directory = SqlSubscriberDirectory(create_sessionmaker(engine))
    registrations = Registrations(directory, realm=REALM, secret=SECRET)
    return SipEndpoint(EndpointConfig(host="127.0.0.1", port=0), registrations=registrations)


@pytest_asyncio.fixture
async def pbx(tmp_path: Path) -> AsyncIterator[Pbx]:
    settings = Settings(data_dir=tmp_path)
    assert await asyncio.to_thread(migrate, settings) == 0
    engine = create_engine(settings.database_url)
    async with create_sessionmaker(engine).begin() as session:
        for user in ("alice", "bob", "carol"):
            await add_user(session, username=user, role="agent", realm=REALM, sip_password=PASSWORD)
    pbx = Pbx(engine, _endpoint(engine))
    await pbx.endpoint.start()
    yield pbx
    await pbx.endpoint.stop()
    await engine.dispose()


def register(port: int, user: str, local_port: int, cseq: int, auth: str = "") -> bytes:
    return (
        f"REGISTER sip:127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bKreg{user}{cseq};rport\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag=r{user}\r\nTo: <sip:{user}@127.0.0.1>\r\n"
        f"Call-ID: reg-{user}@127.0.0.1\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{local_port}>\r\nExpires: 600\r\n{auth}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def answer(challenge: Response, user: str, password: str, port: int) -> str:
    client = DigestClient([DigestAccount(realm=REALM, username=user, password=password)])
    offered = [parse_challenge(v) for v in challenge.headers.fields("www-authenticate")]
    credentials = client.answer(
        offered,  # type: ignore[arg-type]
        method="REGISTER",
        uri=f"sip:127.0.0.1:{port}",
        host=REALM,
        cnonce=make_cnonce(),
    )
    assert credentials is not None
    return f"Authorization: {credentials.to_header_value()}\r\n"


@pytest.mark.asyncio
async def test_digest_round_and_binding(pbx: Pbx) -> None:
    client = await UdpClient.open()
    port = pbx.endpoint.port
    try:
        first = await client.request(register(port, "alice", client.port, 1), port)
        assert first is not None and first.status == 401
        algorithms = [
            parse_challenge(v).algorithm  # type: ignore[union-attr]
            for v in first.response.headers.fields("www-authenticate")
        ]
        assert algorithms == ["MD5"]
        auth = answer(first.response, "alice", PASSWORD, port)
        ok = await client.request(register(port, "alice", client.port, 2, auth), port)
        assert ok is not None and ok.status == 200, ok.data if ok else None
        (contact,) = ok.response.contacts
        assert f"127.0.0.1:{client.port}" in str(contact)
        (binding,) = pbx.registrations.contacts("sip:alice@127.0.0.1")
        assert binding.source.port == client.port
    finally:
        client.close()


@pytest.mark.asyncio
async def test_sha256_can_be_offered_first(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert await asyncio.to_thread(migrate, settings) == 0
    engine = create_engine(settings.database_url)
    async with create_sessionmaker(engine).begin() as session:
        await add_user(session, username="dave", role="agent", realm=REALM, sip_password=PASSWORD)
    directory = SqlSubscriberDirectory(create_sessionmaker(engine))
    registrations = Registrations(
        directory, realm=REALM, secret=SECRET, algorithms=("SHA-256", "MD5")
    )
    endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=0), registrations=registrations)
    await endpoint.start()
    client = await UdpClient.open()
    try:
        port = endpoint.port
        challenge = await client.request(register(port, "dave", client.port, 1), port)
        assert challenge is not None and challenge.status == 401
        offered = [
            parse_challenge(v).algorithm  # type: ignore[union-attr]
            for v in challenge.response.headers.fields("www-authenticate")
        ]
        assert offered == ["SHA-256", "MD5"]
        auth = answer(challenge.response, "dave", PASSWORD, port)
        assert "SHA-256" in auth
        ok = await client.request(register(port, "dave", client.port, 2, auth), port)
        assert ok is not None and ok.status == 200
    finally:
        client.close()
        await endpoint.stop()
        await engine.dispose()


@pytest.mark.asyncio
async def test_unknown_user_and_wrong_password_look_alike(pbx: Pbx) -> None:
    client = await UdpClient.open()
    port = pbx.endpoint.port
    replies = []
    try:
        for n, (user, password) in enumerate([("bob", "wrong-password"), ("mallory", PASSWORD)]):
            challenge = await client.request(register(port, user, client.port, 10 * n + 1), port)
            assert challenge is not None and challenge.status == 401
            auth = answer(challenge.response, user, password, port)
            reply = await client.request(register(port, user, client.port, 10 * n + 2, auth), port)
            assert reply is not None
            replies.append(reply.response)
    finally:
        client.close()
    wrong, unknown = replies
    assert wrong.status == unknown.status == 401
    assert [n.lower() for n, _ in wrong.headers] == [n.lower() for n, _ in unknown.headers]
    assert pbx.registrations.count == 0


@pytest.mark.asyncio
async def test_bindings_survive_a_restart(pbx: Pbx) -> None:
    client = await UdpClient.open()
    port = pbx.endpoint.port
    try:
        challenge = await client.request(register(port, "carol", client.port, 1), port)
        assert challenge is not None
        auth = answer(challenge.response, "carol", PASSWORD, port)
        ok = await client.request(register(port, "carol", client.port, 2, auth), port)
        assert ok is not None and ok.status == 200
    finally:
        client.close()
    await pbx.restart()
    (binding,) = pbx.registrations.contacts("sip:carol@127.0.0.1")
    assert binding.contact == f"sip:carol@127.0.0.1:{client.port}"


def _free_port(kind: socket.SocketKind = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_for_binding(pbx: Pbx, aor: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pbx.registrations.contacts(aor):
        assert loop.time() < deadline, f"{aor} did not register"
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_baresip_registers(pbx: Pbx, tmp_path: Path) -> None:
    baresip = shutil.which("baresip")
    assert baresip is not None, "baresip not found: run `make test` as root to install it"
    conf = tmp_path / "baresip"
    conf.mkdir()
    control = _free_port(socket.SOCK_STREAM)
    (conf / "config").write_text(
        "poll_method\t\tepoll\n"
        "net_interface\t\t127.0.0.1\n"
        f"sip_listen\t\t127.0.0.1:{_free_port()}\n"
        "audio_player\t\taubridge,x\naudio_source\t\taubridge,x\naudio_alert\t\taubridge,x\n"
        "module_path\t\t/usr/lib/baresip/modules\n"
        "module\t\t\tg711.so\nmodule\t\t\taubridge.so\nmodule\t\t\tctrl_tcp.so\n"
        "module_tmp\t\tuuid.so\nmodule_tmp\t\taccount.so\n"
        f"ctrl_tcp_listen\t\t127.0.0.1:{control}\n"
    )
    (conf / "accounts").write_text(
        f"<sip:alice@127.0.0.1:{pbx.endpoint.port};transport=udp>;auth_pass={PASSWORD};regint=60\n"
    )
    process = subprocess.Popen(
        [baresip, "-f", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await _wait_for_binding(pbx, "sip:alice@127.0.0.1")
        (binding,) = pbx.registrations.contacts("sip:alice@127.0.0.1")
        assert binding.source.transport == "UDP" and binding.expires_at > 0
        # Quitting unregisters (Expires 0): the binding goes.
        _baresip_command(control, "quit")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while pbx.registrations.contacts("sip:alice@127.0.0.1") and loop.time() < deadline:
            await asyncio.sleep(0.1)
        assert not pbx.registrations.contacts("sip:alice@127.0.0.1")
    finally:
        if process.poll() is None:
            process.terminate()
        output = await asyncio.to_thread(process.communicate, None, 10)
        assert process.returncode is not None, output


def _baresip_command(port: int, command: str) -> None:
    """baresip's ctrl_tcp: a JSON command in a netstring."""
    body = json.dumps({"command": command, "params": "", "token": "t"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(str(len(body)).encode() + b":" + body + b",")


@pytest.mark.asyncio
async def test_pyvoip_registers(pbx: Pbx) -> None:
    from pyVoIP.VoIP import PhoneStatus, VoIPPhone

    rtp = _free_port()
    phone = VoIPPhone(
        "127.0.0.1",
        pbx.endpoint.port,
        "bob",
        PASSWORD,
        myIP="127.0.0.1",
        sipPort=_free_port(),
        rtpPortLow=rtp,
        rtpPortHigh=rtp + 10,
    )
    await asyncio.to_thread(phone.start)
    try:
        await _wait_for_binding(pbx, "sip:bob@127.0.0.1")
        assert phone.get_status() == PhoneStatus.REGISTERED
    finally:
        await asyncio.to_thread(phone.stop)
    assert not pbx.registrations.contacts("sip:bob@127.0.0.1")
