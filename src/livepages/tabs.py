"""Tabs: one id per page load, signed so it cannot be forged, with server-side state.

The GET that serves a page issues a tab id; the page's live stream and actions
send it back in the ``X-LP-Tab`` header. The id is random and carries an HMAC
over the id and the session it was issued to, so a client can neither forge a
tab id nor use one that leaked from another session: the HMAC only verifies
with the session id of the request (and only in its one canonical base64url
spelling, so one tab cannot be claimed under a second name). A tab's ``state`` outlives its
stream for a grace period, so a reconnect (a hidden tab shown again, a network
blip) finds it where it was.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import secrets
import time
from typing import Any

from livepages.errors import BadRequest

__all__ = ["Tab", "TabRegistry"]


_ID_BYTES = 12
_MAC_BYTES = 12
#: A tab id as issued: 24 bytes as 32 base64url characters, nothing else. ``+`` and
#: ``/`` (which a lenient decoder maps onto the same bytes) are refused.
_CANONICAL = re.compile(r"[A-Za-z0-9_-]{32}")


class Tab:
    """One browser tab showing one page load. ``state`` is yours to use."""

    __slots__ = ("__weakref__", "id", "last_seen", "state", "streams")

    def __init__(self, tab_id: str) -> None:
        self.id = tab_id
        self.state: dict[str, Any] = {}
        self.streams = 0
        self.last_seen = time.monotonic()

    def __repr__(self) -> str:
        return f"Tab({self.id!r}, streams={self.streams})"


class TabRegistry:
    """Issues and verifies tab ids and keeps tabs alive while they are in use."""

    def __init__(self, keys: list[bytes], grace: float) -> None:
        self._keys = keys  # the first signs; all verify (secret rotation)
        self.grace = grace
        self._tabs: dict[str, Tab] = {}
        self._expiry: asyncio.TimerHandle | None = None

    def issue(self, session: str | None = None) -> str:
        """A fresh tab id, signed for the session ``session`` (None: no session)."""
        raw = secrets.token_bytes(_ID_BYTES)
        return _b64(raw + self._mac(self._keys[0], raw, session))

    def verify(self, tab_id: str | None, session: str | None = None) -> str:
        """The tab id if this app issued it to ``session``; BadRequest otherwise.

        A tab id issued to another session (or to none, when the request has
        one) is refused like a forged one: tab-scoped renders and ``tab.state``
        belong to the visitor whose page got the id.
        """
        if not tab_id or _CANONICAL.fullmatch(tab_id) is None:
            raise BadRequest("missing or malformed tab id")
        blob = base64.urlsafe_b64decode(tab_id)
        raw, mac = blob[:_ID_BYTES], blob[_ID_BYTES:]
        if not any(hmac.compare_digest(mac, self._mac(key, raw, session)) for key in self._keys):
            raise BadRequest("forged tab id, or one issued to another session")
        return tab_id

    def get(self, tab_id: str) -> Tab:
        """The tab with this (verified) id, created on first use."""
        tab = self._tabs.get(tab_id)
        if tab is None:
            tab = self._tabs[tab_id] = Tab(tab_id)
        tab.last_seen = time.monotonic()
        return tab

    def attach(self, tab: Tab) -> None:
        """A stream of the tab opened."""
        tab.streams += 1

    def detach(self, tab: Tab) -> None:
        """A stream of the tab closed; its state is kept for the grace period."""
        tab.streams -= 1
        tab.last_seen = time.monotonic()
        self._schedule_expiry()

    def expire(self, now: float | None = None) -> int:
        """Forget tabs with no stream for longer than the grace period; how many."""
        now = time.monotonic() if now is None else now
        stale = [
            k for k, t in self._tabs.items() if t.streams <= 0 and now - t.last_seen > self.grace
        ]
        for key in stale:
            del self._tabs[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._tabs)

    def _schedule_expiry(self) -> None:
        if self._expiry is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        def run() -> None:
            self._expiry = None
            self.expire()
            if any(t.streams <= 0 for t in self._tabs.values()):
                self._schedule_expiry()

        self._expiry = loop.call_later(self.grace + 1, run)

    @staticmethod
    def _mac(key: bytes, raw: bytes, session: str | None) -> bytes:
        # The session id is hex (or absent); the separator keeps "id + session"
        # unambiguous whatever the session id's length.
        message = raw + b"\x00" + (session or "").encode()
        return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")
