"""RFC 3264 offer/answer for one audio stream: build offers, answer offers, accept answers.

Owns the negotiation rules: which m= line is accepted, which codec and telephone-event payload
type are used, the direction each side ends up with (hold included), and o= versioning across
re-offers (§8). It must not know SIP messages or dialogs (the caller decides when an offer is
due), sockets, or how a codec encodes: the small codec table below only names codecs, and the
codecs we can use are an argument so the media layer's registry can supply them later.

Decisions an engine relies on:
- We accept one audio RTP/AVP stream (the first usable one) and answer it with exactly one
  codec, chosen in OUR preference order (the `supported` argument; `offerer_order=True` flips
  it). One codec per leg means the peer cannot switch codec mid-call, so a room of two with the
  same codec can forward packets without decoding; the order is ours because only we know which
  codec our mixer and recorder handle natively.
- A usable stream must be reachable with the local address family: an offer with per-media
  c= lines in IP4 and IP6 is answered on the one matching `local_address`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .errors import LocalProtocolError
from .sdp import (
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SdpError,
    SessionDescription,
)

CodecKey = tuple[str, int]
"""(encoding name, clock rate); names compare case-insensitively (RFC 4855 §3)."""

DEFAULT_CODECS: tuple[CodecKey, ...] = (("PCMU", 8000), ("PCMA", 8000))
DEFAULT_PTIME = 20
TELEPHONE_EVENT = "telephone-event"
_FIRST_DYNAMIC_PT = 96
_DIRECTION_NAMES = frozenset(d.value for d in Direction)


class NegotiationError(SdpError):
    """No acceptable stream, codec or answer: 488 Not Acceptable Here (RFC 3264 §6)."""


@dataclass(frozen=True, slots=True)
class _Codec:
    name: str
    clock_rate: int
    static_pt: int | None
    channels: int = 1


# Names only (RFC 3551 §6 static types, plus the dynamic ones we may meet); not a registry.
_CODECS = (
    _Codec("PCMU", 8000, 0),
    _Codec("GSM", 8000, 3),
    _Codec("G723", 8000, 4),
    _Codec("PCMA", 8000, 8),
    _Codec("G722", 8000, 9),
    _Codec("G729", 8000, 18),
    _Codec("opus", 48000, None, 2),
    _Codec(TELEPHONE_EVENT, 8000, None),
)
_BY_STATIC_PT = {c.static_pt: c for c in _CODECS if c.static_pt is not None}
_BY_KEY = {(c.name.upper(), c.clock_rate): c for c in _CODECS}


def _key(name: str, clock_rate: int) -> CodecKey:
    return (name.upper(), clock_rate)


@dataclass(frozen=True, slots=True, kw_only=True)
class Negotiated:
    """What an engine needs to open RTP for the one negotiated audio stream.

    `local_sdp` is our side: the answer to send (answer_offer) or the offer we sent
    (accept_answer). `payload_type` is the type to SEND with: the peer's number for the codec
    (RFC 3264 §6.1 lets it differ from ours); accept both on receive.
    """

    local_sdp: SessionDescription
    remote_sdp: SessionDescription
    media_index: int
    remote_address: str
    remote_port: int
    remote_rtcp_port: int
    family: Literal[4, 6]
    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int
    fmtp: str | None
    telephone_event: int | None
    ptime: int
    direction: Direction
    remote_hold: bool

    @property
    def may_send(self) -> bool:
        """False on hold, or when the peer's address is 0.0.0.0 (RFC 3264 §8.4)."""
        return self.direction.sends


def _offered(media: MediaDescription) -> list[RtpMap]:
    """The formats of an RTP m= line that we can name, in the line's order."""
    rtpmaps = media.rtpmaps()
    out: list[RtpMap] = []
    for pt in media.payload_types:
        rtpmap = rtpmaps.get(pt)
        if rtpmap is None and pt < _FIRST_DYNAMIC_PT and pt in _BY_STATIC_PT:
            c = _BY_STATIC_PT[pt]
            rtpmap = RtpMap(payload_type=pt, encoding_name=c.name, clock_rate=c.clock_rate)
        if rtpmap is not None:
            out.append(rtpmap)
    return out


