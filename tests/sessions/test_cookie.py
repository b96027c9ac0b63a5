"""The session cookie codec: round trips, rotation, and refusal of anything not issued."""

from __future__ import annotations

import base64
import math
import string
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from livepages.sessions.cookie import (
    KEY_SIZE,
    TOKEN_SIZE,
    CookieCodec,
    SealedToken,
    b64decode,
    b64encode,
    generate_key,
    generate_token,
)

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(100, 132))
URLSAFE = string.ascii_letters + string.digits + "-_"
VALUE_LENGTH = 94  # base64 of 1 + 12 + (1 + 8 + 32) + 16 bytes, unpadded
SEALED_SIZE = 70
OLD_VALUE_LENGTH = 82  # version 1: base64 of 1 + 12 + 32 + 16 bytes
ISSUED_AT = 1_700_000_000.5

codec = CookieCodec([OLD_KEY])
rotated = CookieCodec([NEW_KEY, OLD_KEY])
new_only = CookieCodec([NEW_KEY])

tokens = st.builds(
    SealedToken,
    token=st.binary(min_size=TOKEN_SIZE, max_size=TOKEN_SIZE),
    stored=st.booleans(),
    issued_at=st.floats(allow_nan=False, allow_infinity=False),
)
properties = settings(deadline=None)


def fresh(*, stored: bool = False) -> SealedToken:
    """What a new session's cookie seals."""
    return SealedToken(generate_token(), stored=stored, issued_at=ISSUED_AT)


@pytest.mark.parametrize("stored", [False, True])
def test_round_trip(stored: bool) -> None:
    token = fresh(stored=stored)
    assert codec.decode(codec.encode(token)) == token


def test_values_are_url_safe_and_fixed_length() -> None:
    value = codec.encode(fresh())
    assert len(value) == VALUE_LENGTH
    assert set(value) <= set(URLSAFE)


def test_each_encoding_uses_a_fresh_nonce() -> None:
    token = fresh()
    first, second = codec.encode(token), codec.encode(token)
    assert first != second
    assert codec.decode(first) == codec.decode(second) == token


def test_generated_keys_and_tokens_are_random_32_bytes() -> None:
    assert len(generate_key()) == KEY_SIZE == 32
    assert len(generate_token()) == TOKEN_SIZE == 32
    assert generate_key() != generate_key()
    assert generate_token() != generate_token()


def test_rotation_new_key_encodes_old_key_still_decodes() -> None:
    token = fresh()
    old_value = codec.encode(token)
    new_value = rotated.encode(token)
    assert rotated.decode(old_value) == token
    assert rotated.decode(new_value) == token
    assert new_only.decode(new_value) == token  # sealed with the first key
    assert codec.decode(new_value) is None


def test_removed_key_no_longer_decodes() -> None:
    assert new_only.decode(codec.encode(fresh())) is None


def test_value_is_bound_to_the_cookie_name() -> None:
    value = codec.encode(fresh())
    assert codec.name == "livepages_session"
    assert CookieCodec([OLD_KEY], name="other").decode(value) is None


def _issued() -> str:
    return codec.encode(fresh())


