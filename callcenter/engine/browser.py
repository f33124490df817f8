"""Browser phones: a web page that rings, answers and talks like a SIP phone, without SIP.

Owns, per page owner (a name; the engine does not know it is an agent), one `BrowserPhone`:
its `BrowserLeg` (kept across the page's WebSockets, so a reload re-attaches audio to the call
in progress), the ring of one call at a time (`ring` waits until the page answers, declines,
or the ring is cancelled) and the end of the answered call from the page's side. Bridges ring
a browser phone next to SIP targets (`Bridges.connect_answered`), and the call's room holds
its leg like an RTP leg. Must not know WebSockets, HTTP, agents or queues: the web layer
feeds `leg.receive` and attaches a sink; a service says answer, decline or hang up.

Presence: a page is reachable while a socket is attached, and for `PRESENCE_GRACE` seconds
after it went (a reload), so a reload never looks like an agent who left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .media.browser_leg import BrowserLeg
from .outbound import CallFailed

PRESENCE_GRACE = 10.0
"""Seconds a page counts as present after its socket closed (a reload takes 1-2 s)."""


@dataclass(slots=True, eq=False, weakref_slot=True)
class BrowserCall:
    """A call rung on (and maybe answered by) a browser phone: what `OutboundCall` is for
    a SIP phone. `call` is always None (no SIP dialog); `ended` is set when it is over."""

    phone: BrowserPhone
    leg: BrowserLeg
    caller_id: str
    caller_name: str | None
    on_end: Callable[[], None] | None = None
    answered: asyncio.Future[None] = field(default_factory=asyncio.Future)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    call: None = None

    @property
    def is_up(self) -> bool:
        return self.answered.done() and not self.answered.cancelled() and not self.ended.is_set()


class BrowserPhone:
    """One page owner's phone. At most one call rings or is up at a time (a second ring is
    refused busy: 486)."""

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        grace: float = PRESENCE_GRACE,
    ) -> None:
        self.name = name
        self.leg = BrowserLeg()
        self._clock = clock
        self.grace = grace
        self._sinks = 0
        self._left_at: float | None = None
        self.ringing: BrowserCall | None = None
        self.current: BrowserCall | None = None

    # --- the page's socket ---------------------------------------------------------------

    def attach(self, send: Callable[[bytes], None]) -> None:
        """A socket of the page opened: audio frames go to `send` from now on."""
        self.leg.attach(send)
        self._sinks += 1
        self._left_at = None

    def detach(self, send: Callable[[bytes], None]) -> None:
        """A socket closed (a newer one may have attached already)."""
        self.leg.detach(send)
        self._sinks = max(0, self._sinks - 1)
        if self._sinks == 0:
            self._left_at = self._clock()

    def present(self) -> bool:
        """A socket is attached, or went less than PRESENCE_GRACE seconds ago."""
        if self._sinks:
            return True
        return self._left_at is not None and self._clock() - self._left_at < self.grace

    @property
    def busy(self) -> bool:
        return self.ringing is not None or self.current is not None

    # --- ringing --------------------------------------------------------------------------

    async def ring(
        self,
        *,
        caller_id: str,
        caller_name: str | None = None,
        on_end: Callable[[], None] | None = None,
        started: Callable[[BrowserCall], None] | None = None,
    ) -> BrowserCall:
        """Ring the page until `answer` (returns the call, now up), `decline` (CallFailed
        603), or `cancel` (487). Refused with 486 while another call rings or is up."""
        if self.busy:
            raise CallFailed(486, "Busy Here")
        call = BrowserCall(
            phone=self, leg=self.leg, caller_id=caller_id, caller_name=caller_name, on_end=on_end
        )
        self.ringing = call
        if started is not None:
            started(call)
        try:
            await call.answered
        except BaseException:
            call.ended.set()
            raise
        finally:
            if self.ringing is call:
                self.ringing = None
        if call.ended.is_set():  # cancelled in the same turn as the answer
            raise CallFailed(487, "Request Terminated")
        self.current = call
        return call

    def take(
        self,
        *,
        caller_id: str,
        caller_name: str | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> BrowserCall:
        """A call the page asked for itself (a supervisor's Listen): up at once, no ring.
        CallFailed 486 while another call rings or is up."""
        if self.busy:
            raise CallFailed(486, "Busy Here")
        call = BrowserCall(
            phone=self, leg=self.leg, caller_id=caller_id, caller_name=caller_name, on_end=on_end
        )
        call.answered.set_result(None)
        self.current = call
        return call

    def answer(self) -> bool:
        """The page took the ringing call; False when nothing rings."""
        call = self.ringing
        if call is None or call.answered.done():
            return False
        call.answered.set_result(None)
        return True

    def decline(self, status: int = 603) -> bool:
        """The page refused the ringing call; False when nothing rings."""
        call = self.ringing
        if call is None or call.answered.done():
            return False
        call.answered.set_exception(CallFailed(status, "Declined"))
        return True

    def cancel(self, call: BrowserCall) -> None:
        """Stop ringing (another target answered, the caller left, the ring timed out); a
        call already answered is hung up instead."""
        if not call.answered.done():
            call.answered.set_exception(CallFailed(487, "Request Terminated"))
            return
        self.hang_up(call)

    def hang_up(self, call: BrowserCall | None = None) -> bool:
        """End the page's call (`call`, or the current one); its `on_end` is told once."""
        call = call if call is not None else self.current
        if call is None or call.ended.is_set():
            return False
        call.ended.set()
        if self.current is call:
            self.current = None
        on_end, call.on_end = call.on_end, None
        if on_end is not None:
            on_end()
        return True


class BrowserPhones:
    """Every page owner's phone, made on first use."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, grace: float = PRESENCE_GRACE
    ) -> None:
        self._clock = clock
        self.grace = grace
        self._phones: dict[str, BrowserPhone] = {}

    def get(self, name: str) -> BrowserPhone | None:
        return self._phones.get(name)

    def phone(self, name: str) -> BrowserPhone:
        phone = self._phones.get(name)
        if phone is None:
            phone = self._phones[name] = BrowserPhone(name, clock=self._clock, grace=self.grace)
        return phone

    def __len__(self) -> int:
        return len(self._phones)