def _choose_codec(
    offered: list[RtpMap], supported: Sequence[CodecKey], offerer_order: bool
) -> tuple[RtpMap, CodecKey] | None:
    ours = {_key(*k): k for k in supported}
    usable = [r for r in offered if r.encoding_name.lower() != TELEPHONE_EVENT]
    if offerer_order:
        for r in usable:
            if (k := _key(r.encoding_name, r.clock_rate)) in ours:
                return r, ours[k]
        return None
    for k in supported:
        for r in usable:
            if _key(r.encoding_name, r.clock_rate) == _key(*k):
                return r, k
    return None


def _telephone_event(offered: list[RtpMap], clock_rate: int) -> RtpMap | None:
    # RFC 4733 §2.5.1.2: events use the clock rate of the audio codec they accompany.
    for r in offered:
        if r.encoding_name.lower() == TELEPHONE_EVENT and r.clock_rate == clock_rate:
            return r
    return None


def _ptime(media: MediaDescription, fallback: int) -> int:
    ptime = media.ptime or fallback
    maxptime = media.maxptime
    return min(ptime, maxptime) if maxptime else ptime


def _rtcp_port(media: MediaDescription) -> int:
    # a=rtcp:<port> [nettype addrtype address] (RFC 3605); otherwise RTP port + 1.
    value = media.attribute("rtcp")
    text = (value or "").partition(" ")[0]
    if text.isascii() and text.isdigit() and len(text) <= 5 and 0 < int(text) <= 65535:
        return int(text)
    return media.port + 1


def _remote_direction(sd: SessionDescription, media: MediaDescription) -> Direction:
    direction = sd.direction_of(media)
    conn = sd.connection_of(media)
    if conn is not None and conn.is_unspecified:
        # RFC 2543 hold: c=0.0.0.0 means "send me neither RTP nor RTCP" (RFC 3264 §8.4).
        return Direction.from_flags(sends=direction.sends, receives=False)
    return direction


def _meet(ours: Direction, theirs: Direction) -> Direction:
    """Our direction given what we want and what the peer declared (RFC 3264 §6.1)."""
    return Direction.from_flags(
        sends=ours.sends and theirs.receives, receives=ours.receives and theirs.sends
    )


def _family(address: str) -> Literal[4, 6]:
    try:
        version = ipaddress.ip_address(address).version
    except ValueError:
        raise LocalProtocolError(f"local address must be an IP literal: {address!r}") from None
    return 4 if version == 4 else 6


def _remote_connection(sd: SessionDescription, media: MediaDescription) -> Connection | None:
    conn = sd.connection_of(media)
    return conn if conn is not None and conn.family is not None else None


def _audio_attributes(
    codecs: Sequence[RtpMap], te: RtpMap | None, events: str | None, ptime: int, d: Direction
) -> tuple[Attribute, ...]:
    attrs = [r.to_attribute() for r in codecs]
    if te is not None:
        attrs.append(te.to_attribute())
        if events:
            attrs.append(("fmtp", f"{te.payload_type} {events}"))
    attrs.append(("ptime", str(ptime)))
    attrs.append((d.value, None))
    return tuple(attrs)


def _session(
    *,
    origin: Origin,
    address: str,
    session_name: str,
    media: tuple[MediaDescription, ...],
) -> SessionDescription:
    addrtype = "IP4" if _family(address) == 4 else "IP6"
    return SessionDescription(
        origin=origin,
        session_name=session_name,
        connection=Connection(addrtype=addrtype, address=address),
        media=media,
    )


