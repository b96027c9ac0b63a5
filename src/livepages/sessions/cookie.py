"""The session cookie: a random token, sealed with AES-256-GCM.

The cookie carries the session's secret token, whether the session was stored
when the cookie was sealed, and when the session started; everything else lives
server-side in a :class:`~livepages.sessions.store.SessionStore`. Sealing means a
cookie cannot be forged or altered, and binding the cookie name (and the format
version) as associated data means a sealed value cannot be replayed under another
cookie name.

Wire format, version 2 (URL-safe base64, no padding)::

    version (1 byte, 2) || nonce (12 bytes) || AES-256-GCM(plaintext) (41 + 16 bytes)
    plaintext = stored (1 byte, 0 or 1) || issued_at (8 bytes, IEEE 754 double,
                big-endian) || token (32 bytes)

Version 1 sealed the token alone (``AES-256-GCM(token)``, 32 + 16 bytes); it still
opens, as a stored session of unknown start (every version 1 cookie had a record),
until the last of them expires.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_SIZE",
    "TOKEN_SIZE",
    "CookieCodec",
    "SealedToken",
    "b64decode",
    "b64encode",
    "generate_key",
    "generate_token",
]

#: Bytes in a cookie key (AES-256).
KEY_SIZE = 32
#: Bytes in a session token (256 bits of randomness).
TOKEN_SIZE = 32

_VERSION = 2
_OLD_VERSION = 1
_NONCE_SIZE = 12  # 96 bits: the size GCM is specified for.
_TAG_SIZE = 16
_FIELDS = struct.Struct(">?d")  # stored, issued_at
_PLAINTEXT_SIZES = {_VERSION: _FIELDS.size + TOKEN_SIZE, _OLD_VERSION: TOKEN_SIZE}

_URLSAFE_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
# RFC 6265 cookie-name (an RFC 7230 token).
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def generate_key() -> bytes:
    """Return a new random cookie key (32 bytes, for :class:`CookieCodec`)."""
    return secrets.token_bytes(KEY_SIZE)


def generate_token() -> bytes:
    """Return a new random session token (32 bytes)."""
    return secrets.token_bytes(TOKEN_SIZE)


def b64encode(data: bytes) -> str:
    """Encode ``data`` as URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str, size: int) -> bytes | None:
    """Decode exactly what :func:`b64encode` produces for ``size`` bytes, else ``None``.

    Strict on purpose: the standard decoder skips unknown characters, accepts
    ``+``/``/`` next to ``-``/``_`` and ignores the spare bits of the last character,
    so several strings would decode to the same bytes. Here only the canonical
    encoding is accepted, and the length is checked before any work is done.
    """
    if not isinstance(text, str) or len(text) != _encoded_length(size):
        return None
    if not _URLSAFE_ALPHABET.fullmatch(text):
        return None
    try:  # the checks above rule errors out; kept because this must never raise
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    if b64encode(data) != text:
        return None
    return data


def _encoded_length(size: int) -> int:
    return (size * 4 + 2) // 3


@dataclass(frozen=True, slots=True)
class SealedToken:
    """What a session cookie holds.

    ``stored`` says whether the session's record was in the store when the cookie
    was sealed: a stored session whose record is gone was closed or expired, while
    a guest's session is kept in the cookie alone until something is saved into it.
    ``issued_at`` is when the session started (Unix time; 0.0 for a version 1
    cookie, which is always ``stored``).
    """

    token: bytes
    stored: bool
    issued_at: float


class CookieCodec:
    """Seals session tokens into cookie values and opens them again.

    ``keys[0]`` seals; every key opens, so a key can be rotated in by putting it
    first while older keys still read the cookies already out there. Removing a
    key invalidates the cookies it sealed.
    """

    def __init__(self, keys: Sequence[bytes], *, name: str = "livepages_session") -> None:
        if isinstance(keys, (bytes, bytearray, str)):
            raise TypeError("keys must be a sequence of keys, e.g. [key], not a single key")
        if not keys:
            raise ValueError("at least one cookie key is required (see generate_key())")
        for index, key in enumerate(keys):
            if not isinstance(key, bytes):
                raise TypeError(f"cookie key {index} must be bytes, not {type(key).__name__}")
            if len(key) != KEY_SIZE:
                raise ValueError(
                    f"cookie key {index} is {len(key)} bytes; AES-256 needs exactly {KEY_SIZE}"
                    " (see generate_key())"
                )
        if not isinstance(name, str) or not _COOKIE_NAME.fullmatch(name):
            raise ValueError(f"invalid cookie name {name!r}")
        self._name = name
        self._name_bytes = name.encode("ascii")
        self._ciphers = [AESGCM(key) for key in keys]

    @property
    def name(self) -> str:
        """The cookie name that sealed values are bound to."""
        return self._name

    def encode(self, sealed: SealedToken) -> str:
        """Seal ``sealed`` (its token is 32 bytes) with the first key into a cookie value."""
        token = sealed.token
        if not isinstance(token, bytes) or len(token) != TOKEN_SIZE:
            raise ValueError(f"a session token is exactly {TOKEN_SIZE} bytes")
        if not math.isfinite(sealed.issued_at):
            raise ValueError(f"issued_at must be a finite time, not {sealed.issued_at!r}")
        plaintext = _FIELDS.pack(sealed.stored, sealed.issued_at) + token
        nonce = secrets.token_bytes(_NONCE_SIZE)
        header = bytes([_VERSION])
        ciphertext = self._ciphers[0].encrypt(nonce, plaintext, header + self._name_bytes)
        return b64encode(header + nonce + ciphertext)

    def decode(self, value: str) -> SealedToken | None:
        """Open a cookie value; ``None`` if it is not one this codec sealed. Never raises."""
        for version, size in _PLAINTEXT_SIZES.items():
            raw = b64decode(value, 1 + _NONCE_SIZE + size + _TAG_SIZE)
            if raw is not None and raw[0] == version:
                plaintext = self._open(raw)
                return None if plaintext is None else _parse(version, plaintext)
        return None

    def is_current(self, value: str) -> bool:
        """Whether the first key sealed ``value``: False for a cookie that only an earlier
        key opens, which is worth sealing again before that key is retired. Never raises."""
        if len(self._ciphers) == 1:
            return True  # (no earlier keys: a cookie that opens was sealed by this one)
        for version, size in _PLAINTEXT_SIZES.items():
            raw = b64decode(value, 1 + _NONCE_SIZE + size + _TAG_SIZE)
            if raw is not None and raw[0] == version:
                return self._open(raw, self._ciphers[:1]) is not None
        return False

    def _open(self, raw: bytes, ciphers: Sequence[AESGCM] | None = None) -> bytes | None:
        nonce, ciphertext = raw[1 : 1 + _NONCE_SIZE], raw[1 + _NONCE_SIZE :]
        for cipher in self._ciphers if ciphers is None else ciphers:
            try:
                return cipher.decrypt(nonce, ciphertext, raw[:1] + self._name_bytes)
            except InvalidTag:
                continue
        return None


def _parse(version: int, plaintext: bytes) -> SealedToken | None:
    if version == _OLD_VERSION:
        return SealedToken(plaintext, stored=True, issued_at=0.0)
    if plaintext[0] > 1:  # struct reads any non-zero byte as True: only 0 and 1 are ours
        return None
    stored, issued_at = _FIELDS.unpack_from(plaintext)
    return SealedToken(plaintext[_FIELDS.size :], stored=stored, issued_at=issued_at)
