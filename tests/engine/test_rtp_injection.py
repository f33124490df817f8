"""RTP injection into a live call: a third party that knows the engine's media port (it is in
the SDP, and ports are easy to guess) sends its own audio there. The leg has latched on the
caller, so the stranger's packets reach neither the echo nor, through it, the caller; the leg
counts every one of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from callcenter.engine.sip_endpoint import SipEndpoint
from callcenter.media import SAMPLES_PER_FRAME, detect_tone
from callcenter.sip.dialog import DialogId

from .rtp_peer import HOST, RtpPeer, voiced
from .test_calls import _uac, make_endpoint


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[SipEndpoint]:
    server = make_endpoint()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.asyncio
async def test_injected_rtp_reaches_neither_party(endpoint: SipEndpoint) -> None:
    uac = await _uac(endpoint, "echo")
    intruder = await RtpPeer.open()  # another socket on 127.0.0.1: same host, other port
    try:
        media_port = await uac.call()
        uac.ack()
        assert uac.ok is not None and endpoint.calls is not None
        call = endpoint.calls.get(DialogId.as_uas(uac.ok.response))
        assert call is not None
        leg = call.leg
        talk = uac.rtp.send_tone(media_port, 700.0, 2.0)
        await asyncio.sleep(0.3)
        assert leg.latched and leg.remote == (HOST, uac.rtp.port)
        before = leg.dropped_foreign
        # A well-informed stranger: the caller's SSRC, its sequence numbers a little ahead (so
        # they would win any reordering), louder, for a whole second in the middle of the call.
        intruder.ssrc = uac.rtp.ssrc
        intruder.seq = (uac.rtp.seq + 5) & 0xFFFF
        await intruder.send_tone(media_port, 1300.0, 1.0, level_dbfs=0.0)
        await talk
        await asyncio.sleep(0.2)

        assert intruder.sent == 50
        assert leg.dropped_foreign - before == intruder.sent, "a stranger's packet got in"
        assert intruder.received == [], "the engine answered the stranger"
        heard = voiced(uac.rtp.audio())
        assert len(heard) >= 8000 * 1.8, "the caller's own audio stopped coming back"
        assert detect_tone(heard[1600:-1600], 700.0, min_fraction=0.9)
        # Not even one 20 ms frame of the caller's echo carries the stranger's tone.
        frames = heard[: len(heard) // SAMPLES_PER_FRAME * SAMPLES_PER_FRAME]
        carrying = [
            n
            for n, frame in enumerate(frames.reshape(-1, SAMPLES_PER_FRAME))
            if np.abs(frame).max() > 300 and detect_tone(frame, 1300.0, min_fraction=0.01)
        ]
        assert carrying == [], f"1300 Hz in frames {carrying}"
    finally:
        await uac.bye()
        uac.sip.close()
        uac.rtp.close()
        intruder.close()