def _next_origin(
    previous: SessionDescription | None,
    new: SessionDescription,
) -> SessionDescription:
    """RFC 3264 §8: keep the previous o= line; bump its version only if the SDP changed."""
    if previous is None:
        return new
    unchanged = replace(new, origin=previous.origin) == previous
    version = previous.origin.sess_version + (0 if unchanged else 1)
    return replace(new, origin=replace(previous.origin, sess_version=version))


def build_offer(
    *,
    address: str,
    port: int,
    session_id: int,
    session_version: int | None = None,
    codecs: Sequence[CodecKey] = DEFAULT_CODECS,
    telephone_event: int | None = 101,
    telephone_events: str = "0-16",
    ptime: int = DEFAULT_PTIME,
    direction: Direction = Direction.SENDRECV,
    username: str = "-",
    session_name: str = "-",
) -> SessionDescription:
    """An initial offer of one audio RTP/AVP stream, codecs in our preference order.

    Static payload types are used where RFC 3551 defines one; others get dynamic types from 96,
    skipping `telephone_event` (None leaves RFC 4733 events out). Events are offered at
    8000 Hz only, the rate of G.711 and G.722; a codec of another rate gets no events.
    """
    if not codecs:
        raise LocalProtocolError("an offer needs at least one codec")
    if not 0 < port <= 65535 or ptime <= 0:
        raise LocalProtocolError(f"bad RTP port {port} or ptime {ptime}")
    if telephone_event is not None and not _FIRST_DYNAMIC_PT <= telephone_event <= 127:
        raise LocalProtocolError(f"telephone-event needs a dynamic payload type: {telephone_event}")
    addrtype = "IP4" if _family(address) == 4 else "IP6"
    rtpmaps: list[RtpMap] = []
    used = {telephone_event}
    dynamic = _FIRST_DYNAMIC_PT
    for name, rate in codecs:
        known = _BY_KEY.get(_key(name, rate))
        pt = known.static_pt if known is not None else None
        if pt is None or pt in used:
            while dynamic in used:
                dynamic += 1
            if dynamic > 127:
                raise LocalProtocolError("too many codecs for the dynamic payload types")
            pt = dynamic
        used.add(pt)
        channels = known.channels if known is not None else 1
        rtpmaps.append(
            RtpMap(payload_type=pt, encoding_name=name, clock_rate=rate, channels=channels)
        )
    te = None
    if telephone_event is not None:
        te = RtpMap(payload_type=telephone_event, encoding_name=TELEPHONE_EVENT, clock_rate=8000)
    formats = [r.payload_type for r in rtpmaps]
    if te is not None:
        formats.append(te.payload_type)
    media = MediaDescription(
        media="audio",
        port=port,
        proto="RTP/AVP",
        formats=tuple(str(pt) for pt in formats),
        attributes=_audio_attributes(rtpmaps, te, telephone_events, ptime, direction),
    )
    origin = Origin(
        username=username,
        sess_id=session_id,
        sess_version=session_id if session_version is None else session_version,
        addrtype=addrtype,
        address=address,
    )
    return _session(origin=origin, address=address, session_name=session_name, media=(media,))


def _rejected(media: MediaDescription) -> MediaDescription:
    # RFC 3264 §6: same media type, port zero; the formats are copied because an m= line
    # must carry at least one.
    return MediaDescription(media=media.media, port=0, proto=media.proto, formats=media.formats)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Choice:
    """The stream, codec and parameters picked from the peer's SDP."""

    index: int
    media: MediaDescription
    connection: Connection
    codec: RtpMap
    name: str
    te: RtpMap | None
    ptime: int
    remote_direction: Direction
    direction: Direction

    def negotiated(
        self, *, local_sdp: SessionDescription, remote_sdp: SessionDescription
    ) -> Negotiated:
        return Negotiated(
            local_sdp=local_sdp,
            remote_sdp=remote_sdp,
            media_index=self.index,
            remote_address=self.connection.address,
            remote_port=self.media.port,
            remote_rtcp_port=_rtcp_port(self.media),
            family=4 if self.connection.family == 4 else 6,
            payload_type=self.codec.payload_type,
            encoding_name=self.name,
            clock_rate=self.codec.clock_rate,
            channels=self.codec.channels,
            fmtp=self.media.fmtp(self.codec.payload_type),
            telephone_event=None if self.te is None else self.te.payload_type,
            ptime=self.ptime,
            direction=self.direction,
            remote_hold=not self.remote_direction.receives,
        )


