"""Packets on the wire for the media tests: a pcap writer for SIPp's `play_pcap_audio`, and a
loopback capture that watches the real datagrams between two UDP ports.

SIPp 3.6 (`prepare_pcap.c`, `send_packets.c`) reads Ethernet (or Linux cooked) frames with
IPv4/IPv6 and UDP, keeps only the UDP header and payload, and paces the packets by their
capture timestamps. The addresses and ports written here are ignored: it sends from the
`[media_ip]` of the scenario and the `[media_port]` of the SDP line it was written on, to the
address and port of the answer's `c=`/`m=audio` lines (a stream whose destination port is N
above the lowest in the file goes N above those), over a raw socket, so it needs root. The
RTP header and payload are sent as written: the SSRC, sequence numbers, timestamps and
payload type are ours. SIPp 3.6.1 looks for the file next to the scenario first, then in
its working directory.

The capture is an AF_PACKET socket on `lo` (root, or CAP_NET_RAW): it sees every datagram the
kernel carries between the two ports, whoever sent it, so what it reports is independent of
both the engine's and SIPp's own accounting.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.media import PCM, SAMPLES_PER_FRAME, ToneGenerator, ulaw_decode, ulaw_encode
from callcenter.rtp import build_rtp

_PCAP_HEADER = struct.Struct("<IHHiIII")  # magic, version 2.4, zone, sigfigs, snaplen, linktype
_RECORD_HEADER = struct.Struct("<IIII")  # seconds, microseconds, captured length, length
_LINKTYPE_ETHERNET = 1
_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
_PACKET_OUTGOING = 4


def rtp_tone(
    frequency: float,
    seconds: float,
    *,
    level_dbfs: float = -10.0,
    ssrc: int = 0x5EED0700,
    first_seq: int = 1000,
    first_ts: int = 160_000,
) -> list[bytes]:
    """`seconds` of a PCMU tone as RTP packets of 20 ms (the first one with the marker)."""
    generator = ToneGenerator((frequency,), level_dbfs)
    return [
        build_rtp(
            0,
            (first_seq + n) & 0xFFFF,
            (first_ts + n * SAMPLES_PER_FRAME) & 0xFFFF_FFFF,
            ssrc,
            ulaw_encode(generator.next_frame()),
            marker=n == 0,
        )
        for n in range(round(seconds / 0.02))
    ]


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = int(np.frombuffer(data, dtype=">u2").sum(dtype=np.uint64))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int) -> bytes:
    """Ethernet II + IPv4 (no options) + UDP around `payload`, with correct checksums."""
    src_ip, dst_ip = socket.inet_aton(src[0]), socket.inet_aton(dst[0])
    udp_length = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, socket.IPPROTO_UDP, udp_length)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_length, 0) + payload
    udp_sum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0xB8, 20 + udp_length, ident, 0x4000, 64, socket.IPPROTO_UDP, 0,
        src_ip, dst_ip,
    )  # fmt: skip
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    ethernet = bytes.fromhex("020000000002020000000001") + struct.pack("!H", _ETH_P_IP)
    return ethernet + ip + udp


def write_pcap(
    path: Path,
    datagrams: Iterable[bytes],
    *,
    interval: float = 0.02,
    src: tuple[str, int] = ("192.0.2.1", 40000),
    dst: tuple[str, int] = ("192.0.2.2", 50000),
    start: float = 1_700_000_000.0,
) -> None:
    """A classic (microsecond) little-endian pcap of `datagrams` as UDP from `src` to `dst`,
    one every `interval` seconds. SIPp replaces the addresses and ports (see above)."""
    records = [_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET)]
    for n, payload in enumerate(datagrams):
        frame = _frame(payload, src, dst, n & 0xFFFF)
        at = round((start + n * interval) * 1_000_000)
        records.append(_RECORD_HEADER.pack(at // 1_000_000, at % 1_000_000, len(frame), len(frame)))
        records.append(frame)
    path.write_bytes(b"".join(records))


def read_pcap(path: Path) -> Iterator[tuple[float, bytes]]:
    """(timestamp, UDP payload) of each IPv4/UDP packet of an Ethernet pcap (ours or SIPp's)."""
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = _PCAP_HEADER.unpack_from(data)
    assert magic == 0xA1B2C3D4 and linktype == _LINKTYPE_ETHERNET, (hex(magic), linktype)
    offset = _PCAP_HEADER.size
    while offset < len(data):
        seconds, micros, length, _ = _RECORD_HEADER.unpack_from(data, offset)
        offset += _RECORD_HEADER.size
        parsed = _udp(data[offset + 14 : offset + length])
        offset += length
        if parsed is not None:
            yield seconds + micros / 1e6, parsed[2]


def _udp(ip: bytes) -> tuple[int, int, bytes] | None:
    """(source port, destination port, payload) of an IPv4/UDP packet, else None."""
    if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
        return None
    header = (ip[0] & 0x0F) * 4
    sport, dport, length = struct.unpack_from("!HHH", ip, header)
    return sport, dport, ip[header + 8 : header + length]


def raw_sockets_allowed() -> bool:
    """Whether this process may open raw sockets (root or CAP_NET_RAW), as SIPp's
    `play_pcap_audio` and `LoopbackCapture` must."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP).close()
    except PermissionError:
        return False
    return True


RAW_SOCKETS_NEEDED = (
    "this test needs raw sockets (root or CAP_NET_RAW): SIPp's play_pcap_audio sends over one "
    f"and the loopback capture reads one; running as uid {os.geteuid()}. CI runs `make test` "
    "as root; run it as root here too."
)


@dataclass(frozen=True, slots=True)
class Datagram:
    at: float  # loop time when read
    sport: int
    dport: int
    payload: bytes


class LoopbackCapture:
    """Every UDP datagram on `lo` from or to `port`, as the kernel delivered it.

    `async with LoopbackCapture(port) as capture:` then `capture.between(a, b)`. Each datagram on
    lo passes the tap twice (sent, then received); only the received copy is kept.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.datagrams: list[Datagram] = []
        self._sock: socket.socket | None = None

    async def __aenter__(self) -> LoopbackCapture:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind(("lo", 0))
            sock.setblocking(False)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._read)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return self

    async def __aexit__(self, *exc: object) -> None:
        sock = self._sock
        if sock is not None:
            self._read()  # what is still queued
            asyncio.get_running_loop().remove_reader(sock.fileno())
            self._sock = None
            sock.close()

    def _read(self) -> None:
        sock = self._sock
        assert sock is not None
        now = asyncio.get_running_loop().time()
        while True:
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                return
            self._keep(frame, address, now)

    def _keep(self, frame: bytes, address: Any, now: float) -> None:
        if address[2] == _PACKET_OUTGOING or frame[12:14] != b"\x08\x00":
            return
        parsed = _udp(frame[14:])
        if parsed is not None and self.port in parsed[:2]:
            self.datagrams.append(Datagram(now, *parsed))

    def between(self, sport: int, dport: int) -> list[Datagram]:
        return [d for d in self.datagrams if d.sport == sport and d.dport == dport]

    def peers(self) -> set[int]:
        """The other ports that exchanged datagrams with `port`."""
        return {d.dport if d.sport == self.port else d.sport for d in self.datagrams}


def pcmu_audio(datagrams: Iterable[Datagram]) -> PCM:
    """The PCMU (payload type 0) audio of RTP datagrams, decoded, in arrival order. The header
    is read here by hand (RFC 3550 §5.1), not by the engine's parser."""
    payloads: list[bytes] = []
    for d in datagrams:
        data = d.payload
        if len(data) < 12 or data[0] >> 6 != 2 or data[1] & 0x7F != 0:
            continue
        start = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10:
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data) - (data[-1] if data[0] & 0x20 else 0)
        payloads.append(data[start:end])
    if not payloads:
        return np.zeros(0, dtype=np.int16)
    return ulaw_decode(b"".join(payloads))
