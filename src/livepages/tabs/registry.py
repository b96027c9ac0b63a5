"""Tabs: one id per page load, signed so it cannot be forged, with server-side state.

The GET that serves a page issues a tab id; the page's live stream and actions
send it back in the ``X-LP-Tab`` header. The id is random and carries an HMAC
over the id and the session it was issued to, so a client can neither forge a
tab id nor use one that leaked from another session: the HMAC only verifies
with the session id of the request (and only in its one canonical base64url
spelling, so one tab cannot be claimed under a second name). A tab's ``state`` outlives its
stream for a grace period, so a reconnect (a hidden tab shown again, a network
blip) finds it where it was.

With a :class:`~livepages.tabs.store.TabStore` (many processes), the registry is a
cache in front of it: :meth:`TabRegistry.load` reads a tab's state from the store
before an action uses it, :meth:`TabRegistry.save` writes back what the action
changed, and the tabs with an open stream here are touched while they stay open,
so their state outlives them by the grace period wherever they reconnect.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from typing import Any

from livepages.errors import BadRequest, ServiceUnavailable
from livepages.tabs.store import (
    TabConflict,
    TabStore,
    TabStoreError,
    TabUpdate,
    decode_state,
    decode_update,
    encode_state,
    encode_update,
    merge_state,
)

__all__ = ["Tab", "TabRegistry"]

log = logging.getLogger("livepages.tabs")

#: Writes that lose a race are merged and tried again this many times, then a 503.
_SAVE_ATTEMPTS = 10


_ID_BYTES = 12
_MAC_BYTES = 12
#: A tab id as issued: 24 bytes as 32 base64url characters, nothing else. ``+`` and
#: ``/`` (which a lenient decoder maps onto the same bytes) are refused.
_CANONICAL = re.compile(r"[A-Za-z0-9_-]{32}")


class Tab:
    """One browser tab showing one page load. ``state`` is yours to use."""

    __slots__ = ("__weakref__", "id", "last_seen", "revision", "state", "stored", "streams")

    def __init__(self, tab_id: str) -> None:
        self.id = tab_id
        self.state: dict[str, Any] = {}
        self.streams = 0
        self.last_seen = time.monotonic()
        #: With a tab store: the revision and encoded state last read or written.
        self.revision = 0
        self.stored = b""

    def adopt(self, state: bytes, revision: int) -> None:
        """Take the stored ``state`` at ``revision``, unless this copy is newer already."""
        if revision > self.revision:
            self.state = decode_state(state)
            self.revision, self.stored = revision, state

    def __repr__(self) -> str:
        return f"Tab({self.id!r}, streams={self.streams})"


class TabRegistry:
    """Issues and verifies tab ids and keeps tabs alive while they are in use."""

    def __init__(self, keys: list[bytes], grace: float, store: TabStore | None = None) -> None:
        self._keys = keys  # the first signs; all verify (secret rotation)
        self.grace = grace
        #: Where tab state is shared with other processes; None: in this process only.
        self.store = store
        self._tabs: dict[str, Tab] = {}
        self._expiry: asyncio.TimerHandle | None = None
        self._keeper: asyncio.Task[None] | None = None

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

    async def load(self, tab_id: str) -> Tab:
        """The tab with this (verified) id, its state read afresh from the store if any.

        A 503 (``ServiceUnavailable``) if the store cannot be reached.
        """
        tab = self.get(tab_id)
        if self.store is not None:
            try:
                entry = await self.store.get(tab_id)
                if entry is not None:
                    tab.adopt(entry.state, entry.revision)
            except TabStoreError as error:
                raise _unavailable(error) from error
        return tab

    async def save(self, tab: Tab) -> bytes:
        """Write the tab's state to the store if it changed; the tab refresh's payload.

        A write that lost a race with another process is merged key by key with what
        that process wrote (:func:`merge_state`) and tried again. Without a store, or
        with nothing changed, the payload is empty: the refresh only re-renders. A 503
        (``ServiceUnavailable``) if the store cannot be reached.
        """
        if self.store is None:
            return b""
        encoded = encode_state(tab.state)
        if encoded == tab.stored or (not tab.state and not tab.revision):
            return b""
        try:
            return await self._write(tab, encoded)
        except TabStoreError as error:
            raise _unavailable(error) from error

    async def _write(self, tab: Tab, encoded: bytes) -> bytes:
        assert self.store is not None
        for _ in range(_SAVE_ATTEMPTS):
            try:
                revision = await self.store.put(tab.id, encoded, tab.revision)
            except TabConflict:
                encoded = await self._merge(tab)
                continue
            tab.revision, tab.stored = revision, encoded
            return encode_update(TabUpdate(revision, encoded))
        raise TabStoreError(f"tab {tab.id}: too many concurrent writes, try again")

    async def _merge(self, tab: Tab) -> bytes:
        """Rebase the tab's changes on the store's latest state; the merged state."""
        assert self.store is not None
        entry = await self.store.get(tab.id)
        base = decode_state(tab.stored) if tab.stored else {}
        theirs = decode_state(entry.state) if entry is not None else {}
        tab.state = merge_state(base, tab.state, theirs)
        tab.revision = entry.revision if entry is not None else 0
        tab.stored = entry.state if entry is not None else b""
        return encode_state(tab.state)

    def refreshed(self, tab_id: str, payload: bytes) -> None:
        """A tab refresh arrived: take the state it carries, if this process holds the tab."""
        update = decode_update(payload)
        tab = self._tabs.get(tab_id)
        if update is None or tab is None:
            return
        try:
            tab.adopt(update.state, update.revision)
        except TabStoreError:
            log.warning("ignoring a tab refresh with unreadable state for tab %s", tab_id)

    async def reload_open(self) -> None:
        """Read afresh the state of every tab with a stream here (after NATS was away)."""
        if self.store is None:
            return
        for tab in [t for t in self._tabs.values() if t.streams > 0]:
            entry = await self.store.get(tab.id)
            if entry is not None:
                tab.adopt(entry.state, entry.revision)

    def attach(self, tab: Tab) -> None:
        """A stream of the tab opened."""
        tab.streams += 1
        if self.store is not None and self._keeper is None:
            self._keeper = asyncio.get_running_loop().create_task(self._keep())

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

    async def start(self) -> None:
        """Connect the store, if any."""
        if self.store is not None:
            await self.store.start()

    async def close(self) -> None:
        """Stop touching tabs and disconnect the store, if any."""
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        if self.store is not None:
            await self.store.close()

    async def _keep(self) -> None:
        """While tabs with stored state have a stream here, write them again every
        third of the grace period: the store forgets a tab ``grace`` seconds after its
        last write, and an open tab must outlive its process by that much."""
        try:
            while any(t.streams > 0 for t in self._tabs.values()):
                await asyncio.sleep(self.grace / 3)
                for tab in [t for t in self._tabs.values() if t.streams > 0 and t.revision]:
                    await self._touch(tab)
        finally:
            self._keeper = None

    async def _touch(self, tab: Tab) -> None:
        assert self.store is not None
        try:
            try:
                tab.revision = await self.store.put(tab.id, tab.stored, tab.revision)
            except TabConflict:
                entry = await self.store.get(tab.id)  # written elsewhere: that kept it alive
                if entry is not None:
                    tab.adopt(entry.state, entry.revision)
        except TabStoreError as error:  # NATS away: the next round tries again
            log.debug("could not keep tab %s alive: %s", tab.id, error)

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


def _unavailable(error: TabStoreError) -> ServiceUnavailable:
    log.warning("tab store: %s", error)
    return ServiceUnavailable("tab state is unavailable, try again shortly")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")
