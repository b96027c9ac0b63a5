"""Lifecycle: starting and stopping an app's broker, stores, presence and live engine.

The app starts once, whoever asks first: the lifespan, the first request or
the first publish (a mounted app whose lifespan nobody runs). Its start-up guards
(``livepages.guards``) run once the broker is connected, before anything serves:
one that refuses fails the start. Concurrent
callers wait for the same start; a start that fails reaches each of them and
is tried again by the next caller. Stopping ends the live streams first, then
waits for a start still under way (it could reopen what is being closed), then
withdraws the process's presence (while the broker's connection is still open) and
closes the broker and the stores. Both are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Sequence

from livepages.broker.base import Broker
from livepages.collector import prepare_for_streams
from livepages.guards import Guard
from livepages.live import LiveEngine
from livepages.presence import Presence
from livepages.sessions.session import SessionManager
from livepages.store.store import Store

__all__ = ["Lifecycle", "Stage"]


class Stage(enum.Enum):
    """Where an app's lifecycle stands."""

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPED = "stopped"


class Lifecycle:
    """Starts and stops the parts of one app that hold connections."""

    def __init__(
        self,
        broker: Broker,
        sessions: SessionManager | None,
        live: LiveEngine,
        presence: Presence,
        store: Store | None = None,
        guards: Sequence[Guard] = (),
        gc_threshold: int = 0,
    ) -> None:
        self.broker = broker
        self.sessions = sessions
        self.live = live
        self.presence = presence
        self.store = store
        self.guards = tuple(guards)
        self.gc_threshold = gc_threshold
        self.stage = Stage.NEW
        self._broker_started = False  # closed at stop, even after a start that failed
        self._starting: asyncio.Task[None] | None = None  # the one start under way

    async def start(self) -> None:
        """Start everything, once (a no-op when running or stopped)."""
        if self.stage in (Stage.RUNNING, Stage.STOPPED) or self.live.closing:
            return
        if self._starting is None:
            self.stage = Stage.STARTING
            self._starting = asyncio.get_running_loop().create_task(self._start())
        # Shielded: a caller that gives up must not cancel the start the others wait for.
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        try:
            await self.broker.start()
            self._broker_started = True
            for guard in self.guards:
                await guard.start()
            if self.sessions is not None:
                await self.sessions.start()
            await self.presence.start()  # its roster is loaded before any stream opens
            if self.store is not None:  # after the broker: it listens to other processes
                await self.store.start()
            await self.live.start()
            prepare_for_streams(self.gc_threshold)  # thousands of streams may come now
        except BaseException:
            self.stage = Stage.NEW  # the next caller tries again
            raise
        finally:
            self._starting = None
        self.stage = Stage.RUNNING

    async def stop(self) -> None:
        """End every live stream, then close the broker and the stores."""
        await self.live.shutdown()
        starting = self._starting
        if starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(starting)
        for guard in self.guards:
            await guard.stop()
        await self.presence.stop()  # on the broker's connection, if it shares it
        if self.stage is not Stage.NEW or self._broker_started:
            await self.broker.close()
        self.stage = Stage.STOPPED
        if self.sessions is not None:
            await self.sessions.stop()
        if self.store is not None:
            await self.store.close()
