"""CSRF defences: masked per-session tokens and the Origin / Sec-Fetch-Site check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from collections.abc import Mapping

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from livepages.csrf import CSRF, CSRF_HEADER, origin_allowed

SECRET = bytes(range(32))
SESSION = bytes(range(50, 82))
OTHER_SESSION = bytes(range(90, 122))
URLSAFE = string.ascii_letters + string.digits + "-_"
TOKEN_LENGTH = 86  # base64 of 64 bytes, unpadded

csrf = CSRF(SECRET)
sessions = st.binary(min_size=16, max_size=64)
properties = settings(deadline=None)


def test_header_name() -> None:
    assert CSRF_HEADER == "X-CSRF-Token"


def test_issued_token_verifies() -> None:
    assert csrf.verify(SESSION, csrf.token(SESSION))


def test_token_is_url_safe_and_fixed_length() -> None:
    token = csrf.token(SESSION)
    assert len(token) == TOKEN_LENGTH
    assert set(token) <= set(URLSAFE)


def test_token_is_mask_then_masked_hmac() -> None:
    raw = base64.urlsafe_b64decode(csrf.token(SESSION) + "==")
    mask, masked = raw[:32], raw[32:]
    expected = hmac.digest(SECRET, b"csrf" + SESSION, hashlib.sha256)
    assert bytes(a ^ b for a, b in zip(mask, masked, strict=True)) == expected


def test_every_render_gets_a_different_token_and_old_ones_stay_valid() -> None:
    # BREACH: the bytes differ on every render, in both halves.
    first, second = csrf.token(SESSION), csrf.token(SESSION)
    assert first[:43] != second[:43]
    assert first[43:] != second[43:]
    assert csrf.verify(SESSION, first)
    assert csrf.verify(SESSION, second)
    assert csrf.verify(SESSION, first)  # replay is fine: not single-use


def test_token_of_another_session_is_refused() -> None:
    assert not csrf.verify(OTHER_SESSION, csrf.token(SESSION))


def test_token_under_another_secret_is_refused() -> None:
    assert not CSRF(bytes(32)).verify(SESSION, csrf.token(SESSION))


def _good() -> str:
    return csrf.token(SESSION)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("A" * TOKEN_LENGTH, id="right-length-junk"),
        pytest.param("A" * 1_000_000, id="huge"),
        pytest.param(_good()[:-1], id="truncated"),
        pytest.param(_good() + "A", id="extended"),
        pytest.param(_good() + "==", id="padded"),
        pytest.param(_good()[:-1] + "é", id="non-ascii"),
        pytest.param(_good()[:-1] + "\n", id="newline"),
        pytest.param(" " + _good()[1:], id="space"),
        pytest.param(_good()[:43], id="mask-only"),
        pytest.param(base64.urlsafe_b64encode(bytes(64)).decode().rstrip("="), id="all-zero"),
    ],
)
def test_malformed_tokens_are_refused(token: str | None) -> None:
    assert not csrf.verify(SESSION, token)


def test_unmasked_hmac_alone_is_refused() -> None:
    # The bare HMAC (what an unmasked scheme would send) is not a token. The mask is
    # public, so a zero mask is as good as any other: only the format is required.
    expected = hmac.digest(SECRET, b"csrf" + SESSION, hashlib.sha256)
    bare = base64.urlsafe_b64encode(expected).decode().rstrip("=")
    assert not csrf.verify(SESSION, bare)
    zero_masked = base64.urlsafe_b64encode(bytes(32) + expected).decode().rstrip("=")
    assert csrf.verify(SESSION, zero_masked)


def test_non_canonical_spelling_is_refused() -> None:
    token = _good()
    last = URLSAFE.index(token[-1])
    other = token[:-1] + URLSAFE[last ^ 1]  # a spare bit of the last character
    assert base64.urlsafe_b64decode(other + "==") == base64.urlsafe_b64decode(token + "==")
    assert not csrf.verify(SESSION, other)


@pytest.mark.parametrize("token", [b"bytes", 42])
def test_non_string_tokens_are_refused(token: object) -> None:
    assert not csrf.verify(SESSION, token)  # type: ignore[arg-type]


@pytest.mark.parametrize("session", [b"", bytes(15), "s" * 32])
def test_session_tokens_must_be_16_bytes_or_more(session: bytes) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        csrf.token(session)
    assert not csrf.verify(session, _good())


def test_secret_must_be_32_bytes_or_more() -> None:
    with pytest.raises(ValueError, match="at least 32 are needed"):
        CSRF(bytes(31))
    CSRF(bytes(64))


def test_secret_must_be_bytes() -> None:
    with pytest.raises(TypeError, match="must be bytes, not str"):
        CSRF("s" * 32)  # type: ignore[arg-type]


# Properties


@properties
@given(sessions)
def test_every_issued_token_verifies(session: bytes) -> None:
    assert csrf.verify(session, csrf.token(session))


@properties
@given(sessions, sessions)
def test_a_token_verifies_only_for_its_own_session(session: bytes, other: bytes) -> None:
    assume(session != other)
    assert not csrf.verify(other, csrf.token(session))


@properties
@given(st.one_of(st.text(), st.text(alphabet=URLSAFE, min_size=86, max_size=86)))
def test_random_tokens_never_verify(token: str) -> None:
    assert not csrf.verify(SESSION, token)


@properties
@given(sessions, st.data())
def test_mutated_tokens_never_verify(session: bytes, data: st.DataObject) -> None:
    token = csrf.token(session)
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != token[position]))
    assert not csrf.verify(session, token[:position] + replacement + token[position + 1 :])


@properties
@given(sessions, st.integers(0, 64 * 8 - 1))
def test_bit_flipped_tokens_never_verify(session: bytes, bit: int) -> None:
    raw = bytearray(base64.urlsafe_b64decode(csrf.token(session) + "=="))
    raw[bit // 8] ^= 1 << (bit % 8)
    assert not csrf.verify(session, base64.urlsafe_b64encode(raw).decode().rstrip("="))


# Origin checks

TRUSTED = ("https://admin.example.com",)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        pytest.param({}, True, id="no-browser-headers"),
        pytest.param({"sec-fetch-site": "cross-site"}, False, id="cross-site"),
        pytest.param(
            {"sec-fetch-site": "cross-site", "origin": "https://example.com"},
            False,
            id="cross-site-despite-origin",
        ),
        pytest.param({"sec-fetch-site": "same-origin"}, True, id="same-origin"),
        pytest.param(
            {"sec-fetch-site": "same-origin", "origin": "https://example.com"},
            True,
            id="same-origin-with-origin",
        ),
        pytest.param({"sec-fetch-site": "Same-Origin "}, True, id="same-origin-any-case"),
        pytest.param(
            {"sec-fetch-site": "same-origin", "origin": "https://evil.test"},
            False,
            id="same-origin-contradicted-by-origin",
        ),
        pytest.param({"sec-fetch-site": "same-site"}, False, id="same-site-without-origin"),
        pytest.param(
            {"sec-fetch-site": "same-site", "origin": "https://blog.example.com"},
            False,
            id="same-site-untrusted",
        ),
        pytest.param(
            {"sec-fetch-site": "same-site", "origin": "https://admin.example.com"},
            True,
            id="same-site-trusted",
        ),
        pytest.param({"sec-fetch-site": "none"}, True, id="user-initiated"),
        pytest.param(
            {"sec-fetch-site": "none", "origin": "https://evil.test"},
            False,
            id="user-initiated-foreign-origin",
        ),
        pytest.param({"sec-fetch-site": "sideways"}, False, id="unknown-fetch-site"),
        pytest.param({"sec-fetch-site": ""}, False, id="empty-fetch-site"),
        pytest.param({"origin": "https://example.com"}, True, id="origin"),
        pytest.param({"origin": "HTTPS://Example.COM"}, True, id="origin-any-case"),
        pytest.param({"origin": "https://example.com:443"}, True, id="origin-default-port"),
        pytest.param({"origin": " https://example.com "}, True, id="origin-whitespace"),
        pytest.param({"origin": "https://example.com:8443"}, False, id="origin-other-port"),
        pytest.param({"origin": "http://example.com"}, False, id="origin-plain-http"),
        pytest.param({"origin": "https://example.com.evil.test"}, False, id="origin-suffix"),
        pytest.param({"origin": "https://evil.test"}, False, id="origin-foreign"),
        pytest.param({"origin": "https://example.com/"}, False, id="origin-with-path"),
        pytest.param({"origin": "https://admin.example.com"}, True, id="origin-trusted"),
        pytest.param({"origin": "null"}, False, id="origin-null"),
        pytest.param({"origin": "NULL"}, False, id="origin-null-upper"),
        pytest.param(
            {"sec-fetch-site": "same-origin", "origin": "null"}, False, id="same-origin-null"
        ),
        pytest.param({"origin": ""}, False, id="origin-empty"),
    ],
)
def test_origin_allowed(headers: Mapping[str, str], allowed: bool) -> None:
    assert origin_allowed(headers, "example.com", "https", TRUSTED) is allowed


@pytest.mark.parametrize(
    ("host", "scheme", "origin", "allowed"),
    [
        ("localhost:8000", "http", "http://localhost:8000", True),
        ("localhost:8000", "http", "http://localhost", False),
        ("localhost:8000", "http", "http://localhost:8001", False),
        ("example.com:443", "https", "https://example.com", True),
        ("example.com:80", "http", "http://example.com", True),
        ("example.com:80", "https", "https://example.com", False),
        ("[::1]:8000", "http", "http://[::1]:8000", True),
        ("Example.com", "https", "https://example.com", True),
    ],
)
def test_origin_must_match_host_and_scheme(
    host: str, scheme: str, origin: str, allowed: bool
) -> None:
    assert origin_allowed({"origin": origin}, host, scheme) is allowed


def test_trusted_origins_are_normalised() -> None:
    trusted = ["HTTPS://Admin.Example.com:443"]
    assert origin_allowed({"origin": "https://admin.example.com"}, "example.com", "https", trusted)


@pytest.mark.parametrize(
    "trusted",
    ["admin.example.com", "https://admin.example.com/", "https://*.example.com/x", "null", ""],
)
def test_malformed_trusted_origins_are_a_clear_error(trusted: str) -> None:
    with pytest.raises(ValueError, match=r"scheme://host\[:port\]"):
        origin_allowed({}, "example.com", "https", [trusted])


async def _endpoint(request: Request) -> PlainTextResponse:
    allowed = origin_allowed(request.headers, request.url.netloc, request.url.scheme)
    return PlainTextResponse("ok" if allowed else "refused", 200 if allowed else 403)


@pytest.mark.anyio
async def test_origin_check_reads_starlette_headers() -> None:
    app = Starlette(routes=[Route("/act", _endpoint, methods=["POST"])])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://example.com") as client:
        same = await client.post("/act", headers={"Origin": "https://example.com"})
        cross = await client.post("/act", headers={"Sec-Fetch-Site": "cross-site"})
        foreign = await client.post("/act", headers={"Origin": "https://evil.test"})
        plain = await client.post("/act")
    assert (same.status_code, cross.status_code, foreign.status_code) == (200, 403, 403)
    assert plain.status_code == 200
