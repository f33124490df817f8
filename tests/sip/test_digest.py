"""Digest authentication: RFC vectors, header round-trips, the server and client policies."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.sip.digest import (
    MAX_PARAM_VALUE,
    Challenge,
    Credentials,
    DigestAccount,
    DigestClient,
    DigestConfig,
    DigestParseError,
    DigestRefused,
    DigestServer,
    OtherScheme,
    VerifyResult,
    answer_challenge,
    compute_ha1,
    compute_response,
    find_credentials,
    make_cnonce,
    parse_challenge,
    parse_credentials,
)
from callcenter.sip.digest import server as digest_server
from callcenter.sip.errors import LocalProtocolError, SipParseError
from callcenter.sip.limits import Limits

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "pbx.example.com"
T0 = 1_700_000_000.0
FOLD = "\r\n        "  # header folding as printed in the RFCs


def _challenge(value: str) -> Challenge:
    parsed = parse_challenge(value)
    assert isinstance(parsed, Challenge)
    return parsed


def _credentials(value: str) -> Credentials:
    parsed = parse_credentials(value)
    assert isinstance(parsed, Credentials)
    return parsed


# --- RFC vectors -----------------------------------------------------------------------------

RFC2617_CHALLENGE = FOLD.join(
    [
        "Digest",
        'realm="testrealm@host.com",',
        'qop="auth,auth-int",',
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",',
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    ]
)
RFC2617_CREDENTIALS = FOLD.join(
    [
        'Digest username="Mufasa",',
        'realm="testrealm@host.com",',
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",',
        'uri="/dir/index.html",',
        "qop=auth,",
        "nc=00000001,",
        'cnonce="0a4f113b",',
        'response="6629fae49393a05397450978507c4ef1",',
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    ]
)
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_RESPONSES = {
    "MD5": "8ca523f5e9506fed4657c9700eebdbec",
    "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
}


def _rfc7616_challenge(algorithm: str) -> str:
    return FOLD.join(
        [
            "Digest",
            'realm="http-auth@example.org",',
            'qop="auth, auth-int",',
            f"algorithm={algorithm},",
            f'nonce="{RFC7616_NONCE}",',
            f'opaque="{RFC7616_OPAQUE}"',
        ]
    )


def _rfc7616_credentials(algorithm: str) -> str:
    return FOLD.join(
        [
            'Digest username="Mufasa",',
            'realm="http-auth@example.org",',
            'uri="/dir/index.html",',
            f"algorithm={algorithm},",
            f'nonce="{RFC7616_NONCE}",',
            "nc=00000001,",
            f'cnonce="{RFC7616_CNONCE}",',
            "qop=auth,",
            f'response="{RFC7616_RESPONSES[algorithm]}",',
            f'opaque="{RFC7616_OPAQUE}"',
        ]
    )


def test_rfc2617_example_parses_and_computes() -> None:
    ch = _challenge(RFC2617_CHALLENGE)
    assert ch.realm == "testrealm@host.com"
    assert ch.qop == ("auth", "auth-int")
    assert ch.algorithm == "MD5"
    creds = _credentials(RFC2617_CREDENTIALS)
    assert (creds.username, creds.nc, creds.qop, creds.cnonce) == ("Mufasa", 1, "auth", "0a4f113b")
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "Circle Of Life")
    assert compute_response(creds, ha1=ha1, method="GET") == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_example_answered_by_client() -> None:
    account = DigestAccount(
        realm="testrealm@host.com", username="Mufasa", password="Circle Of Life"
    )
    ch = _challenge(RFC2617_CHALLENGE)
    creds = answer_challenge(ch, account, method="GET", uri="/dir/index.html", cnonce="0a4f113b")
    assert creds == _credentials(RFC2617_CREDENTIALS)


def test_rfc2069_example_without_qop() -> None:
    # RFC 2069 §2.4; its printed response is wrong (errata), this is the corrected one.
    creds = Credentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="1949323746fe6a43ef61f9606e7febea",
    )
    ha1 = compute_ha1("Mufasa", "testrealm@host.com", "CircleOfLife")
    assert compute_response(creds, ha1=ha1, method="GET") == creds.response


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_rfc7616_examples(algorithm: str) -> None:
    creds = _credentials(_rfc7616_credentials(algorithm))
    assert creds.algorithm == algorithm
    ha1 = compute_ha1("Mufasa", "http-auth@example.org", "Circle of Life", algorithm)
    assert compute_response(creds, ha1=ha1, method="GET") == RFC7616_RESPONSES[algorithm]

    account = DigestAccount(
        realm="http-auth@example.org", username="Mufasa", password="Circle of Life"
    )
    ch = _challenge(_rfc7616_challenge(algorithm))
    answered = answer_challenge(
        ch, account, method="GET", uri="/dir/index.html", cnonce=RFC7616_CNONCE
    )
    assert answered == creds


def test_rfc7616_client_picks_sha256_whatever_the_order() -> None:
    account = DigestAccount(
        realm="http-auth@example.org", username="Mufasa", password="Circle of Life"
    )
    challenges = [_challenge(_rfc7616_challenge(a)) for a in ("MD5", "SHA-256")]
    client = DigestClient([account])
    creds = client.answer(
        challenges, method="GET", uri="/dir/index.html", host="example.org", cnonce=RFC7616_CNONCE
    )
    assert creds is not None
    assert creds.algorithm == "SHA-256"
    assert creds.response == RFC7616_RESPONSES["SHA-256"]


# --- header values ---------------------------------------------------------------------------


def test_unknown_scheme_rfc4475_regaut01() -> None:
    assert parse_credentials("NoOneKnowsThisScheme opaque-data=here") == OtherScheme(
        scheme="NoOneKnowsThisScheme"
    )
    assert parse_challenge('Basic realm="x"') == OtherScheme(scheme="Basic")
    assert parse_credentials("Bearer") == OtherScheme(scheme="Bearer")


def test_scheme_and_names_are_case_insensitive() -> None:
    ch = _challenge('dIgEsT REALM="r", Nonce="n", ALGORITHM=sha-256, Stale=TRUE, QOP="auth"')
    assert ch == Challenge(realm="r", nonce="n", algorithm="SHA-256", stale=True, qop=("auth",))


def test_canonical_values_round_trip_exactly() -> None:
    challenge = (
        'Digest realm="a \\"quoted\\" \\\\ realm", domain="sip:a.example sip:b.example", '
        'nonce="abc", opaque="", stale=true, algorithm=SHA-256-sess, qop="auth,auth-int", '
        'userhash=true, charset=UTF-8, x-note="two words"'
    )
    parsed = _challenge(challenge)
    assert parsed.realm == 'a "quoted" \\ realm'
    assert parsed.domain == ("sip:a.example", "sip:b.example")
    assert parsed.params == (("charset", "UTF-8"), ("x-note", "two words"))
    assert parsed.to_header_value() == challenge
    credentials = (
        'Digest username="bob", realm="r", nonce="n", uri="sip:r", '
        'response="0123456789abcdef0123456789abcdef", algorithm=MD5, cnonce="c", opaque="o", '
        "qop=auth, nc=0000000a, userhash=true, x=y"
    )
    assert _credentials(credentials).to_header_value() == credentials


def test_lws_and_folds_where_the_grammar_allows() -> None:
    value = 'Digest \t realm \t=\r\n "a\r\n\tb" \t,\r\n nonce= n1 ,algorithm =MD5  '
    assert _challenge(value) == Challenge(realm="a b", nonce="n1")  # a fold inside quotes is SP


def test_raw_bytes_from_surrogateescape_hash_as_the_bytes_that_arrived() -> None:
    # A message decoded with surrogateescape keeps a Latin-1 realm byte as U+DCE9.
    ch = _challenge('Digest realm="caf\udce9", nonce="n"')
    assert ch.realm == "caf\udce9"
    assert compute_ha1("u", ch.realm, "p") == hashlib.md5(b"u:caf\xe9:p").hexdigest()
    assert parse_challenge(ch.to_header_value()) == ch


def test_serialising_refuses_header_injection() -> None:
    with pytest.raises(LocalProtocolError):
        Challenge(realm="r\r\nVia: SIP/2.0/UDP evil", nonce="n").to_header_value()
    with pytest.raises(ValueError):
        DigestServer(SECRET, "r\nx")
    creds = Credentials(username="u", realm="r", nonce="n", uri="u", response="0" * 32, nc=2**32)
    with pytest.raises(LocalProtocolError):
        creds.to_header_value()


def test_find_credentials_picks_our_realm() -> None:
    ours = 'Digest username="u", realm="ours", nonce="n", uri="u", response="' + "0" * 32 + '"'
    theirs = ours.replace('"ours"', '"theirs"')
    found = find_credentials(["Basic abc==", theirs, ours], realm="ours")
    assert found is not None and found.realm == "ours"
    assert find_credentials([theirs], realm="ours") is None


MALFORMED = [
    "",
    "   ",
    '="x"',
    "Digest",
    "Digest   ",
    "Digest,",
    'Digest,realm="r"',
    'Digest realm="r", nonce="n",',
    'Digest realm="r",, nonce="n"',
    'Digest realm="r" nonce="n"',
    'Digest realm "r", nonce="n"',
    'Digest realm=, nonce="n"',
    'Digest realm="r, nonce="n"',
    'Digest realm="r\\',
    'Digest realm="r\\\r\n x", nonce="n"',
    'Digest realm="r\r\nx", nonce="n"',
    'Digest realm="r\nx", nonce="n"',
    'Digest realm="r\x01", nonce="n"',
    'Digest realm="r\x7f", nonce="n"',
    'Digest realm="\ud800", nonce="n"',
    'Digest realm="r", nonce="n", REALM="s"',
    'Digest realm="r", nonce=n;x',
    'Digest realm="r"',
    'Digest nonce="n"',
    'Digest realm="r", nonce="n", qop=""',
    'Digest realm="r", nonce="n", qop="auth,,x"',
    'Digest realm="r", nonce="n", algorithm=""',
]


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_challenges_are_400(value: str) -> None:
    with pytest.raises(DigestParseError) as info:
        parse_challenge(value)
    assert info.value.status == 400


GOOD_CREDS = 'Digest username="u", realm="r", nonce="n", uri="sip:r", response="' + "a" * 32 + '"'


@pytest.mark.parametrize(
    "value",
    [
        GOOD_CREDS.replace('username="u", ', ""),
        GOOD_CREDS.replace('uri="sip:r", ', ""),
        GOOD_CREDS.replace("a" * 32, "a" * 31),
        GOOD_CREDS.replace("a" * 32, "g" * 32),
        GOOD_CREDS + ", algorithm=SHA-256",  # an MD5-sized digest for SHA-256
        GOOD_CREDS + ', qop=auth, cnonce="c"',  # qop without nc
        GOOD_CREDS + ", qop=auth, nc=00000001",  # qop without cnonce
        GOOD_CREDS + ', qop=auth, cnonce="c", nc=1',
        GOOD_CREDS + ', qop=auth, cnonce="c", nc=0000000A',  # 8LHEX is lower case
        GOOD_CREDS + ', qop=auth, cnonce="c", nc=0000000g',
        GOOD_CREDS + ', qop="a b", cnonce="c", nc=00000001',
    ],
)
def test_malformed_credentials_are_400(value: str) -> None:
    with pytest.raises(DigestParseError) as info:
        parse_credentials(value)
    assert info.value.status == 400


def test_bounds_are_checked() -> None:
    assert isinstance(parse_credentials(GOOD_CREDS), Credentials)
    with pytest.raises(DigestParseError):
        parse_credentials(GOOD_CREDS + ", x=" + "y" * 20_000)  # whole field
    with pytest.raises(DigestParseError):
        parse_credentials(GOOD_CREDS, limits=Limits(max_params=4))
    with pytest.raises(DigestParseError):
        parse_credentials(GOOD_CREDS + ', x="' + "y" * (MAX_PARAM_VALUE + 1) + '"')
    with pytest.raises(DigestParseError):
        parse_credentials(GOOD_CREDS + ", x=" + "y" * (MAX_PARAM_VALUE + 1))
    assert isinstance(
        parse_credentials(GOOD_CREDS + ', x="' + "y" * MAX_PARAM_VALUE + '"'), Credentials
    )
    # Hostile shapes near the whole-field bound fail in one pass.
    for junk in (
        "Digest " + "a=b," * 4000,
        'Digest realm="' + '\\"' * 8000,
        "Digest " + "," * 16000,
    ):
        with pytest.raises(DigestParseError):
            parse_challenge(junk)


@given(st.text(max_size=400))
def test_arbitrary_text_raises_only_parse_errors(value: str) -> None:
    for parse in (parse_challenge, parse_credentials):
        try:
            parse(value)
        except DigestParseError as exc:
            assert isinstance(exc, SipParseError) and exc.status == 400


@given(
    st.lists(
        st.sampled_from(
            [
                *("Digest", " ", "\t", "\r\n ", "\r", "\n", ",", "=", '"', "\\", "\x00", "é"),
                *("realm", "nonce", "uri", "response", "nc", "qop", "auth", "00000001", "a" * 32),
            ]
        ),
        max_size=40,
    )
)
def test_grammar_shaped_junk_raises_only_parse_errors(pieces: list[str]) -> None:
    value = "".join(pieces)
    for parse in (parse_challenge, parse_credentials):
        try:
            parse(value)
        except DigestParseError as exc:
            assert exc.status == 400


_TOKENS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-.!%*_+`'~", min_size=1, max_size=12
)
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=30)
_CHALLENGE_NAMES = {"realm", "domain", "nonce", "opaque", "stale", "algorithm", "qop", "userhash"}
_CREDENTIAL_NAMES = {"username", "realm", "nonce", "uri", "response", "algorithm", "cnonce"}
_CREDENTIAL_NAMES |= {"nc", "qop", "opaque", "userhash"}


def _extra_params(reserved: set[str]) -> st.SearchStrategy[tuple[tuple[str, str], ...]]:
    names = _TOKENS.map(str.lower).filter(lambda n: n not in reserved)
    return st.dictionaries(names, _TEXT, max_size=3).map(lambda d: tuple(d.items()))


_ALGORITHMS = st.sampled_from(["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"]) | _TOKENS.filter(
    lambda a: a.lower() not in {"md5", "md5-sess", "sha-256", "sha-256-sess"}
)


@given(
    st.builds(
        Challenge,
        realm=_TEXT,
        nonce=_TEXT,
        algorithm=_ALGORITHMS,
        qop=st.lists(_TOKENS, max_size=3).map(tuple),
        opaque=st.none() | _TEXT,
        stale=st.booleans(),
        domain=st.lists(_TEXT.map(lambda d: d.replace(" ", "").replace("\t", "")).filter(bool)).map(
            tuple
        ),
        userhash=st.booleans(),
        params=_extra_params(_CHALLENGE_NAMES),
    )
)
def test_challenge_round_trips(challenge: Challenge) -> None:
    assert parse_challenge(challenge.to_header_value()) == challenge


@st.composite
def _credentials_strategy(draw: st.DrawFn) -> Credentials:
    algorithm = draw(st.sampled_from(["MD5", "SHA-256-sess"]))
    size = 32 if algorithm == "MD5" else 64
    qop = draw(st.none() | _TOKENS)
    return Credentials(
        username=draw(_TEXT),
        realm=draw(_TEXT),
        nonce=draw(_TEXT),
        uri=draw(_TEXT),
        response=draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=size, max_size=size)),
        algorithm=algorithm,
        cnonce=draw(_TEXT) if qop else draw(st.none() | _TEXT),
        nc=draw(st.integers(0, 0xFFFFFFFF)) if qop else draw(st.none() | st.integers(0, 2**32 - 1)),
        qop=qop,
        opaque=draw(st.none() | _TEXT),
        userhash=draw(st.booleans()),
        params=draw(_extra_params(_CREDENTIAL_NAMES)),
    )


@given(_credentials_strategy())
def test_credentials_round_trip(credentials: Credentials) -> None:
    assert parse_credentials(credentials.to_header_value()) == credentials


# --- server and client -----------------------------------------------------------------------


def _loop(
    server: DigestServer,
    challenges: tuple[Challenge, ...],
    *,
    password: str = "s3cret",
    method: str = "REGISTER",
) -> Credentials:
    """Challenge → header → client → header → server's parser, as on the wire."""
    client = DigestClient([DigestAccount(realm=REALM, username="1001", password=password)])
    received = [_challenge(c.to_header_value()) for c in challenges]
    creds = client.answer(
        received, method=method, uri="sip:pbx.example.com", host=REALM, cnonce=make_cnonce()
    )
    assert creds is not None
    return _credentials(creds.to_header_value())


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"])
def test_full_loop(algorithm: str) -> None:
    config = DigestConfig(algorithms=("SHA-256", "MD5", "SHA-256-sess", "MD5-sess"))
    server = DigestServer(SECRET, REALM, config)
    creds = _loop(server, server.challenge(T0, algorithms=(algorithm,)))
    assert creds.algorithm == algorithm
    assert creds.qop == "auth" and creds.nc == 1
    result = server.verify(
        creds, method="REGISTER", now=T0 + 1, password="s3cret", request_uri="sip:pbx.example.com"
    )
    assert result is VerifyResult.OK
    ha1 = compute_ha1("1001", REALM, "s3cret", algorithm)
    server2 = DigestServer(SECRET, REALM, config)  # fresh replay cache
    assert (
        server2.verify(creds, request_uri=None, method="REGISTER", now=T0 + 2, ha1=ha1)
        is VerifyResult.OK
    )