def _flip(value: str, bit: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(value + "=="))
    raw[bit // 8] ^= 1 << (bit % 8)
    return b64encode(bytes(raw))


@pytest.mark.parametrize(
    "make_bad",
    [
        pytest.param(lambda: "", id="empty"),
        pytest.param(lambda: "A" * VALUE_LENGTH, id="right-length-junk"),
        pytest.param(lambda: "A" * 1_000_000, id="huge"),
        pytest.param(lambda: _issued()[:-1], id="truncated"),
        pytest.param(lambda: _issued() + "A", id="extended"),
        pytest.param(lambda: _issued() + "==", id="padded"),
        pytest.param(lambda: _issued()[:-2] + "==", id="padding-inside"),
        pytest.param(lambda: _issued()[:-1] + "\n", id="newline"),
        pytest.param(lambda: " " + _issued()[1:], id="space"),
        pytest.param(lambda: _issued()[:-1] + "é", id="non-ascii"),
        pytest.param(lambda: _issued()[:-1] + "٣", id="non-ascii-digit"),
        pytest.param(lambda: _issued()[:-1] + "\udcff", id="lone-surrogate"),
        pytest.param(lambda: _issued()[:-1] + ".", id="bad-character"),
        pytest.param(lambda: _flip(_issued(), 0), id="version-bit"),
        pytest.param(lambda: _flip(_issued(), 8 + 5), id="nonce-bit"),
        pytest.param(lambda: _flip(_issued(), 8 * 20), id="ciphertext-bit"),
        pytest.param(lambda: _flip(_issued(), 8 * (SEALED_SIZE - 1) + 7), id="tag-bit"),
    ],
)
def test_bad_values_decode_to_none(make_bad: Callable[[], str]) -> None:
    assert codec.decode(make_bad()) is None


@pytest.mark.parametrize("value", [None, b"bytes", 42])
def test_non_strings_decode_to_none(value: object) -> None:
    assert codec.decode(value) is None  # type: ignore[arg-type]


def test_standard_alphabet_spelling_is_refused() -> None:
    # The lenient stdlib decoder reads "+" and "/" like "-" and "_": refuse them.
    value = next(v for v in iter(_issued, None) if "-" in v or "_" in v)
    respelled = value.replace("-", "+").replace("_", "/")
    assert base64.urlsafe_b64decode(respelled + "==") == base64.urlsafe_b64decode(value + "==")
    assert codec.decode(respelled) is None


def test_non_canonical_last_character_is_refused() -> None:
    # The last character carries 2 bits of data and 4 spare bits; setting a spare
    # bit gives another spelling of the same bytes.
    value = _issued()
    other = value[:-1] + URLSAFE[URLSAFE.index(value[-1]) ^ 1]
    assert base64.urlsafe_b64decode(other + "==") == base64.urlsafe_b64decode(value + "==")
    assert codec.decode(other) is None


def _sealed_by_hand(version: int, plaintext: bytes) -> str:
    header = bytes([version])
    nonce = bytes(12)
    sealed = AESGCM(OLD_KEY).encrypt(nonce, plaintext, header + b"livepages_session")
    return b64encode(header + nonce + sealed)


def test_the_format_is_as_documented() -> None:
    token = generate_token()
    plaintext = b"\x00" + struct.pack(">d", 123.5) + token
    assert codec.decode(_sealed_by_hand(2, plaintext)) == SealedToken(token, False, 123.5)
    plaintext = b"\x01" + struct.pack(">d", ISSUED_AT) + token
    assert codec.decode(_sealed_by_hand(2, plaintext)) == SealedToken(token, True, ISSUED_AT)


def test_version_1_cookies_still_open_as_stored_sessions() -> None:
    token = generate_token()
    assert codec.decode(_sealed_by_hand(1, token)) == SealedToken(token, True, 0.0)
    assert rotated.decode(_sealed_by_hand(1, token)) == SealedToken(token, True, 0.0)
    assert new_only.decode(_sealed_by_hand(1, token)) is None


def test_unknown_version_is_refused_even_if_authentic() -> None:
    plaintext = b"\x00" + struct.pack(">d", ISSUED_AT) + generate_token()
    assert codec.decode(_sealed_by_hand(3, plaintext)) is None
    assert codec.decode(_sealed_by_hand(1, plaintext)) is None  # a version 2 body


def test_an_unknown_stored_flag_is_refused_even_if_authentic() -> None:
    plaintext = b"\x02" + struct.pack(">d", ISSUED_AT) + generate_token()
    assert codec.decode(_sealed_by_hand(2, plaintext)) is None


@pytest.mark.parametrize(("version", "size"), [(1, 31), (1, 33), (2, 40), (2, 42)])
def test_wrong_size_plaintext_is_refused(version: int, size: int) -> None:
    assert codec.decode(_sealed_by_hand(version, bytes(size))) is None


@pytest.mark.parametrize("token", [b"", bytes(31), bytes(33), "x" * 32])
def test_encode_refuses_tokens_that_are_not_32_bytes(token: bytes) -> None:
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        codec.encode(SealedToken(token, stored=False, issued_at=ISSUED_AT))


@pytest.mark.parametrize("issued_at", [math.nan, math.inf, -math.inf])
def test_encode_refuses_a_start_that_is_not_a_time(issued_at: float) -> None:
    with pytest.raises(ValueError, match="finite time"):
        codec.encode(SealedToken(generate_token(), stored=False, issued_at=issued_at))


def test_keys_are_required() -> None:
    with pytest.raises(ValueError, match="at least one cookie key"):
        CookieCodec([])


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33, 64])
def test_keys_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match=f"cookie key 1 is {size} bytes; AES-256 needs exactly 32"):
        CookieCodec([OLD_KEY, bytes(size)])


