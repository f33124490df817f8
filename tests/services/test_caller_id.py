"""Caller ID from P-Asserted-Identity and From: RFC 3325 trust, RFC 3323 privacy, E.164."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.services.customers import (
    CallerId,
    caller_id_from_headers,
    extract_caller_id,
    normalize_number,
)
from callcenter.sip import Headers, parse_message


def from_only(value: str, region: str = "GB") -> CallerId:
    return extract_caller_id(from_=value, default_region=region)


@pytest.mark.parametrize(
    ("from_", "region", "e164"),
    [
        ("<sip:+442079460018@trunk.example>;tag=1", "GB", "+442079460018"),
        ('"Alice" <sip:+44-20-7946-0018@trunk.example;user=phone>;tag=1', "GB", "+442079460018"),
        ("<sip:02079460018@trunk.example;user=phone>;tag=1", "GB", "+442079460018"),
        ("sip:02079460018@trunk.example;tag=1", "GB", "+442079460018"),
        ("<sip:004420 7946 0018@x>", "GB", None),  # spaces are not allowed in a SIP URI
        ("<sip:00442079460018@x>", "GB", "+442079460018"),
        ("<sip:%2B442079460018@x>", "GB", "+442079460018"),
        ("<sip:+442079460018;npdi;rn=+442079460000@x;user=phone>", "GB", "+442079460018"),
        ("<tel:+1-212-555-0100>", "GB", "+12125550100"),
        ("<tel:(212)555-0100>", "US", "+12125550100"),
        ("<tel:2125550100>;tag=9", "US", "+12125550100"),
        ("<tel:7946-0018;phone-context=+44-20>", "US", "+442079460018"),
        ("<tel:2079460018;phone-context=example.com>", "GB", "+442079460018"),
        ("<sip:2125550100@pbx>", "US", "+12125550100"),
        ("<sip:2125550100@pbx>", "GB", "+442125550100"),
        ("<sip:1001@pbx.example>;tag=1", "GB", None),  # an extension, not a number
        ("<sip:alice@example.com>;tag=1", "GB", None),
        ("<sip:1-800-FLOWERS@x;user=phone>", "US", None),  # no vanity letters
        ("<sip:example.com>", "GB", None),
        ("<mailto:alice@example.com>", "GB", None),
        ("<tel:*31#>", "GB", None),
    ],
)
def test_from_header_numbers(from_: str, region: str, e164: str | None) -> None:
    caller = from_only(from_, region)
    assert caller == CallerId(
        e164=e164,
        withheld=False,
        raw=from_,
        source="from",
        display_name=caller.display_name,
    )


def test_display_name_is_kept() -> None:
    caller = from_only('"Alice Smith" <sip:+442079460018@x>;tag=1')
    assert caller.display_name == "Alice Smith"


@pytest.mark.parametrize(
    "from_",
    [
        '"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
        "<sip:anonymous@anonymous.invalid>;tag=1",
        '"Anonymous" <sip:Anonymous@trunk.example>;tag=1',
        "<sip:restricted@trunk.example>;tag=1",
        "<sip:withheld@trunk.example>",
        "<sip:+442079460018@anonymous.invalid>",
        '"Anonymous" <sip:+442079460018@trunk.example>;tag=1',
        '"anonymous" <sips:x@trunk.example>',
    ],
)
def test_anonymous_from_is_withheld(from_: str) -> None:
    caller = from_only(from_)
    assert caller.withheld is True
    assert caller.e164 is None
    assert caller.raw == from_


def test_pai_wins_over_from() -> None:
    caller = extract_caller_id(
        p_asserted_identity=["<sip:+442079460018@trunk.example;user=phone>"],
        from_="<sip:+447700900123@trunk.example>;tag=1",
        default_region="GB",
    )
    assert caller.e164 == "+442079460018"
    assert caller.source == "p-asserted-identity"
    assert caller.raw == "<sip:+442079460018@trunk.example;user=phone>"


def test_tel_pai_is_tried_first() -> None:
    caller = extract_caller_id(
        p_asserted_identity=["<sip:bob@trunk.example>", "<tel:+447700900123>"],
        from_="<sip:bob@trunk.example>",
        default_region="GB",
    )
    assert (caller.e164, caller.raw) == ("+447700900123", "<tel:+447700900123>")


def test_untrusted_pai_is_ignored() -> None:
    # RFC 3325 §5: a phone (not a trunk) may write any PAI; only From counts.
    caller = extract_caller_id(
        p_asserted_identity=["<tel:+442079460018>"],
        from_="<sip:+447700900123@pbx>;tag=1",
        default_region="GB",
        trusted=False,
    )
    assert (caller.e164, caller.source) == ("+447700900123", "from")


def test_unreadable_pai_falls_back_to_from() -> None:
    caller = extract_caller_id(
        p_asserted_identity=["<<garbage"],
        from_="<sip:+447700900123@pbx>;tag=1",
        default_region="GB",
    )
    assert (caller.e164, caller.source) == ("+447700900123", "from")


def test_number_free_pai_falls_back_to_from() -> None:
    caller = extract_caller_id(
        p_asserted_identity=["<sip:trunk-gw@carrier.example>"],
        from_="<sip:+447700900123@pbx>;tag=1",
        default_region="GB",
    )
    assert caller.e164 == "+447700900123"


@pytest.mark.parametrize("privacy", ["id", "user", "header", "id;critical", " ID ", "header;user"])
def test_privacy_withholds_the_number(privacy: str) -> None:
    caller = extract_caller_id(
        p_asserted_identity=["<tel:+442079460018>"],
        from_='"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
        privacy=privacy,
        default_region="GB",
    )
    assert caller.withheld is True
    assert caller.e164 is None


def test_privacy_none_or_session_keeps_the_number() -> None:
    for privacy in ("none", "session", ""):
        caller = extract_caller_id(
            p_asserted_identity=["<tel:+442079460018>"],
            from_="<sip:+442079460018@x>",
            privacy=privacy,
            default_region="GB",
        )
        assert (caller.e164, caller.withheld) == ("+442079460018", False)


def test_anonymous_pai_is_withheld_even_with_a_number_in_from() -> None:
    caller = extract_caller_id(
        p_asserted_identity=["<sip:anonymous@anonymous.invalid>"],
        from_="<sip:+442079460018@x>",
        default_region="GB",
    )
    assert (caller.e164, caller.withheld) == (None, True)


def test_no_headers_at_all() -> None:
    assert extract_caller_id(from_=None, default_region="GB") == CallerId(
        e164=None, withheld=False, raw=""
    )


def test_from_a_parsed_invite() -> None:
    invite = parse_message(
        b"INVITE sip:support@cc.example SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        b'From: "Anonymous" <sip:anonymous@anonymous.invalid>;tag=a\r\n'
        b"To: <sip:support@cc.example>\r\n"
        b"Call-ID: 1@192.0.2.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"P-Asserted-Identity: <sip:+442079460018@carrier.example;user=phone>,\r\n"
        b" <tel:+442079460018>\r\n"
        b"Privacy: none\r\n"
        b"Max-Forwards: 70\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    caller = caller_id_from_headers(invite.headers, default_region="GB")
    # The network asserts the number and Privacy allows it; only the From is anonymous,
    # which the anonymous-From rule still honours.
    assert caller.withheld is True
    trusted_from = caller_id_from_headers(
        Headers([("From", "<sip:02079460018@x>"), ("P-Asserted-Identity", "<tel:+447700900123>")]),
        default_region="GB",
    )
    assert trusted_from.e164 == "+447700900123"
    untrusted = caller_id_from_headers(
        Headers([("From", "<sip:02079460018@x>"), ("P-Asserted-Identity", "<tel:+447700900123>")]),
        default_region="GB",
        trusted=False,
    )
    assert untrusted.e164 == "+442079460018"


def test_oversized_and_too_many_values_are_bounded() -> None:
    assert from_only("<sip:+442079460018@" + "x" * 5000 + ">").e164 is None
    assert normalize_number("+44" + "1" * 100, "GB") is None
    headers = Headers([("From", "<sip:+442079460018@x>")] + [("P-Asserted-Identity", "<a:b>")] * 50)
    assert caller_id_from_headers(headers, default_region="GB").e164 == "+442079460018"


def test_unknown_region_reads_only_international_numbers() -> None:
    assert normalize_number("02079460018", "ZZ") is None
    assert normalize_number("02079460018", "") is None
    assert normalize_number("+442079460018", "") == "+442079460018"


# Round trips: any valid number, written the ways people and carriers write it, comes back as
# its one E.164 form.
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@st.composite
def example_numbers(draw: st.DrawFn) -> tuple[str, phonenumbers.PhoneNumber]:
    region = draw(st.sampled_from(REGIONS))
    kind = draw(
        st.sampled_from(
            [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
        )
    )
    number = phonenumbers.example_number_for_type(region, kind)
    if number is None:
        number = phonenumbers.example_number(region)
    assert number is not None
    return region, number


@given(example_numbers())
def test_normalisation_round_trips(example: tuple[str, phonenumbers.PhoneNumber]) -> None:
    region, number = example
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    forms = [
        e164,
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966),
    ]
    for form in forms:
        assert normalize_number(form, region) == e164, form
    # Idempotent: E.164 normalises to itself from any default region.
    assert normalize_number(e164, "US") == e164
    # And through the headers: tel URI and sip URI with user=phone.
    assert from_only(f"<tel:{e164}>", region).e164 == e164
    assert from_only(f"<sip:{e164}@trunk.example;user=phone>;tag=1", region).e164 == e164


@given(st.text(max_size=300), st.text(max_size=300), st.text(max_size=40))
def test_never_raises_on_arbitrary_strings(pai: str, from_: str, privacy: str) -> None:
    caller = extract_caller_id(
        p_asserted_identity=[pai], from_=from_, privacy=privacy, default_region="GB"
    )
    assert caller.e164 is None or normalize_number(caller.e164, "US") == caller.e164
    assert not (caller.withheld and caller.e164 is not None)


_URI_ALPHABET = st.sampled_from(list('+0123456789-.()abcnotyus:@;=<>"%2B ,tel:sip:phone-context'))


@given(st.lists(_URI_ALPHABET, max_size=80).map("".join), st.sampled_from(["GB", "US", "DE", "ZZ"]))
def test_never_raises_on_uri_like_strings(text: str, region: str) -> None:
    for value in (text, f"<sip:{text}@x>", f"<tel:{text}>", f"<sip:{text}@x;user=phone>"):
        caller = extract_caller_id(p_asserted_identity=[value], from_=value, default_region=region)
        assert caller.e164 is None or caller.e164.startswith("+")
    assert normalize_number(text, region) in (None, normalize_number(text, region))