def test_default_challenges_offer_sha256_then_md5() -> None:
    server = DigestServer(SECRET, REALM)
    challenges = server.challenge(T0)
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert len({c.nonce for c in challenges}) == 1
    assert all(c.qop == ("auth",) and not c.stale and c.realm == REALM for c in challenges)
    assert server.challenge(T0)[0].nonce != challenges[0].nonce  # random part
    creds = _loop(server, challenges)
    assert creds.algorithm == "SHA-256"
    with pytest.raises(ValueError):
        server.challenge(T0, algorithms=("SHA-256-sess",))


def test_stale_nonce_after_expiry() -> None:
    server = DigestServer(SECRET, REALM, DigestConfig(nonce_lifetime=300))
    creds = _loop(server, server.challenge(T0))
    late = T0 + 301
    assert server.verify(
        creds, request_uri=None, method="REGISTER", now=late, password="s3cret"
    ) is (VerifyResult.STALE)
    assert VerifyResult.STALE.stale
    # A wrong password on an old nonce is not stale: the client must not retry silently.
    assert server.verify(creds, request_uri=None, method="REGISTER", now=late, password="nope") is (
        VerifyResult.BAD_RESPONSE
    )
    fresh = server.challenge(late, stale=True)
    assert all(c.stale for c in fresh)
    assert "stale=true" in fresh[0].to_header_value()
    again = _loop(server, fresh)
    assert server.verify(
        again, request_uri=None, method="REGISTER", now=late + 1, password="s3cret"
    ) is (VerifyResult.OK)