@pytest.mark.parametrize("key", ["k" * 32, bytearray(32), None])
def test_keys_must_be_bytes(key: object) -> None:
    with pytest.raises(TypeError, match="cookie key 0 must be bytes"):
        CookieCodec([key])  # type: ignore[list-item]


@pytest.mark.parametrize("keys", [OLD_KEY, bytearray(OLD_KEY), "k" * 32])
def test_a_single_key_is_not_a_key_list(keys: object) -> None:
    with pytest.raises(TypeError, match="sequence of keys"):
        CookieCodec(keys)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "sessión", 'a"b'])
def test_cookie_name_must_be_a_token(name: str) -> None:
    with pytest.raises(ValueError, match="invalid cookie name"):
        CookieCodec([OLD_KEY], name=name)


def test_b64decode_checks_size() -> None:
    assert b64decode(b64encode(b"abc"), 3) == b"abc"
    assert b64decode(b64encode(b"abc"), 4) is None
    assert b64decode(b64encode(b""), 0) == b""


# Properties


@properties
@given(tokens)
def test_every_issued_token_round_trips(token: SealedToken) -> None:
    assert codec.decode(codec.encode(token)) == token
    assert rotated.decode(codec.encode(token)) == token
    assert new_only.decode(rotated.encode(token)) == token


@properties
@given(tokens)
def test_removed_key_never_decodes(token: SealedToken) -> None:
    assert new_only.decode(codec.encode(token)) is None
    assert codec.decode(new_only.encode(token)) is None


@properties
@given(tokens)
def test_only_the_first_key_s_cookies_are_current(token: SealedToken) -> None:
    assert rotated.is_current(rotated.encode(token))
    assert not rotated.is_current(codec.encode(token))  # an earlier key's: seal it again
    assert codec.is_current(codec.encode(token))  # one key: whatever opens is current


@properties
@given(st.text())
def test_random_text_is_never_current(text: str) -> None:
    assert rotated.is_current(text) is False


@properties
@given(st.text())
def test_random_text_never_decodes(text: str) -> None:
    assert codec.decode(text) is None


@properties
@given(st.text(alphabet=URLSAFE, min_size=VALUE_LENGTH, max_size=VALUE_LENGTH))
def test_random_well_formed_values_never_decode(text: str) -> None:
    assert codec.decode(text) is None


@properties
@given(st.text(alphabet=URLSAFE, min_size=OLD_VALUE_LENGTH, max_size=OLD_VALUE_LENGTH))
def test_random_values_of_the_old_length_never_decode(text: str) -> None:
    assert codec.decode(text) is None


@properties
@given(tokens, st.data())
def test_mutated_values_never_decode(token: SealedToken, data: st.DataObject) -> None:
    value = codec.encode(token)
    position = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(st.characters().filter(lambda c: c != value[position]))
    assert codec.decode(value[:position] + replacement + value[position + 1 :]) is None


@properties
@given(tokens, st.integers(0, SEALED_SIZE * 8 - 1))
def test_bit_flipped_values_never_decode(token: SealedToken, bit: int) -> None:
    assert codec.decode(_flip(codec.encode(token), bit)) is None


@properties
@given(tokens, st.data())
def test_truncated_or_extended_values_never_decode(token: SealedToken, data: st.DataObject) -> None:
    value = codec.encode(token)
    cut = data.draw(st.integers(1, len(value) - 1))
    assert codec.decode(value[:cut]) is None
    assert codec.decode(value[cut:]) is None
    assert codec.decode(value + data.draw(st.text(min_size=1))) is None


@properties
@given(tokens, st.sampled_from(["other", "livepages_session2", "LIVEPAGES_SESSION"]))
def test_values_never_decode_under_another_name(token: SealedToken, name: str) -> None:
    assert CookieCodec([OLD_KEY], name=name).decode(codec.encode(token)) is None
