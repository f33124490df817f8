"""Timer sequences on a fake clock (RFC 3261 §17, Table 4; RFC 6026 Timers L and M)."""

from __future__ import annotations

import pytest

from callcenter.sip import LocalProtocolError
from callcenter.sip.transaction import (
    InviteClientState,
    InviteClientTransaction,
    InviteServerState,
    InviteServerTransaction,
    NonInviteClientState,
    NonInviteClientTransaction,
    NonInviteServerState,
    NonInviteServerTransaction,
    Timer,
    TimerConfig,
    TransactionTerminated,
    TransactionTimedOut,
    Transmission,
    timer_values,
)

from .helpers import ack_for, request, response, run_timers


def retransmissions(log: list[tuple[float, object]]) -> list[float]:
    return [t for t, out in log if isinstance(out, Transmission) and out.retransmission]


def timeouts(log: list[tuple[float, object]]) -> list[tuple[float, Timer]]:
    return [(t, e.timer) for t, e in log if isinstance(e, TransactionTimedOut)]


def terminated_at(log: list[tuple[float, object]]) -> list[float]:
    return [t for t, e in log if isinstance(e, TransactionTerminated)]


def test_table_4_values() -> None:
    udp = timer_values(TimerConfig(), False)
    tcp = timer_values(TimerConfig(), True)
    assert dict(udp) == {
        Timer.A: 0.5,
        Timer.B: 32.0,
        Timer.D: 32.0,
        Timer.E: 0.5,
        Timer.F: 32.0,
        Timer.G: 0.5,
        Timer.H: 32.0,
        Timer.I: 5.0,
        Timer.J: 32.0,
        Timer.K: 5.0,
        Timer.L: 32.0,
        Timer.M: 32.0,
        Timer.TRYING: 0.2,
    }
    assert tcp[Timer.A] is tcp[Timer.E] is tcp[Timer.G] is None
    assert tcp[Timer.D] == tcp[Timer.I] == tcp[Timer.J] == tcp[Timer.K] == 0.0
    assert tcp[Timer.B] == tcp[Timer.F] == tcp[Timer.H] == 32.0


def test_bad_config_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        TimerConfig(t1=0)
    with pytest.raises(LocalProtocolError):
        TimerConfig(t1=5, t2=4)