def test_tampered_or_foreign_nonces_are_rejected() -> None:
    server = DigestServer(SECRET, REALM)
    nonce = server.challenge(T0)[0].nonce
    assert server.nonce_age(nonce, T0 + 5) == pytest.approx(5)
    flipped = nonce[:10] + ("A" if nonce[10] != "A" else "B") + nonce[11:]
    other_secret = DigestServer(b"x" * 32, REALM).make_nonce(T0)
    other_realm = DigestServer(SECRET, "other.example.com").make_nonce(T0)
    for bad in (flipped, other_secret, other_realm, "", "not a nonce", nonce + "A", "é" * 43):
        assert server.nonce_age(bad, T0) is None
        # The attacker may even answer correctly for the nonce they forged.
        ch = Challenge(realm=REALM, nonce=bad, algorithm="SHA-256", qop=("auth",))
        creds = _loop(server, (ch,))
        assert server.verify(
            creds, request_uri=None, method="REGISTER", now=T0, password="s3cret"
        ) is (VerifyResult.BAD_NONCE)


def test_unknown_user_and_wrong_password_look_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    server = DigestServer(SECRET, REALM)
    creds = _loop(server, server.challenge(T0))
    calls: list[str] = []
    real_h = digest_server._h

    def counting_h(algorithm: str, data: str) -> str:
        calls.append(algorithm)
        return real_h(algorithm, data)

    monkeypatch.setattr(digest_server, "_h", counting_h)
    wrong = server.verify(creds, request_uri=None, method="REGISTER", now=T0, password="wrong")
    wrong_calls = len(calls)
    calls.clear()
    unknown = server.verify(creds, request_uri=None, method="REGISTER", now=T0)
    assert wrong is unknown is VerifyResult.BAD_RESPONSE
    assert len(calls) == wrong_calls  # the dummy digest does the same hashing
    # ...and an unknown user cannot log in with the throwaway password.
    empty = _loop(server, server.challenge(T0), password="")
    assert (
        server.verify(empty, request_uri=None, method="REGISTER", now=T0)
        is VerifyResult.BAD_RESPONSE
    )


