"""The conference's bookkeeping under any sequence of what people do (Hypothesis, no sockets).

A `Connection` with browser phones as every party (real `BrowserCall`s and legs, no network):
parties added straight in or after a consultation, joined, completed, cancelled, failing to
answer, hanging up, removed, muted; monitors listening, whispering, barging; the owner holding,
muting and leaving; the caller leaving. After every step the room must hold exactly who is on
the call, each in the mode the flags say, and once the call is over every phone is hung up,
the room is empty and nobody was hung up twice or left ringing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from callcenter.engine.browser import BrowserCall, BrowserPhone
from callcenter.engine.connection import CallStateError, Connection, Party
from callcenter.engine.media import MediaClock, Room
from callcenter.engine.media.browser_leg import BrowserLeg
from callcenter.media import Mode

MODES = st.sampled_from(["listen", "whisper", "barge"])


class FakeCall:
    """The caller's call as the connection uses it: a leg and two callbacks."""

    def __init__(self) -> None:
        self.leg = BrowserLeg()
        self.on_hold: Any = None
        self.on_end: Any = None
        self.hung_up = 0


class ConferenceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # BrowserCall futures need a current loop; nothing here awaits.
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.clock = MediaClock()
        self.call = FakeCall()
        self.phones: list[BrowserPhone] = []
        self.hangups: dict[str, int] = {}  # by phone
        owner = self._answered("owner")
        room = Room()
        room.add(self.call.leg, is_caller=True)
        room.add(owner.leg)
        self.clock.add(room)
        self.connection = Connection(
            call=self.call,  # type: ignore[arg-type]
            room=room,
            callee=owner,
            clock=self.clock,
            hang_up_callee=self._hang_up,
            hang_up_caller=self._hang_up_caller,
        )
        self.ticks = 0

    def teardown(self) -> None:
        asyncio.set_event_loop(None)
        self.loop.close()

    # --- plumbing: phones that answer at once and report their end like the bridge does ---

    def _answered(self, name: str) -> BrowserCall:
        phone = BrowserPhone(f"{name}{len(self.phones)}")
        self.phones.append(phone)
        holder: list[BrowserCall] = []
        call = phone.take(caller_id="x", on_end=lambda: self.connection.callee_left(holder[0]))
        holder.append(call)
        return call

    def _hang_up(self, callee: Any) -> None:
        assert isinstance(callee, BrowserCall)
        name = callee.phone.name
        self.hangups[name] = self.hangups.get(name, 0) + 1
        callee.phone.cancel(callee)

    def _hang_up_caller(self, call: Any) -> None:
        call.hung_up += 1

    @property
    def live(self) -> bool:
        return not (self.connection.ended or self.connection.detached)

    def _parties(self, role: str) -> list[Party]:
        return [p for p in self.connection.parties if p.role == role]

    # --- what people do --------------------------------------------------------------------

    @precondition(lambda self: self.live and self.connection.consult is None)
    @rule(join=st.booleans(), answers=st.booleans())
    def add_someone(self, join: bool, answers: bool) -> None:
        try:
            consult = self.connection.begin_consult("guest", join=join)
        except CallStateError:
            return
        if answers:
            self.connection.consult_answered(consult, self._answered("guest"))
        else:
            self.connection.consult_failed(consult)

    @precondition(lambda self: self.live and self.connection.consult is not None)
    @rule(how=st.sampled_from(["join", "complete", "cancel", "hang-up"]))
    def end_consultation(self, how: str) -> None:
        consult = self.connection.consult
        assert consult is not None
        try:
            if how == "join":
                self.connection.join_consult()
            elif how == "complete":
                self.connection.complete_consult()
            elif how == "cancel":
                self.connection.cancel_consult()
            elif consult.callee is not None:
                assert isinstance(consult.callee, BrowserCall)
                consult.callee.phone.hang_up(consult.callee)
        except CallStateError:
            assert how in ("join", "complete") and consult.callee is None

    @precondition(lambda self: self.live and self.connection.parties)
    @rule(data=st.data(), how=st.sampled_from(["hang-up", "remove", "mute", "unmute"]))
    def act_on_party(self, data: st.DataObject, how: str) -> None:
        party = data.draw(st.sampled_from(self.connection.parties))
        if how == "hang-up":
            assert isinstance(party.callee, BrowserCall)
            party.callee.phone.hang_up(party.callee)
        elif how == "remove":
            self.connection.remove_party(party)
        elif party.role == "party":
            self.connection.mute_party(party, how == "mute")

    @precondition(lambda self: self.live)
    @rule(mode=MODES)
    def monitor(self, mode: Any) -> None:
        self.connection.add_monitor("supervisor", self._answered("sup"), mode)

    @precondition(
        lambda self: self.live and any(p.role == "monitor" for p in self.connection.parties)
    )
    @rule(data=st.data(), mode=MODES)
    def switch(self, data: st.DataObject, mode: Any) -> None:
        party = data.draw(st.sampled_from(self._parties("monitor")))
        self.connection.set_monitor(party, mode)

    @precondition(lambda self: self.live)
    @rule(on=st.booleans(), what=st.sampled_from(["hold", "mute"]))
    def owner_button(self, on: bool, what: str) -> None:
        (self.connection.hold if what == "hold" else self.connection.mute)(on)

    @precondition(lambda self: self.live)
    @rule()
    def owner_leaves(self) -> None:
        owner = self.connection.callee
        assert isinstance(owner, BrowserCall)
        owner.phone.hang_up(owner)

    @precondition(lambda self: self.live)
    @rule()
    def caller_leaves(self) -> None:
        self.connection.caller_left()

    @precondition(
        lambda self: self.live and not self._parties("party") and self.connection.consult is None
    )
    @rule()
    def blind_transfer(self) -> None:
        self.connection.detach()

    @rule()
    def tick(self) -> None:
        """The media clock goes on (after the end too: an ended room is off the clock)."""
        self.ticks += 1
        self.connection.room.tick(self.ticks)
        consult = self.connection.consult
        if consult is not None and consult.room is not None:
            consult.room.tick(self.ticks)

    # --- what must always hold ------------------------------------------------------------

    @invariant()
    def room_holds_who_is_on_the_call(self) -> None:
        connection, room = self.connection, self.connection.room
        if not self.live:
            assert room.legs == ()
            assert connection.parties == []
            return
        expected = {self.call.leg, *(p.callee.leg for p in connection.parties)}
        consult = connection.consult
        talking_aside = consult is not None and consult.room is not None
        if not talking_aside:
            expected.add(connection.callee.leg)
        else:
            assert consult is not None and consult.room is not None
            assert set(consult.room.legs) == {connection.callee.leg, consult.callee.leg}  # type: ignore[union-attr]
        assert set(room.legs) == expected
        caller = room.participant(self.call.leg)
        assert caller.is_caller
        on_music = connection.held or connection.callee_holds or consult is not None
        assert caller.mode is (Mode.HOLD if on_music else Mode.FULL)
        for party in connection.parties:
            seen = room.participant(party.callee.leg)
            if party.role == "party":
                assert seen.mode is (Mode.MUTED if party.muted else Mode.FULL)
            else:
                assert (
                    seen.mode
                    is {
                        "listen": Mode.LISTEN,
                        "whisper": Mode.WHISPER,
                        "barge": Mode.FULL,
                    }[party.monitor]
                )
                if party.monitor == "whisper":
                    assert seen.whisper_to is connection.callee.leg
        assert len({p.id for p in connection.parties}) == len(connection.parties)

    @invariant()
    def nobody_is_hung_up_twice(self) -> None:
        assert all(count == 1 for count in self.hangups.values()), self.hangups
        assert self.call.hung_up <= 1

    @invariant()
    def once_over_every_phone_is_free(self) -> None:
        if self.connection.ended:
            for phone in self.phones:
                assert phone.current is None and phone.ringing is None, phone.name


ConferenceMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=30, deadline=None
)
test_conference_bookkeeping = ConferenceMachine.TestCase