def _choose(
    offer: SessionDescription,
    index: int,
    *,
    family: int,
    supported: Sequence[CodecKey],
    ptime: int,
    offerer_order: bool,
    direction: Direction,
    telephone_event: bool,
) -> _Choice | None:
    """The offered stream `index` if we can accept it (audio RTP/AVP, live, reachable)."""
    m = offer.media[index]
    conn = _remote_connection(offer, m)
    if (
        m.media != "audio"
        or m.proto != "RTP/AVP"
        or m.port == 0
        or m.port_count not in (None, 1)
        or conn is None
        or conn.family != family
    ):
        return None
    offered = _offered(m)
    pick = _choose_codec(offered, supported, offerer_order)
    if pick is None:
        return None
    codec, key = pick
    remote = _remote_direction(offer, m)
    return _Choice(
        index=index,
        media=m,
        connection=conn,
        codec=codec,
        name=key[0],
        te=_telephone_event(offered, codec.clock_rate) if telephone_event else None,
        ptime=_ptime(m, ptime),
        remote_direction=remote,
        direction=_meet(direction, remote),
    )


def answer_offer(
    offer: SessionDescription,
    *,
    local_address: str,
    local_port: int,
    session_id: int | None = None,
    previous: SessionDescription | None = None,
    supported: Sequence[CodecKey] = DEFAULT_CODECS,
    direction: Direction = Direction.SENDRECV,
    telephone_event: bool = True,
    ptime: int = DEFAULT_PTIME,
    offerer_order: bool = False,
    username: str = "-",
    session_name: str = "-",
) -> Negotiated:
    """Answer `offer` per RFC 3264 §6: one m= line per offered one, in order.

    `previous` is the last SDP we sent in this dialog (for a re-offer): its o= line is reused
    and its version bumped if the answer differs (§8). Otherwise `session_id` names a new
    session. `direction` is what we want (sendonly while we hold the call). Raises
    NegotiationError (488) when no stream can be accepted.
    """
    if previous is None and session_id is None:
        raise LocalProtocolError("answer_offer needs session_id or previous")
    if not 0 < local_port <= 65535:
        raise LocalProtocolError(f"bad RTP port {local_port}")
    family = _family(local_address)
    choice: _Choice | None = None
    answer_media: list[MediaDescription] = []
    for index, m in enumerate(offer.media):
        # Only the first usable audio stream is accepted; later ones are declined.
        new = (
            None
            if choice is not None
            else _choose(
                offer,
                index,
                family=family,
                supported=supported,
                ptime=ptime,
                offerer_order=offerer_order,
                direction=direction,
                telephone_event=telephone_event,
            )
        )
        if new is None:
            answer_media.append(_rejected(m))
            continue
        choice = new
        formats = [choice.codec.payload_type]
        if choice.te is not None:
            formats.append(choice.te.payload_type)
        events = m.fmtp(choice.te.payload_type) if choice.te is not None else None
        answer_media.append(
            MediaDescription(
                media="audio",
                port=local_port,
                proto=m.proto,
                formats=tuple(str(pt) for pt in formats),
                attributes=_audio_attributes(
                    [choice.codec], choice.te, events, choice.ptime, choice.direction
                ),
            )
        )
    if choice is None:
        raise NegotiationError("no acceptable audio stream in the offer")
    sess_id = 0 if session_id is None else session_id
    origin = Origin(
        username=username,
        sess_id=sess_id,
        sess_version=sess_id,
        addrtype="IP4" if family == 4 else "IP6",
        address=local_address,
    )
    fresh = _session(
        origin=origin, address=local_address, session_name=session_name, media=tuple(answer_media)
    )
    return choice.negotiated(local_sdp=_next_origin(previous, fresh), remote_sdp=offer)