def test_replayed_nc_is_refused_and_cache_is_bounded() -> None:
    server = DigestServer(SECRET, REALM, DigestConfig(replay_cache_size=2))
    account = DigestAccount(realm=REALM, username="1001", password="pw")
    client = DigestClient([account])
    ch = server.challenge(T0)[:1]
    first = client.answer(ch, method="INVITE", uri="sip:x@pbx", host=REALM, cnonce="c1")
    second = client.answer(ch, method="INVITE", uri="sip:x@pbx", host=REALM, cnonce="c2")
    assert first is not None and second is not None
    assert (first.nc, second.nc) == (1, 2)
    assert (
        server.verify(first, request_uri=None, method="INVITE", now=T0, password="pw")
        is VerifyResult.OK
    )
    replay = server.verify(first, request_uri=None, method="INVITE", now=T0, password="pw")
    assert replay is VerifyResult.REPLAY and replay.stale
    assert (
        server.verify(second, request_uri=None, method="INVITE", now=T0, password="pw")
        is VerifyResult.OK
    )
    for n in range(3):
        other = client.answer(
            server.challenge(T0 + n), method="INVITE", uri="sip:x@pbx", host=REALM, cnonce="c"
        )
        assert other is not None and other.nc == 1
        assert (
            server.verify(other, request_uri=None, method="INVITE", now=T0, password="pw")
            is VerifyResult.OK
        )
    assert len(server._nc_seen) == 2


