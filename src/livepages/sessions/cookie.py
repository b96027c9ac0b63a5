"""The session cookie: a random token, sealed with AES-256-GCM.

The cookie carries only the session's secret token; everything else lives
server-side in a :class:`~livepages.sessions.store.SessionStore`. Sealing the token
means a cookie cannot be forged or altered, and binding the cookie name as
associated data means a sealed value cannot be replayed under another cookie name.

Wire format (URL-safe base64, no padding)::

    version (1 byte) || nonce (12 bytes) || AES-256-GCM(token) (32 + 16 bytes)
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEY_SIZE",
    "TOKEN_SIZE",
    "CookieCodec",
    "b64decode",
    "b64encode",
    "generate_key",
    "generate_token",
]

#: Bytes in a cookie key (AES-256).
KEY_SIZE = 32
#: Bytes in a session token (256 bits of randomness).
TOKEN_SIZE = 32

_VERSION = 1
_NONCE_SIZE = 12  # 96 bits: the size GCM is specified for.
_TAG_SIZE = 16
_SEALED_SIZE = 1 + _NONCE_SIZE + TOKEN_SIZE + _TAG_SIZE

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
        self._ciphers = [AESGCM(key) for key in keys]
        self._header = bytes([_VERSION])
        self._associated_data = self._header + name.encode("ascii")

    @property
    def name(self) -> str:
        """The cookie name that sealed values are bound to."""
        return self._name

    def encode(self, token: bytes) -> str:
        """Seal ``token`` (32 bytes) with the first key into a cookie value."""
        if not isinstance(token, bytes) or len(token) != TOKEN_SIZE:
            raise ValueError(f"a session token is exactly {TOKEN_SIZE} bytes")
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = self._ciphers[0].encrypt(nonce, token, self._associated_data)
        return b64encode(self._header + nonce + sealed)

    def decode(self, value: str) -> bytes | None:
        """Open a cookie value; ``None`` if it is not one this codec sealed. Never raises."""
        raw = b64decode(value, _SEALED_SIZE)
        if raw is None or raw[:1] != self._header:
            return None
        nonce, sealed = raw[1 : 1 + _NONCE_SIZE], raw[1 + _NONCE_SIZE :]
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(nonce, sealed, self._associated_data)
            except InvalidTag:
                continue
        return None
