"""Notes: sign in, keep private notes, see and close your sessions, live in every tab.

- ``/`` signs in with a username (a demo: no password, anyone may be anyone).
  ``session.sign_in(username, Device(...))`` starts a fresh session (a new
  token) and the action redirects to the notes, or to the page that sent the
  visitor to sign in (``?next=``, local paths only).
- ``/notes`` (``auth = True``) lists the user's notes. Adding or deleting one
  publishes ``NotesChanged(user=...)``; the page subscribes with
  ``@on(NotesChanged, user=USER)``, so every tab of that user, on every device,
  re-renders, and other users' pages hear nothing.
- ``/sessions`` (``auth = True``) lists the user's sessions, with a "close"
  button for each, "close all others" and "close all". Closing a session ends
  its live streams, which send their pages to the sign-in page.
- "Sign out" (on both private pages) ends the session: every tab of that
  session leaves the private page the same way.

``create_app(settings, store)`` builds a fresh app with no notes (the tests use
one per test); ``app`` is the one ``make run`` serves.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request

from livepages import (
    SSE,
    App,
    NotFound,
    Page,
    Redirect,
    Settings,
    ValidationError,
    action,
    redirect,
    safe_next,
)
from livepages.events import USER, Event, on
from livepages.sessions import SessionRecord, SessionStore
from livepages.sessions.session import Session, SessionManager

__all__ = [
    "COOKIE_NAME",
    "MAX_NOTES",
    "MAX_TEXT",
    "SIGN_IN_URL",
    "Credentials",
    "Device",
    "NewNote",
    "Note",
    "NoteRef",
    "Notebooks",
    "NotesChanged",
    "SessionRef",
    "SessionsChanged",
    "app",
    "create_app",
]

TEMPLATES = Path(__file__).parent / "templates"
HEAD = """<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  nav { display: flex; gap: 1rem; align-items: center; }
  nav .who { margin-left: auto; }
  ul.plain { list-style: none; padding: 0; }
  ul.plain li { display: flex; gap: .5rem; align-items: baseline; padding: .25rem 0; }
  time, .device { color: #666; font-size: .85em; }
  .error { color: #b00; }
</style>"""

#: The session cookie of this app. Apps mounted side by side share the cookie
#: namespace of ``/``, so each needs a name of its own.
COOKIE_NAME = "notes_session"
#: Where guests and closed sessions go. Relative on purpose: livepages writes the
#: sign-in URL as given, without the mount prefix, so an absolute "/" would leave
#: the app when it is mounted under one (``/notes/...``). Every page of this app
#: sits one level below its root, so "./" is the root: the sign-in page.
SIGN_IN_URL = "./"

MAX_TEXT = 500
#: Notes live in memory: a bound keeps one user from filling it without end.
MAX_NOTES = 200
MAX_USERNAME = 32
USERNAME = re.compile(r"[a-z0-9_.-]+")
MAX_AGENT = 120


@dataclass(frozen=True, slots=True)
class Note:
    """One note."""

    id: int
    text: str
    created_at: float


class Notebooks:
    """Every user's notes, in memory: a real app would keep them in a database."""

    def __init__(self) -> None:
        self._notes: dict[str, dict[int, Note]] = {}
        self._next_id = 1

    def of(self, user: str) -> list[Note]:
        """The user's notes, newest first."""
        return sorted(self._notes.get(user, {}).values(), key=lambda n: n.id, reverse=True)

    def add(self, user: str, text: str) -> Note:
        """Add a note for ``user``; ``ValidationError`` if the text cannot be added."""
        text = text.strip()
        if not text:
            raise ValidationError({"text": "is required"})
        if len(text) > MAX_TEXT:
            raise ValidationError({"text": f"must be at most {MAX_TEXT} characters"})
        notes = self._notes.setdefault(user, {})
        if len(notes) >= MAX_NOTES:
            raise ValidationError({"text": f"you have {MAX_NOTES} notes, delete some first"})
        note = notes[self._next_id] = Note(self._next_id, text, time.time())
        self._next_id += 1
        return note

    def delete(self, user: str, note_id: int) -> None:
        """Delete one of the user's notes: another user's note is as good as absent (404)."""
        if self._notes.get(user, {}).pop(note_id, None) is None:
            raise NotFound(f"you have no note {note_id}")


@dataclass
class NotesChanged(Event, subject="notes.{user}"):
    """A user's notes changed: that user's pages re-render, nobody else's."""

    user: str


@dataclass
class SessionsChanged(Event, subject="sessions.{user}"):
    """A user's sessions were opened or closed: their sessions pages re-render."""

    user: str


@dataclass
class Device:
    """The session's data: what signed in, so the sessions page can tell them apart."""

    agent: str = ""


@dataclass
class Credentials:
    """The sign-in form. Usernames are case-insensitive: ``Ada`` and ``ada`` are one user."""

    username: str

    def __post_init__(self) -> None:
        self.username = self.username.strip().lower()
        if not self.username:
            raise ValidationError({"username": "is required"})
        if len(self.username) > MAX_USERNAME:
            raise ValidationError({"username": f"must be at most {MAX_USERNAME} characters"})
        if not USERNAME.fullmatch(self.username):
            raise ValidationError({"username": "may use letters, digits, '.', '_' and '-'"})


@dataclass
class NewNote:
    """The add form (checked by ``Notebooks.add``)."""

    text: str


@dataclass
class NoteRef:
    """The ``note`` signal: the id of the note a button deletes."""

    note: int


@dataclass
class SessionRef:
    """The ``sid`` signal: the id of the session a button closes."""

    sid: str


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _device(record: SessionRecord) -> str:
    try:
        return msgspec.json.decode(record.data or b"{}", type=Device).agent
    except msgspec.DecodeError:  # written by another version of the app: show nothing
        return ""


def _signed_in(session: Session[Any]) -> str:
    # Pages and actions with auth = True only run for a signed-in user.
    assert session.user_id is not None
    return session.user_id


def create_app(settings: Settings | None = None, store: SessionStore | None = None) -> App:
    """A notes app with no notes; sessions go to ``store`` (in memory by default)."""
    manager = SessionManager(store, cookie_name=COOKIE_NAME, sign_in_url=SIGN_IN_URL)
    app = App(templates=TEMPLATES, settings=settings, head=HEAD, sessions=manager)
    notebooks = Notebooks()

    @app.page("/")
    class SignIn(Page):
        """The sign-in form; ``next`` is the page that sent the visitor here."""

        next: str = ""
        # No live stream: signing in replaces the guest session, and closing a
        # session redirects its streams, which would race the action's own redirect.
        live = False

        def title(self) -> str:
            return "Sign in"

        async def render(self, session: Session[Device]) -> str:
            html: str = self.template("signin.html", user=session.user_id)
            return html

        @action
        async def sign_in(
            self, credentials: Credentials, session: Session[Device], request: Request
        ) -> Redirect:
            agent = request.headers.get("user-agent", "")[:MAX_AGENT]
            previous = session.user_id  # signing in as someone else ends that session
            await session.sign_in(credentials.username, Device(agent=agent))
            await app.publish(SessionsChanged(user=credentials.username))
            if previous is not None and previous != credentials.username:
                await app.publish(SessionsChanged(user=previous))
            return redirect(safe_next(self.next, default=Notes().url))

    class Private(Page):
        """The signed-in pages: guests are sent to sign in; both can sign out."""

        auth = True

        @action
        async def sign_out(self, session: Session[Device]) -> Redirect:
            user = _signed_in(session)
            # Ends the session's live streams too: the user's other tabs leave as well.
            await session.sign_out()
            await app.publish(SessionsChanged(user=user))
            return redirect(SignIn())

    @app.page("/notes")
    @on(NotesChanged, user=USER)
    class Notes(Private):
        """The user's notes, the same in every one of their tabs."""

        def title(self) -> str:
            return "Notes"

        async def render(self, session: Session[Device]) -> str:
            user = _signed_in(session)
            html: str = self.template("notes.html", user=user, notes=notebooks.of(user), when=_when)
            return html

        @action
        async def add(self, note: NewNote, session: Session[Device], sse: SSE) -> None:
            user = _signed_in(session)
            notebooks.add(user, note.text)
            await app.publish(NotesChanged(user=user))
            # The form is morphed, not replaced, and keeps what was typed: empty it.
            await sse.execute_script("document.getElementById('new-note').reset()")

        @action(method="DELETE")
        async def delete(self, ref: NoteRef, session: Session[Device]) -> None:
            user = _signed_in(session)
            notebooks.delete(user, ref.note)
            await app.publish(NotesChanged(user=user))

    @app.page("/sessions")
    @on(SessionsChanged, user=USER)
    class Sessions(Private):
        """The user's sessions, this one marked, each one closable."""

        def title(self) -> str:
            return "Sessions"

        async def render(self, session: Session[Device]) -> str:
            user = _signed_in(session)
            records = await manager.list_user(user)
            rows = [(r, r.id == session.id, _device(r)) for r in records]
            html: str = self.template("sessions.html", user=user, rows=rows, when=_when)
            return html

        @action
        async def close(self, ref: SessionRef, session: Session[Device]) -> Redirect | None:
            user = _signed_in(session)
            if ref.sid not in {r.id for r in await manager.list_user(user)}:
                # Someone else's session, or one already gone: not this user's to close.
                raise NotFound("you have no such session")
            return await _close(user, [ref.sid], session)

        @action
        async def close_others(self, session: Session[Device]) -> None:
            user = _signed_in(session)
            others = [r.id for r in await manager.list_user(user) if r.id != session.id]
            await _close(user, others, session)

        @action
        async def close_all(self, session: Session[Device]) -> Redirect:
            user = _signed_in(session)
            await manager.close_user(user)
            await app.publish(SessionsChanged(user=user))
            return redirect(SignIn())

    async def _close(user: str, ids: Sequence[str], session: Session[Device]) -> Redirect | None:
        for sid in ids:
            await manager.close(sid)  # its streams redirect to the sign-in page
        await app.publish(SessionsChanged(user=user))
        # The cookie of a closed session opens nothing: the next request clears it.
        return redirect(SignIn()) if session.id in ids else None

    return app


app = create_app()