def test_forged_nc_does_not_lock_the_user_out() -> None:
    server = DigestServer(SECRET, REALM)
    ch = server.challenge(T0)[:1]
    creds = _loop(server, ch)
    forged = replace(creds, response="0" * 64, nc=0xFFFFFFFF)
    assert server.verify(
        forged, request_uri=None, method="REGISTER", now=T0, password="s3cret"
    ) is (VerifyResult.BAD_RESPONSE)
    assert (
        server.verify(creds, request_uri=None, method="REGISTER", now=T0, password="s3cret")
        is VerifyResult.OK
    )


def test_other_verification_failures() -> None:
    server = DigestServer(SECRET, REALM, DigestConfig(algorithms=("SHA-256",)))
    creds = _loop(server, server.challenge(T0))
    foreign = DigestServer(SECRET, "other.example.com")
    assert foreign.verify(
        creds, request_uri=None, method="REGISTER", now=T0, password="s3cret"
    ) is (VerifyResult.UNKNOWN_REALM)
    assert server.verify(
        creds, method="REGISTER", now=T0, password="s3cret", request_uri="sip:x"
    ) is (VerifyResult.URI_MISMATCH)
    assert server.verify(creds, request_uri=None, method="INVITE", now=T0, password="s3cret") is (
        VerifyResult.BAD_RESPONSE
    )
    md5 = Challenge(realm=REALM, nonce=creds.nonce, algorithm="MD5", qop=("auth",))
    md5_creds = _loop(server, (md5,))  # an algorithm this server does not offer
    assert server.verify(
        md5_creds, request_uri=None, method="REGISTER", now=T0, password="s3cret"
    ) is (VerifyResult.BAD_RESPONSE)
    hashed_user = replace(creds, userhash=True)  # RFC 7616 userhash: never offered, so refused
    assert server.verify(
        hashed_user, request_uri=None, method="REGISTER", now=T0, password="s3cret"
    ) is (VerifyResult.BAD_RESPONSE)
    with pytest.raises(ValueError):
        server.verify(creds, request_uri=None, method="REGISTER", now=T0, password="a", ha1="b")


