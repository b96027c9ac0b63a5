"""Cross-site request forgery defences: masked tokens and Origin checks.

Every non-GET action must pass both:

* :func:`origin_allowed`: the browser's ``Sec-Fetch-Site`` and ``Origin`` headers
  must not say the request comes from another site;
* :meth:`CSRF.verify`: the request carries, in the ``X-CSRF-Token`` header
  (:data:`CSRF_HEADER`), a token rendered into the page for this session.

Tokens are masked afresh on every render: ``mask || mask XOR HMAC(secret, session)``.
The secret part never appears twice in the same form, so a compressed response
does not leak it to a BREACH-style length oracle, yet every token rendered for a
session stays valid for the whole session (pages may be old; tokens are not
single-use).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Mapping
from typing import Protocol

from livepages.errors import Forbidden
from livepages.protocol import CSRF_HEADER
from livepages.sessions.cookie import b64decode, b64encode

__all__ = ["CSRF", "CSRF_HEADER", "CSRFError", "origin_allowed", "trusted_origins"]


_SIZE = 32  # bytes of HMAC-SHA256 output, and of the mask
_MIN_SECRET_SIZE = 32
_MIN_SESSION_TOKEN_SIZE = 16
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_ORIGIN = re.compile(r"(https?)://[^/?#\s@]+")


class CSRFError(Forbidden):
    """A write without a valid CSRF token or from another site: always a real 403."""


class CSRF:
    """Issues and checks per-session CSRF tokens keyed by ``secret`` (>= 32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes):
            raise TypeError(f"the CSRF secret must be bytes, not {type(secret).__name__}")
        if len(secret) < _MIN_SECRET_SIZE:
            raise ValueError(
                f"the CSRF secret is {len(secret)} bytes; at least {_MIN_SECRET_SIZE} are needed"
            )
        self._secret = secret

    def token(self, session_token: bytes) -> str:
        """Return a fresh masked token for the session whose secret token is given.

        Raises ``ValueError`` for a token shorter than 16 bytes: a token shared by
        all session-less visitors would be one an attacker could fetch and reuse.
        """
        if not isinstance(session_token, bytes) or len(session_token) < _MIN_SESSION_TOKEN_SIZE:
            raise ValueError(
                f"CSRF tokens need a session token of at least {_MIN_SESSION_TOKEN_SIZE} bytes"
            )
        mask = secrets.token_bytes(_SIZE)
        return b64encode(mask + _xor(mask, self._unmasked(session_token)))

    def verify(self, session_token: bytes, token: str | None) -> bool:
        """Whether ``token`` was issued by :meth:`token` for this session. Never raises."""
        if not isinstance(session_token, bytes) or len(session_token) < _MIN_SESSION_TOKEN_SIZE:
            return False
        raw = b64decode(token, 2 * _SIZE) if token is not None else None
        if raw is None:
            return False
        unmasked = _xor(raw[:_SIZE], raw[_SIZE:])
        return hmac.compare_digest(unmasked, self._unmasked(session_token))

    def _unmasked(self, session_token: bytes) -> bytes:
        return hmac.digest(self._secret, b"csrf" + session_token, hashlib.sha256)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def origin_allowed(
    headers: Mapping[str, str],
    host: str,
    scheme: str,
    trusted_origins: Collection[str] = (),
) -> bool:
    """Whether a state-changing request may come from where its headers say it does.

    ``headers`` has lower-case keys; ``host`` (the ``Host`` header) and ``scheme``
    are how the client reached this app, so behind a TLS-terminating proxy pass the
    public scheme. ``trusted_origins`` are other origins allowed to send actions,
    written ``scheme://host[:port]`` (exact, no wildcards).

    * ``Sec-Fetch-Site: cross-site`` is refused; ``same-site`` (a sibling
      subdomain, which may be less trusted) is refused unless its ``Origin`` is
      trusted; ``same-origin`` and ``none`` (typed by the user) pass on to the
      Origin check. Unknown values are refused.
    * An ``Origin`` header, when present, must be this app's origin or a trusted one
      (``Origin: null``, sent from sandboxed or privacy-sensitive contexts, is refused).
    * A request with neither header is not from a browser (which always sends one
      of them on a cross-origin write), so it is allowed.
    """
    trusted = {_normalise_trusted(origin) for origin in trusted_origins}
    site = headers.get("sec-fetch-site")
    origin = headers.get("origin")
    if origin is not None:
        origin = _normalise(origin.strip())
        if origin == "null":
            return False
    if site is not None:
        site = site.strip().lower()
        if site == "same-site":
            return origin is not None and origin in trusted
        if site not in ("same-origin", "none"):
            return False
    if origin is None:
        return True
    return origin == _normalise(f"{scheme}://{host}") or origin in trusted


def _normalise(origin: str) -> str:
    # Scheme and host are case-insensitive, and a default port may or may not be
    # written; anything that is not an origin comes back as it is and matches nothing.
    origin = origin.lower()
    match = _ORIGIN.fullmatch(origin)
    if match is None:
        return origin
    default_port = _DEFAULT_PORTS[match.group(1)]
    return origin.removesuffix(default_port)


def _normalise_trusted(origin: str) -> str:
    if not _ORIGIN.fullmatch(origin.lower()):
        raise ValueError(f"a trusted origin is written scheme://host[:port], not {origin!r}")
    return _normalise(origin)


class _HasTrustedOrigins(Protocol):
    @property
    def trusted_origins(self) -> Collection[str]: ...


def trusted_origins(*sources: _HasTrustedOrigins | None) -> frozenset[str]:
    """The trusted origins of the app's settings and session manager, checked once.

    A malformed origin is a ``ValueError`` at start-up, not a refused action later.
    """
    found = (
        origin for source in sources if source is not None for origin in source.trusted_origins
    )
    return frozenset(_normalise_trusted(origin) for origin in found)
