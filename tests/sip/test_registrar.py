"""The registrar (RFC 3261 §10.3) on real peers' REGISTERs, the RFC 4475 registrar cases, the
expiry and ordering rules, and random REGISTER sequences against a reference model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.sip import (
    LocalProtocolError,
    NameAddr,
    Request,
    Response,
    SipUri,
    TelUri,
    parse_message,
    parse_uri,
)
from callcenter.sip.registrar import (
    Binding,
    BindingAdded,
    BindingRefreshed,
    BindingRemoved,
    RegisterOutcome,
    RegistrarPolicy,
    RemovalReason,
    Source,
    address_of_record,
    expired,
    next_expiry,
    process_register,
)

from .torture import read_4475

DATA = Path(__file__).resolve().parents[1] / "data" / "sip"
SOURCE = ("192.0.2.10", 5060, "udp")
T0 = 1_700_000_000.0


def _parse(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def golden(name: str) -> Request:
    return _parse((DATA / name).read_bytes())


def register(
    *contacts: str,
    call_id: str = "call-1",
    cseq: int = 1,
    expires: str | None = None,
    to: str = "sip:alice@example.com",
) -> Request:
    """A REGISTER as bytes on the wire, parsed like any received one."""
    lines = [
        "REGISTER sip:example.com SIP/2.0",
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{call_id}-{cseq}",
        "Max-Forwards: 70",
        f"To: <{to}>",
        f"From: <{to}>;tag=f1",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        *(f"Contact: {c}" for c in contacts),
        *([f"Expires: {expires}"] if expires is not None else []),
        "Content-Length: 0",
    ]
    return _parse(("\r\n".join(lines) + "\r\n\r\n").encode())


def run(
    request: Request,
    bindings: Sequence[Binding] = (),
    *,
    now: float = T0,
    username: str = "alice",
    source: tuple[str, int, str] = SOURCE,
    policy: RegistrarPolicy | None = None,
) -> RegisterOutcome:
    outcome = process_register(
        request,
        username=username,
        bindings=bindings,
        now=now,
        source=source,
        policy=policy or RegistrarPolicy(),
        to_tag="reg1",
    )
    # Whatever the outcome, the response is a well-formed message that parses back.
    again = parse_message(bytes(outcome.response))
    assert isinstance(again, Response)
    assert again.status == outcome.response.status
    assert again.call_id == request.call_id
    return outcome


def listed(response: Response) -> list[tuple[str, str | None]]:
    """(URI, expires) of each Contact in a 200, read back from the wire bytes."""
    again = parse_message(bytes(response))
    out = []
    for contact in again.contacts:
        assert isinstance(contact, NameAddr)
        out.append((str(contact.uri), contact.param("expires")))
    return out


# -- real peers ------------------------------------------------------------------------------


def test_baresip_expires_param_without_expires_header() -> None:
    request = golden("baresip-register-auth.sip")
    assert "expires" not in request.headers
    outcome = run(request, source=("127.0.0.1", 53574, "udp"))
    assert outcome.response.status == 200
    assert outcome.response.to_tag == "reg1"
    (binding,) = outcome.bindings
    assert binding.aor == "sip:alice@127.0.0.1"
    assert binding.contact == "sip:alice-0x561192905700@127.0.0.1:53574"
    assert binding.expires_at == T0 + 60
    assert binding.call_id == "8b9f46c2647b2244" and binding.cseq == 22615
    assert binding.source == Source("127.0.0.1", 53574, "udp")
    assert binding.instance == "<urn:uuid:a4b483f8-1c56-13e8-2803-7c9f22f9682f>"
    assert binding.reg_id is None and binding.q is None
    assert outcome.events == (BindingAdded(binding=binding),)
    assert listed(outcome.response) == [("sip:alice-0x561192905700@127.0.0.1:53574", "60")]
    assert outcome.response.headers.get("date") is not None

    # Its de-registration: same Call-ID, higher CSeq, `;expires=0` on the Contact.
    later = run(golden("baresip-register-expires0-auth.sip"), outcome.bindings, now=T0 + 30)
    assert later.response.status == 200
    assert later.bindings == ()
    assert later.events == (BindingRemoved(binding=binding, reason=RemovalReason.UNREGISTERED),)
    assert listed(later.response) == []


def test_pyvoip_expires_header() -> None:
    request = golden("pyvoip-register-auth.sip")
    assert request.headers.get("expires") == "120"
    outcome = run(request)
    (binding,) = outcome.bindings
    assert binding.aor == "sip:alice@127.0.0.1"
    # URI parameter names compare case-insensitively and are kept lower-cased; values verbatim.
    assert binding.contact == "sip:alice@127.0.0.1:58471;transport=UDP"
    assert binding.expires_at == T0 + 120
    assert binding.instance == "<urn:uuid:82927F9F-A018-427C-BF85-2E491F154BF0>"
    assert listed(outcome.response) == [(binding.contact, "120")]

    # pyVoIP de-registers with a new Call-ID: a different Call-ID may remove the binding.
    later = run(golden("pyvoip-register-expires0-auth.sip"), outcome.bindings, now=T0 + 5)
    assert later.response.status == 200
    assert later.bindings == ()


def test_sipp_expires_3600() -> None:
    outcome = run(golden("sipp-register-auth.sip"))
    (binding,) = outcome.bindings
    assert binding.aor == "sip:alice@127.0.0.1"
    assert binding.contact == "sip:alice@127.0.0.1:52554"
    assert binding.expires_at == T0 + 3600


def test_three_peers_share_one_aor() -> None:
    bindings: tuple[Binding, ...] = ()
    for i, name in enumerate(
        ["baresip-register-auth.sip", "pyvoip-register-auth.sip", "sipp-register-auth.sip"]
    ):
        outcome = run(golden(name), bindings, now=T0 + i)
        assert outcome.response.status == 200
        bindings = outcome.bindings
    assert len(bindings) == 3
    assert [e for _, e in listed(outcome.response)] == ["58", "119", "3600"]


# -- RFC 4475 --------------------------------------------------------------------------------


def test_escnull_two_distinct_bindings_no_truncation() -> None:
    outcome = run(_parse(read_4475("escnull.dat")), username="null-\x00-null")
    assert outcome.response.status == 200
    assert [b.contact for b in outcome.bindings] == [
        "sip:%00@host5.example.com",
        "sip:%00%00@host5.example.com",
    ]
    assert {b.aor for b in outcome.bindings} == {"sip:null-%00-null@example.com"}
    assert len(listed(outcome.response)) == 2
    # Someone authenticated as the truncated name does not own it.
    assert run(_parse(read_4475("escnull.dat")), username="null-").response.status == 403


def test_cparam01_header_param_is_not_in_the_binding() -> None:
    outcome = run(_parse(read_4475("cparam01.dat")), username="watson")
    assert outcome.response.status == 200
    (binding,) = outcome.bindings
    assert binding.aor == "sip:watson@example.com"
    assert binding.contact == "sip:+19725552222@gw1.example.net"
    assert listed(outcome.response) == [("sip:+19725552222@gw1.example.net", "3600")]


def test_cparam02_url_param_is_kept_and_equivalent_to_cparam01() -> None:
    outcome = run(_parse(read_4475("cparam02.dat")), username="watson")
    (binding,) = outcome.bindings
    assert binding.contact == "sip:+19725552222@gw1.example.net;unknownparam"
    assert listed(outcome.response) == [(binding.contact, "3600")]

    # §19.1.4: a parameter present in only one URI is ignored, so after cparam01 the cparam02
    # Contact is the same binding (new Call-ID: replaced), now spelt as last registered.
    first = run(_parse(read_4475("cparam01.dat")), username="watson")
    second = run(_parse(read_4475("cparam02.dat")), first.bindings, username="watson")
    (updated,) = second.bindings
    assert updated.contact == "sip:+19725552222@gw1.example.net;unknownparam"
    assert second.events == (BindingRefreshed(binding=updated, previous=first.bindings[0]),)


def test_regescrt_keeps_the_escaped_route_verbatim() -> None:
    outcome = run(_parse(read_4475("regescrt.dat")), username="user")
    (binding,) = outcome.bindings
    assert binding.contact == "sip:user@example.com?Route=%3Csip:sip.example.com%3E"
    assert binding.contact_uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)
    assert listed(outcome.response) == [(binding.contact, "3600")]
    # Never applied as a header of the response.
    assert "route" not in outcome.response.headers


def test_unksm2_to_must_be_sip() -> None:
    request = _parse(read_4475("unksm2.dat"))
    assert address_of_record(request.to_addr.uri) is None
    outcome = run(request, username="2983792873")
    assert outcome.response.status == 400
    assert outcome.bindings == ()


def test_regaut01_without_contact_is_a_query() -> None:
    # The unknown Authorization scheme is the digest layer's business (it sends the 401);
    # once a username is authenticated, a REGISTER without Contact only asks.
    outcome = run(_parse(read_4475("regaut01.dat")), username="j.user")
    assert outcome.response.status == 200
    assert "contact" not in outcome.response.headers
    assert outcome.bindings == () and outcome.events == ()


# -- the rules of §10.3 ----------------------------------------------------------------------


def test_refresh_same_call_id_higher_cseq() -> None:
    first = run(register("<sip:alice@192.0.2.10>", expires="600"))
    refreshed = run(
        register("<sip:alice@192.0.2.10>", cseq=2, expires="600"),
        first.bindings,
        now=T0 + 300,
        source=("198.51.100.7", 40000, "tcp"),
    )
    (binding,) = refreshed.bindings
    assert binding.expires_at == T0 + 900
    assert binding.cseq == 2
    # The source follows the latest REGISTER (the NAT may have given a new port).
    assert binding.source == Source("198.51.100.7", 40000, "tcp")
    assert refreshed.events == (BindingRefreshed(binding=binding, previous=first.bindings[0]),)
    assert listed(refreshed.response) == [("sip:alice@192.0.2.10", "600")]


@pytest.mark.parametrize(
    ("contact", "expires"),
    [("<sip:alice@192.0.2.10>;expires=0", None), ("<sip:alice@192.0.2.10>", "0")],
)
def test_removal_with_expires_zero(contact: str, expires: str | None) -> None:
    first = run(register("<sip:alice@192.0.2.10>", "<sip:alice@192.0.2.11>"))
    removed = run(register(contact, cseq=2, expires=expires), first.bindings, now=T0 + 1)
    assert [b.contact for b in removed.bindings] == ["sip:alice@192.0.2.11"]
    assert removed.events == (
        BindingRemoved(binding=first.bindings[0], reason=RemovalReason.UNREGISTERED),
    )
    assert listed(removed.response) == [("sip:alice@192.0.2.11", "3599")]


def test_removing_an_unknown_contact_changes_nothing() -> None:
    outcome = run(register("<sip:bob@192.0.2.99>;expires=0"))
    assert outcome.response.status == 200 and outcome.bindings == () and outcome.events == ()


def test_star_removes_everything() -> None:
    first = run(register("<sip:alice@192.0.2.10>", "<sip:alice@192.0.2.11>"))
    star = run(register("*", call_id="other", expires="0"), first.bindings, now=T0 + 1)
    assert star.response.status == 200
    assert star.bindings == ()
    assert [e.binding for e in star.events if isinstance(e, BindingRemoved)] == list(first.bindings)


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [(("*",), None), (("*",), "60"), (("*", "<sip:alice@192.0.2.12>"), "0")],
)
def test_star_needs_expires_zero_and_no_other_contact(
    contacts: tuple[str, ...], expires: str | None
) -> None:
    first = run(register("<sip:alice@192.0.2.10>"))
    outcome = run(register(*contacts, cseq=2, expires=expires), first.bindings)
    assert outcome.response.status == 400
    assert outcome.bindings == first.bindings


def test_star_out_of_order_is_500() -> None:
    first = run(register("<sip:alice@192.0.2.10>", cseq=5))
    outcome = run(register("*", cseq=5, expires="0"), first.bindings)
    assert outcome.response.status == 500
    assert outcome.bindings == first.bindings


def test_interval_too_brief_423_with_min_expires() -> None:
    first = run(register("<sip:alice@192.0.2.10>"))
    outcome = run(
        register("<sip:alice@192.0.2.11>", "<sip:alice@192.0.2.12>;expires=59", cseq=2),
        first.bindings,
    )
    assert outcome.response.status == 423
    assert outcome.response.headers.get("min-expires") == "60"
    # All or nothing: the acceptable first Contact was not added either.
    assert outcome.bindings == first.bindings
    assert outcome.events == ()


@pytest.mark.parametrize(
    ("contact", "header", "granted"),
    [
        ("<sip:alice@192.0.2.10>;expires=99999", None, 3600),
        ("<sip:alice@192.0.2.10>", "99999999999999999999999", 3600),
        ("<sip:alice@192.0.2.10>", "Thu, 01 Dec 1994 16:00:00 GMT", 3600),  # RFC 2543 date
        ("<sip:alice@192.0.2.10>;expires=soon", "120", 120),  # falls through to the header
        ("<sip:alice@192.0.2.10>;expires=300", "120", 300),  # the param wins
        ("<sip:alice@192.0.2.10>;expires=0060", None, 60),
    ],
)
def test_expires_sources_and_clamping(contact: str, header: str | None, granted: int) -> None:
    outcome = run(register(contact, expires=header))
    assert outcome.response.status == 200
    assert outcome.bindings[0].expires_at == T0 + granted
    assert listed(outcome.response)[0][1] == str(granted)


def test_default_expires_from_policy() -> None:
    policy = RegistrarPolicy(default_expires=1800)
    outcome = run(register("<sip:alice@192.0.2.10>"), policy=policy)
    assert outcome.bindings[0].expires_at == T0 + 1800


@pytest.mark.parametrize("cseq", [4, 5])
def test_out_of_order_cseq_is_500_and_changes_nothing(cseq: int) -> None:
    first = run(register("<sip:alice@192.0.2.10>", cseq=5))
    outcome = run(
        register("<sip:alice@192.0.2.11>", "<sip:alice@192.0.2.10>", cseq=cseq), first.bindings
    )
    assert outcome.response.status == 500
    assert outcome.bindings == first.bindings


def test_different_call_id_replaces_whatever_the_cseq() -> None:
    first = run(register("<sip:alice@192.0.2.10>", cseq=900))
    rebooted = run(
        register("<sip:alice@192.0.2.10>", call_id="after-reboot", cseq=1), first.bindings
    )
    assert rebooted.response.status == 200
    (binding,) = rebooted.bindings
    assert (binding.call_id, binding.cseq) == ("after-reboot", 1)


def test_same_contact_twice_in_one_request() -> None:
    outcome = run(
        register("<sip:alice@192.0.2.10>;expires=100", "<sip:alice@192.0.2.10>;expires=200")
    )
    assert outcome.response.status == 200
    (binding,) = outcome.bindings
    assert binding.expires_at == T0 + 200
    assert outcome.events == (BindingAdded(binding=binding),)


def test_another_users_aor_is_403() -> None:
    outcome = run(register("<sip:mallory@203.0.113.5>"), username="mallory")
    assert outcome.response.status == 403
    assert outcome.bindings == ()


def test_query_lists_bindings_and_changes_nothing() -> None:
    first = run(register("<sip:alice@192.0.2.10>;q=0.5", "<sip:alice@192.0.2.11>;q=1.0"))
    query = run(register(cseq=2), first.bindings, now=T0 + 100)
    assert query.response.status == 200
    assert query.bindings == first.bindings
    assert query.events == ()
    contacts = query.response.headers.values("contact")
    assert contacts == [
        "<sip:alice@192.0.2.10>;expires=3500;q=0.5",
        "<sip:alice@192.0.2.11>;expires=3500;q=1",
    ]
    assert [b.q for b in query.bindings] == [0.5, 1.0]


def test_bad_q_is_400() -> None:
    assert run(register("<sip:alice@192.0.2.10>;q=2")).response.status == 400


def test_non_sip_contact_is_400() -> None:
    assert run(register("<tel:+15551234567>")).response.status == 400


def test_date_header_rfc1123() -> None:
    outcome = run(register(), now=0.0)
    assert outcome.response.headers.get("date") == "Thu, 01 Jan 1970 00:00:00 GMT"
    outcome = run(register(), now=1_733_000_000.4)
    assert outcome.response.headers.get("date") == "Sat, 30 Nov 2024 20:53:20 GMT"


def test_expiry_over_a_fake_clock() -> None:
    now = T0
    first = run(register("<sip:alice@192.0.2.10>", expires="120"), now=now)
    second = run(
        register("<sip:alice@192.0.2.11>", cseq=2, expires="600"), first.bindings, now=now + 10
    )
    bindings = second.bindings
    assert next_expiry(bindings) == T0 + 120
    assert next_expiry(()) is None
    assert expired(bindings, T0 + 119.9) == ()
    assert expired(bindings, T0 + 120) == (first.bindings[0],)

    before = run(register(cseq=3), bindings, now=T0 + 119)
    assert listed(before.response) == [
        ("sip:alice@192.0.2.10", "1"),
        ("sip:alice@192.0.2.11", "491"),
    ]
    after = run(register(cseq=4), bindings, now=T0 + 120)
    assert [b.contact for b in after.bindings] == ["sip:alice@192.0.2.11"]
    assert after.events == (
        BindingRemoved(binding=first.bindings[0], reason=RemovalReason.EXPIRED),
    )
    # Expired bindings are dropped even when the request itself is refused.
    refused = run(register(cseq=5), bindings, now=T0 + 130, username="bob")
    assert refused.response.status == 403
    assert [b.contact for b in refused.bindings] == ["sip:alice@192.0.2.11"]
    assert len(refused.events) == 1


def test_equivalent_uris_update_rather_than_duplicate() -> None:
    first = run(register("<sip:alice@host.example.com:5060;transport=udp>"))
    again = run(
        register("<sip:%61lice@HOST.Example.COM:5060;Transport=UDP;x=1>", cseq=2),
        first.bindings,
        now=T0 + 1,
    )
    (binding,) = again.bindings
    assert binding.contact == "sip:%61lice@HOST.Example.COM:5060;transport=UDP;x=1"
    assert isinstance(again.events[0], BindingRefreshed)
    # Different ports, or a transport on one side only, are different contacts.
    other = run(
        register("<sip:alice@host.example.com:5062>", "<sip:alice@host.example.com:5060>", cseq=3),
        again.bindings,
    )
    assert len(other.bindings) == 3


def test_same_instance_with_a_new_uri_replaces() -> None:
    instance = '"<urn:uuid:a4b483f8-1c56-13e8-2803-7c9f22f9682f>"'
    first = run(register(f"<sip:alice-0x1111@192.0.2.10:5060>;+sip.instance={instance}"))
    restarted = run(
        register(f"<sip:alice-0x2222@192.0.2.10:5060>;+sip.instance={instance}", call_id="run2"),
        first.bindings,
        now=T0 + 5,
    )
    (binding,) = restarted.bindings
    assert binding.contact == "sip:alice-0x2222@192.0.2.10:5060"
    assert restarted.events == (BindingRefreshed(binding=binding, previous=first.bindings[0]),)
    # A different reg-id is a different flow of the same device (RFC 5626).
    flow2 = run(
        register(
            f"<sip:alice-0x3333@192.0.2.10:5060>;+sip.instance={instance};reg-id=2",
            call_id="run2",
            cseq=2,
        ),
        restarted.bindings,
    )
    assert len(flow2.bindings) == 2
    assert flow2.bindings[1].reg_id == "2"


def test_one_contact_matching_two_bindings_merges_them() -> None:
    # Stored: X without an instance, Y with one. A Contact for X carrying Y's instance is the
    # same binding as both: X is refreshed in place and Y is replaced.
    instance = '"<urn:uuid:00000000-0000-0000-0000-000000000001>"'
    first = run(
        register("<sip:alice@192.0.2.10>", f"<sip:alice@192.0.2.11>;+sip.instance={instance}")
    )
    merged = run(
        register(f"<sip:alice@192.0.2.10>;+sip.instance={instance}", cseq=2), first.bindings
    )
    (binding,) = merged.bindings
    assert binding.contact == "sip:alice@192.0.2.10"
    assert merged.events == (
        BindingRemoved(binding=first.bindings[1], reason=RemovalReason.REPLACED),
        BindingRefreshed(binding=binding, previous=first.bindings[0]),
    )


def test_lowered_bound_still_lets_stored_bindings_refresh() -> None:
    stored = run(register(*(f"<sip:alice@192.0.2.{i}>" for i in range(10, 14)))).bindings
    policy = RegistrarPolicy(max_bindings_per_aor=2)
    refresh = run(register("<sip:alice@192.0.2.10>", cseq=2), stored, policy=policy)
    assert refresh.response.status == 200
    assert len(refresh.bindings) == 4
    assert (
        run(register("<sip:alice@192.0.2.99>", cseq=3), stored, policy=policy).response.status
        == 503
    )


def test_max_bindings_503_with_retry_after() -> None:
    policy = RegistrarPolicy(max_bindings_per_aor=2)
    full = run(
        register("<sip:alice@192.0.2.10>;expires=100", "<sip:alice@192.0.2.11>"), policy=policy
    )
    assert len(full.bindings) == 2
    more = run(
        register("<sip:alice@192.0.2.12>", cseq=2), full.bindings, now=T0 + 40, policy=policy
    )
    assert more.response.status == 503
    assert more.response.headers.get("retry-after") == "60"
    assert more.bindings == full.bindings
    # Refreshing, or swapping one contact for another, is fine at the bound.
    swap = run(
        register("<sip:alice@192.0.2.10>;expires=0", "<sip:alice@192.0.2.12>", cseq=3),
        full.bindings,
        policy=policy,
    )
    assert swap.response.status == 200
    assert [b.contact for b in swap.bindings] == ["sip:alice@192.0.2.11", "sip:alice@192.0.2.12"]
    # One request cannot register more contacts than the bound either.
    many = run(register(*(f"<sip:alice@192.0.2.{i}>" for i in range(20, 23))), policy=policy)
    assert many.response.status == 503 and many.bindings == ()


def test_address_of_record_canonical_form() -> None:
    def aor(text: str) -> str | None:
        return address_of_record(parse_uri(text))

    assert aor("sip:%61lice@EXAMPLE.com:5070;transport=tcp?Subject=x") == "sip:alice@example.com"
    assert aor("sips:alice@example.com") == "sip:alice@example.com"
    assert aor("sip:null-%00-null@example.com") == "sip:null-%00-null@example.com"
    assert aor("sip:a%20b@[2001:DB8::1]") == "sip:a%20b@[2001:db8::1]"
    assert aor("sip:example.com") == "sip:example.com"
    assert isinstance(parse_uri("tel:+1555"), TelUri)
    assert aor("tel:+1555") is None


def test_caller_bugs_raise() -> None:
    first = run(register("<sip:alice@192.0.2.10>"))
    with pytest.raises(LocalProtocolError):
        run(register(to="sip:bob@example.com"), first.bindings, username="bob")
    options = _parse(bytes(register()).replace(b"REGISTER", b"OPTIONS"))
    with pytest.raises(LocalProtocolError):
        run(options)


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        RegistrarPolicy(min_expires=600, default_expires=300)
    with pytest.raises(ValueError):
        RegistrarPolicy(max_bindings_per_aor=0)


# -- random sequences against a reference model ----------------------------------------------

# Four contacts, each writable in equivalent spellings (§19.1.4): escaped user, host case,
# a parameter present on one side only.
_BASES = [
    ("alice", "pc.example.com", 5060),
    ("alice", "pc.example.com", 5062),
    ("desk", "192.0.2.7", 5060),
    ("zed", "phone.example.net", 5070),
]
_MODEL_POLICY = RegistrarPolicy(
    default_expires=600, min_expires=60, max_expires=3600, max_bindings_per_aor=2
)


def _spell(index: int, variant: int) -> str:
    user, host, port = _BASES[index]
    if variant == 1:
        user = f"%{ord(user[0]):02X}{user[1:]}"
    elif variant == 2:
        host = host.upper()
    suffix = ";foo=bar" if variant == 3 else ""
    return f"sip:{user}@{host}:{port}{suffix}"


def _key(contact: str) -> int:
    uri = parse_uri(contact)
    assert isinstance(uri, SipUri)
    keys = [i for i in range(len(_BASES)) if uri.equivalent(parse_uri(_spell(i, 0)))]
    assert len(keys) == 1
    return keys[0]


@dataclass(frozen=True)
class _Step:
    dt: int
    star: bool
    contacts: tuple[tuple[int, int, str | None], ...]  # (base, spelling, expires param)
    header: str | None
    call_id: str
    cseq: int


_steps = st.builds(
    _Step,
    dt=st.sampled_from([0, 0, 0, 1, 59, 60, 300, 599, 600, 3600]),
    star=st.sampled_from([False] * 9 + [True]),
    contacts=st.lists(
        st.tuples(
            st.integers(0, len(_BASES) - 1),
            st.integers(0, 3),
            st.sampled_from([None, None, None, None, "0", "30", "60", "500", "99999", "abc"]),
        ),
        max_size=3,
    ).map(tuple),
    header=st.sampled_from([None, None, None, "0", "120", "120", "30", "xyz"]),
    call_id=st.sampled_from(["a", "b"]),
    cseq=st.integers(1, 6),
)

_Model = dict[int, tuple[str, int, float]]  # base -> (call_id, cseq, expires_at)


def _model(state: _Model, step: _Step, now: float) -> tuple[int, _Model]:
    """The rules restated over plain keys: what the registrar must answer and store."""
    live = {k: v for k, v in state.items() if v[2] > now}
    policy = _MODEL_POLICY
    header = None if step.header in (None, "xyz") else int(step.header)
    if step.star:
        if step.contacts or header != 0:
            return 400, live
        if any(c == step.call_id and step.cseq <= s for c, s, _ in live.values()):
            return 500, live
        return 200, {}
    grants = []
    for base, _variant, param in step.contacts:
        e = int(param) if param not in (None, "abc") else header
        e = policy.default_expires if e is None else e
        if 0 < e < policy.min_expires:
            return 423, live
        grants.append((base, min(e, policy.max_expires)))
    new = dict(live)
    written: set[int] = set()
    for base, e in grants:
        old = new.get(base)
        if old and base not in written and old[0] == step.call_id and step.cseq <= old[1]:
            return 500, live
        if e == 0:
            new.pop(base, None)
            written.discard(base)
        else:
            new[base] = (step.call_id, step.cseq, now + e)
            written.add(base)
    if len(new) > policy.max_bindings_per_aor and len(new) > len(live):
        return 503, live
    return 200, new


def _request(step: _Step) -> Request:
    contacts = [
        f"<{_spell(base, variant)}>" + ("" if param is None else f";expires={param}")
        for base, variant, param in step.contacts
    ]
    if step.star:
        contacts.insert(0, "*")
    return register(*contacts, call_id=step.call_id, cseq=step.cseq, expires=step.header)


@settings(deadline=None, max_examples=300)
@given(st.lists(_steps, min_size=1, max_size=25))
def test_random_register_sequences_match_the_model(steps: list[_Step]) -> None:
    now = T0
    bindings: tuple[Binding, ...] = ()
    model: _Model = {}
    for step in steps:
        now += step.dt
        status, model = _model(model, step, now)
        outcome = run(_request(step), bindings, now=now, policy=_MODEL_POLICY)
        assert outcome.response.status == status
        bindings = outcome.bindings
        got = {_key(b.contact): (b.call_id, b.cseq, b.expires_at) for b in bindings}
        assert len(got) == len(bindings), "two bindings for one contact"
        assert got == model
        assert len(bindings) <= _MODEL_POLICY.max_bindings_per_aor
        assert all(b.expires_at > now for b in bindings)
        if status == 200:
            assert [(_key(u), int(e or 0)) for u, e in listed(outcome.response)] == [
                (_key(b.contact), b.remaining(now)) for b in bindings
            ]
        for event in outcome.events:
            if isinstance(event, BindingRemoved) and event.reason is RemovalReason.EXPIRED:
                assert event.binding.expires_at <= now


def test_sip_uri_equivalence_of_the_model_spellings() -> None:
    for i in range(len(_BASES)):
        base = parse_uri(_spell(i, 0))
        assert isinstance(base, SipUri)
        assert all(base.equivalent(parse_uri(_spell(i, v))) for v in range(4))