def test_rfc2069_answers_follow_the_config() -> None:
    lenient = DigestServer(SECRET, REALM)
    strict = DigestServer(SECRET, REALM, DigestConfig(allow_rfc2069=False))
    ch = Challenge(realm=REALM, nonce=lenient.make_nonce(T0), algorithm="MD5")
    creds = _loop(lenient, (ch,))
    assert creds.qop is None and creds.nc is None and creds.cnonce is None
    assert (
        lenient.verify(creds, request_uri=None, method="REGISTER", now=T0, password="s3cret")
        is VerifyResult.OK
    )
    assert strict.verify(creds, request_uri=None, method="REGISTER", now=T0, password="s3cret") is (
        VerifyResult.BAD_RESPONSE
    )


def test_client_refuses_realms_and_hosts_it_has_no_account_for() -> None:
    account = DigestAccount(
        realm=REALM, username="1001", password="pw", hosts=frozenset({"PBX.example.com"})
    )
    client = DigestClient([account])
    evil = Challenge(realm="evil.example.net", nonce="n", qop=("auth",))
    assert client.answer([evil], method="INVITE", uri="sip:x", host=REALM, cnonce="c") is None
    with pytest.raises(DigestRefused):
        answer_challenge(evil, account, method="INVITE", uri="sip:x", cnonce="c")
    ours = Challenge(realm=REALM, nonce="n", qop=("auth",))
    assert client.answer([ours], method="INVITE", uri="sip:x", host="evil.net", cnonce="c") is None
    assert client.answer([ours], method="INVITE", uri="sip:x", host="pbx.EXAMPLE.com", cnonce="c")


