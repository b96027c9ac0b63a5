"""Development mode: what an app does differently in a process of ``livepages dev``.

The dev server starts each app process with ``LIVEPAGES_DEV_BOOT`` set to an id of
its own (the boot id). An ``App`` made in such a process:

- runs with ``debug=True``: tracebacks on error pages, templates and static files
  re-read when they change, and the secret kept in ``.livepages/secret``, so a
  restart keeps every page's tab id and every visitor's session cookie valid;
- keeps the sessions of ``App(sessions=True)`` in SQLite, in
  ``.livepages/sessions.db``, so a restart keeps users signed in (unless the app is
  on NATS, or gives its own ``SessionManager``);
- uses its boot id as its build id (``livepages.builds``): every page's stream sends
  it (``X-LP-Build``), and the next process answers a page rendered by an earlier one
  with a reload, so a restart refreshes every open tab;
- shows every unexpected error (an action, a live render, an event handler) in an
  overlay on its open pages, besides the ``_error`` signal and the log.

Nothing changes outside ``livepages dev``: the variable is unset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from livepages.builds import Build
from livepages.documents import Documents
from livepages.keys import DEV_SECRET_FILE
from livepages.live import LiveEngine
from livepages.reports import Reporter
from livepages.sessions.session import SessionManager
from livepages.sessions.sqlite import SQLiteSessionStore
from livepages.settings import Settings
from livepages.templates import Templates

from .overlay import Problem, show_event

__all__ = ["BOOT_ENV", "SESSIONS_DB", "DevHost", "DevMode"]

#: The variable that puts an app process in development mode, set to its boot id.
BOOT_ENV = "LIVEPAGES_DEV_BOOT"
#: Where ``App(sessions=True)`` keeps sessions in development, under the working folder.
SESSIONS_DB = DEV_SECRET_FILE.parent / "sessions.db"


class DevHost(Protocol):
    """What development mode changes in an app (``App`` is one)."""

    documents: Documents
    errors: Reporter
    live: LiveEngine
    templates: Templates


@dataclass(frozen=True)
class DevMode:
    """Development mode in this process, with its boot id."""

    boot: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DevMode | None:
        """The mode ``LIVEPAGES_DEV_BOOT`` sets, or None outside ``livepages dev``."""
        boot = (os.environ if environ is None else environ).get(BOOT_ENV, "")
        return cls(boot) if boot else None

    @classmethod
    def enter(
        cls, settings: Settings, sessions: SessionManager | bool | None
    ) -> tuple[DevMode | None, Settings, Any]:
        """The mode (None outside ``livepages dev``), and the app's settings and sessions
        under it."""
        mode = cls.from_env()
        if mode is None:
            return None, settings, sessions
        settings = mode.settings(settings)
        return mode, settings, mode.sessions(sessions, settings)

    def settings(self, settings: Settings) -> Settings:
        """``settings`` in debug mode."""
        return msgspec.structs.replace(settings, debug=True)

    def sessions(self, sessions: SessionManager | bool | None, settings: Settings) -> Any:
        """``sessions=True`` becomes a manager on ``.livepages/sessions.db``, unless the
        app runs on NATS (where sessions go to JetStream KV); anything else stays."""
        if sessions is not True or settings.nats_url:
            return sessions
        SESSIONS_DB.parent.mkdir(parents=True, exist_ok=True)
        return SessionManager(store=SQLiteSessionStore(SESSIONS_DB.resolve()))

    def attach(self, app: DevHost) -> None:
        """The boot id as the build id, errors in the overlay, templates re-read."""
        app.documents.build = Build(self.boot)
        app.templates.env.auto_reload = True
        live = app.live

        def show(conn: Any, exc: BaseException) -> None:
            payload = show_event(Problem.from_exception(exc))
            for connection in list(live.connections):
                connection.deliver(payload)

        app.errors.hooks.append(show)