def accept_answer(
    offer: SessionDescription,
    answer: SessionDescription,
    *,
    supported: Sequence[CodecKey] = DEFAULT_CODECS,
) -> Negotiated:
    """Check the peer's answer to our `offer` (RFC 3264 §6, §7) and say what was agreed.

    The codec is the answerer's first listed one that we offered and support, sent with the
    answer's payload type. Raises NegotiationError (488) for an answer that breaks the rules.
    """
    if len(answer.media) != len(offer.media):
        raise NegotiationError("answer has a different number of m= lines than the offer")
    chosen: int | None = None
    for index, (om, am) in enumerate(zip(offer.media, answer.media, strict=True)):
        if om.media != am.media:
            raise NegotiationError(f"answer m= line {index} changed media type")
        if om.port == 0 and am.port != 0:
            raise NegotiationError(f"answer accepted m= line {index} that we disabled")
        if (
            chosen is None
            and am.port != 0
            and om.media == "audio"
            and om.proto == "RTP/AVP"
            and am.proto == om.proto
        ):
            chosen = index
    if chosen is None:
        raise NegotiationError("answer rejected every audio stream")
    om, am = offer.media[chosen], answer.media[chosen]
    conn = _remote_connection(answer, am)
    if conn is None:
        raise NegotiationError("answer has no usable IN IP4/IP6 connection address")
    offered = _offered(om)
    offered_keys = {_key(r.encoding_name, r.clock_rate) for r in offered}
    answered = [r for r in _offered(am) if _key(r.encoding_name, r.clock_rate) in offered_keys]
    pick = _choose_codec(answered, supported, offerer_order=True)
    if pick is None:
        raise NegotiationError("answer has no codec in common with the offer")
    codec, key = pick
    te = _telephone_event(answered, codec.clock_rate)
    theirs = _remote_direction(answer, am)
    choice = _Choice(
        index=chosen,
        media=am,
        connection=conn,
        codec=codec,
        name=key[0],
        te=te if _telephone_event(offered, codec.clock_rate) else None,
        ptime=_ptime(am, om.ptime or DEFAULT_PTIME),
        remote_direction=theirs,
        direction=_meet(offer.direction_of(om), theirs),
    )
    return choice.negotiated(local_sdp=offer, remote_sdp=answer)


def _with_direction(media: MediaDescription, direction: Direction) -> MediaDescription:
    kept = [(n, v) for n, v in media.attributes if n not in _DIRECTION_NAMES]
    return replace(media, attributes=(*kept, (direction.value, None)))


def reoffer(previous: SessionDescription, *, direction: Direction) -> SessionDescription:
    """A new offer from the last SDP we sent, with every active stream set to `direction`.

    The m= lines stay as they were (RFC 3264 §8: a re-offer never removes one) and the o=
    version goes up by one, as every new offer must.
    """
    media = tuple(_with_direction(m, direction) if m.port != 0 else m for m in previous.media)
    attributes = tuple((n, v) for n, v in previous.attributes if n not in _DIRECTION_NAMES)
    version = previous.origin.sess_version + 1
    return replace(
        previous,
        origin=replace(previous.origin, sess_version=version),
        attributes=attributes,
        media=media,
    )


def hold_offer(previous: SessionDescription) -> SessionDescription:
    """Put the peer on hold (RFC 3264 §8.4): we keep sending (music), ask it not to."""
    return reoffer(previous, direction=Direction.SENDONLY)


def resume_offer(previous: SessionDescription) -> SessionDescription:
    return reoffer(previous, direction=Direction.SENDRECV)