def test_client_skips_what_it_cannot_compute() -> None:
    client = DigestClient([DigestAccount(realm=REALM, username="u", password="p")])
    unanswerable = [
        Challenge(realm=REALM, nonce="n", algorithm="SHA-512-256", qop=("auth",)),
        Challenge(realm=REALM, nonce="n", qop=("auth-int",)),
        Challenge(realm=REALM, nonce="n", algorithm="MD5-sess"),  # -sess needs qop's cnonce
    ]
    assert client.answer(unanswerable, method="M", uri="u", host="h", cnonce="c") is None
    md5 = Challenge(realm=REALM, nonce="n", qop=("auth-int", "auth"))
    creds = client.answer([*unanswerable, md5], method="M", uri="u", host="h", cnonce="c")
    assert creds is not None and creds.algorithm == "MD5" and creds.qop == "auth"
    for ch in unanswerable:
        with pytest.raises(DigestRefused):
            answer_challenge(
                ch,
                DigestAccount(realm=REALM, username="u", password="p"),
                method="M",
                uri="u",
                cnonce="c",
            )


def test_client_counts_nc_per_nonce_in_a_bounded_table() -> None:
    client = DigestClient([DigestAccount(realm=REALM, username="u", password="p")], max_nonces=2)
    counts = []
    for nonce in ("a", "a", "b", "a", "c", "b"):
        ch = Challenge(realm=REALM, nonce=nonce, qop=("auth",))
        creds = client.answer([ch], method="M", uri="u", host="h", cnonce="c")
        assert creds is not None
        counts.append(creds.nc)
    assert counts == [1, 2, 1, 3, 1, 1]  # "b" was the oldest when "c" arrived


def test_cnonce_and_config_validation() -> None:
    a, b = make_cnonce(), make_cnonce()
    assert a != b and len(a) == 32 and all(c in "0123456789abcdef" for c in a)
    with pytest.raises(ValueError):
        DigestServer(b"short", REALM)
    with pytest.raises(ValueError):
        DigestConfig(nonce_lifetime=0)
    with pytest.raises(ValueError):
        DigestConfig(algorithms=())
    with pytest.raises(ValueError):
        DigestConfig(algorithms=("SHA-512",))
    with pytest.raises(ValueError):
        DigestConfig(qop=("auth-int",))
    with pytest.raises(ValueError):
        DigestConfig(qop=(), allow_rfc2069=False)
    with pytest.raises(LocalProtocolError):
        compute_ha1("u", "r", "p", "SHA-512")


def test_a_sniffed_answer_without_qop_is_good_once() -> None:
    # pyVoIP ignores qop; its RFC 2069 answer has no nc, so it may not be replayed.
    server = DigestServer(SECRET, REALM, DigestConfig(qop=()))
    creds = _loop(server, server.challenge(T0), method="INVITE")
    assert creds.qop is None and creds.nc is None
    first = server.verify(creds, method="INVITE", request_uri=None, now=T0 + 1, password="s3cret")
    replay = server.verify(
        creds, method="INVITE", request_uri=None, now=T0 + 240, password="s3cret"
    )
    assert first is VerifyResult.OK
    assert replay is VerifyResult.REPLAY and replay.stale


def test_request_uri_binds_the_answer() -> None:
    server = DigestServer(SECRET, REALM)
    creds = _loop(server, server.challenge(T0), method="INVITE")
    other = server.verify(
        creds, method="INVITE", request_uri="sip:900@pbx.example.com", now=T0, password="s3cret"
    )
    assert other is VerifyResult.URI_MISMATCH
    same = server.verify(
        creds, method="INVITE", request_uri="sip:pbx.example.com", now=T0, password="s3cret"
    )
    assert same is VerifyResult.OK