def test_invite_client_udp_retransmits_with_timer_a_and_times_out_on_b() -> None:
    client = InviteClientTransaction(request())
    client.send_request(0.0)
    assert [o.retransmission for o in client.data_to_send()] == [False]
    log = run_timers(client, 100)
    assert retransmissions(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert timeouts(log) == [(32.0, Timer.B)]
    assert terminated_at(log) == [32.0]
    assert client.state is InviteClientState.TERMINATED


def test_invite_client_tcp_never_retransmits() -> None:
    client = InviteClientTransaction(request(), reliable=True)
    client.send_request(0.0)
    log = run_timers(client, 100)
    assert retransmissions(log) == []
    assert timeouts(log) == [(32.0, Timer.B)]


def test_non_invite_client_udp_caps_timer_e_at_t2_and_times_out_on_f() -> None:
    client = NonInviteClientTransaction(request("OPTIONS"))
    client.send_request(0.0)
    log = run_timers(client, 100)
    assert retransmissions(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert timeouts(log) == [(32.0, Timer.F)]


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    req = request("OPTIONS")
    client = NonInviteClientTransaction(req)
    client.send_request(0.0)
    log = run_timers(client, 0.6)  # one retransmission at 0.5; E next due at 1.5
    client.receive_response(response(req, 100), 0.7)
    assert client.state is NonInviteClientState.PROCEEDING
    log += run_timers(client, 100)
    assert retransmissions(log) == [0.5, 1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert timeouts(log) == [(32.0, Timer.F)]


def test_non_invite_client_tcp_times_out_on_f_only() -> None:
    client = NonInviteClientTransaction(request("OPTIONS"), reliable=True)
    client.send_request(0.0)
    log = run_timers(client, 100)
    assert retransmissions(log) == []
    assert timeouts(log) == [(32.0, Timer.F)]


def test_invite_server_retransmits_final_on_g_until_h() -> None:
    req = request()
    server = InviteServerTransaction(req)
    server.receive_request(req, 0.0)
    server.send_response(response(req, 486), 0.0)
    log = run_timers(server, 100)
    assert retransmissions(log) == [
        0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5
    ]  # fmt: skip
    assert timeouts(log) == [(32.0, Timer.H)]
    assert server.state is InviteServerState.TERMINATED


def test_invite_server_stops_retransmitting_on_ack_and_ends_on_timer_i() -> None:
    req = request()
    final = response(req, 486)
    server = InviteServerTransaction(req)
    server.receive_request(req, 0.0)
    server.send_response(final, 0.0)
    log = run_timers(server, 2.0)
    server.receive_request(ack_for(req, final), 2.0)
    assert server.state is InviteServerState.CONFIRMED
    assert server.deadline(Timer.I) == 7.0
    log += run_timers(server, 100)
    assert retransmissions(log) == [0.5, 1.5]
    assert timeouts(log) == []
    assert terminated_at(log) == [7.0]


def test_invite_server_tcp_waits_for_ack_on_h_without_retransmitting() -> None:
    req = request()
    server = InviteServerTransaction(req, reliable=True)
    server.receive_request(req, 0.0)
    server.send_response(response(req, 486), 0.0)
    log = run_timers(server, 100)
    assert retransmissions(log) == []
    assert timeouts(log) == [(32.0, Timer.H)]


def test_invite_server_tcp_terminates_at_once_on_ack() -> None:
    req = request()
    final = response(req, 486)
    server = InviteServerTransaction(req, reliable=True)
    server.receive_request(req, 0.0)
    server.send_response(final, 0.0)
    server.receive_request(ack_for(req, final), 1.0)
    assert server.state is InviteServerState.TERMINATED  # Timer I = 0 fired in the call


@pytest.mark.parametrize(("reliable", "expected"), [(False, 32.0), (True, 0.0)])
def test_timer_d(reliable: bool, expected: float) -> None:
    req = request()
    client = InviteClientTransaction(req, reliable=reliable)
    client.send_request(0.0)
    client.receive_response(response(req, 486), 1.0)
    if reliable:
        assert client.state is InviteClientState.TERMINATED
        return
    assert client.state is InviteClientState.COMPLETED
    assert client.deadline(Timer.D) == 1.0 + expected
    assert terminated_at(run_timers(client, 100)) == [1.0 + expected]


@pytest.mark.parametrize(("reliable", "expected"), [(False, 5.0), (True, 0.0)])
def test_timer_k(reliable: bool, expected: float) -> None:
    req = request("OPTIONS")
    client = NonInviteClientTransaction(req, reliable=reliable)
    client.send_request(0.0)
    client.receive_response(response(req, 200), 1.0)
    if reliable:
        assert client.state is NonInviteClientState.TERMINATED
        return
    assert client.deadline(Timer.K) == 1.0 + expected
    assert terminated_at(run_timers(client, 100)) == [1.0 + expected]


@pytest.mark.parametrize(("reliable", "expected"), [(False, 5.0), (True, 0.0)])
def test_timer_i(reliable: bool, expected: float) -> None:
    req = request()
    final = response(req, 603)
    server = InviteServerTransaction(req, reliable=reliable)
    server.receive_request(req, 0.0)
    server.send_response(final, 0.0)
    server.receive_request(ack_for(req, final), 1.0)
    if reliable:
        assert server.state is InviteServerState.TERMINATED
        return
    assert server.deadline(Timer.I) == 1.0 + expected
    assert terminated_at(run_timers(server, 100)) == [1.0 + expected]


@pytest.mark.parametrize(("reliable", "expected"), [(False, 32.0), (True, 0.0)])
def test_timer_j(reliable: bool, expected: float) -> None:
    req = request("OPTIONS")
    server = NonInviteServerTransaction(req, reliable=reliable)
    server.receive_request(req, 0.0)
    server.send_response(response(req, 200), 1.0)
    if reliable:
        assert server.state is NonInviteServerState.TERMINATED
        return
    assert server.deadline(Timer.J) == 1.0 + expected
    assert terminated_at(run_timers(server, 100)) == [1.0 + expected]


def test_timers_l_and_m_hold_accepted_for_64_t1() -> None:
    req = request()
    ok = response(req, 200)
    server = InviteServerTransaction(req)
    server.receive_request(req, 0.0)
    server.send_response(ok, 1.0)
    assert server.state is InviteServerState.ACCEPTED
    assert terminated_at(run_timers(server, 100)) == [33.0]
    client = InviteClientTransaction(req)
    client.send_request(0.0)
    client.receive_response(ok, 1.0)
    assert client.state is InviteClientState.ACCEPTED
    log = run_timers(client, 100)
    assert retransmissions(log) == []
    assert terminated_at(log) == [33.0]


def test_100_trying_after_200_ms_of_tu_silence() -> None:
    req = request()
    server = InviteServerTransaction(req)
    server.receive_request(req, 10.0)
    assert server.data_to_send() == []
    assert server.get_timer() == pytest.approx(10.2)
    server.handle_timer(10.19)
    assert server.data_to_send() == []
    server.handle_timer(10.2)
    (trying,) = server.data_to_send()
    assert trying.data.startswith(b"SIP/2.0 100 Trying\r\n")
    assert trying.message.to_tag is None  # §8.2.6.2: no tag needed on a 100
    assert server.get_timer() is None


def test_no_100_trying_when_the_tu_answers_in_time() -> None:
    req = request()
    server = InviteServerTransaction(req)
    server.receive_request(req, 0.0)
    server.send_response(response(req, 180), 0.1)
    assert [o.message.status for o in server.data_to_send()] == [180]  # type: ignore[union-attr]
    assert run_timers(server, 10) == []


def test_late_handle_timer_does_not_burst_retransmissions() -> None:
    """An engine that wakes up late retransmits once and re-arms from its `now`."""
    client = NonInviteClientTransaction(request("OPTIONS"))
    client.send_request(0.0)
    client.data_to_send()
    client.handle_timer(3.0)
    assert len(client.data_to_send()) == 1
    assert client.get_timer() == 4.0
