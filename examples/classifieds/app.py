"""Classifieds: a marketplace with accounts, listings, photos, chats and presence.

- Accounts: ``/signup`` and ``/signin`` (e-mail and a password, hashed with scrypt);
  ``signout`` on every page. A session remembers the browser that signed in, and
  ``/settings`` lists them with "close" and "close all others".
- Listings: ``/`` searches them (text, category, price range). The four filters
  are query fields mirrored by signals (``Reflect``): typing changes the URL, and
  the URL gives the filters back on a reload or Back. ``/sell`` posts one with
  photos (uploaded in chunks, with their progress), ``/listings/{id}`` shows it
  with how many people are looking at it now (presence), and its seller edits it at
  ``/listings/{id}/edit``.
- Chats: "Contact the seller" opens the buyer's conversation about that listing
  (``/chats/{id}``; ``/chats`` lists yours). The other party sees "typing..." while
  you type, and "Seen" under your message once they have read it.

Everything is kept in the reactive store (``livepages.store``, SQLite): pages read
it while they render and re-render when what they read changes, on every process
sharing the file (through NATS with ``LIVEPAGES_NATS_URL``). See ``README.md``.

``create_app(settings, database=...)`` builds an app on a database file (tests give
each its own); the module-level ``app`` takes its settings from the environment
(``LIVEPAGES_*``: ``LIVEPAGES_NATS_URL`` puts it on NATS) and its database from
``$CLASSIFIEDS_DB``, else ``.livepages/classifieds.db``. ``python -m
examples.classifieds PORT`` serves it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from livepages import (
    SSE,
    App,
    Forbidden,
    Members,
    NotFound,
    Page,
    Redirect,
    Reflect,
    Settings,
    Uploaded,
    ValidationError,
    action,
    redirect,
    safe_next,
)
from livepages.events import USER, Event, on
from livepages.pages import within_mount
from livepages.sessions import SessionRecord, SQLiteSessionStore
from livepages.sessions.session import Session, SessionManager

from .market import Market, NewPhoto
from .models import (
    MAX_PHOTOS,
    Category,
    Chat,
    Device,
    Filters,
    Listing,
    ListingForm,
    MessageForm,
    PhotoRef,
    SessionRef,
    SignInForm,
    SignUpForm,
    User,
    format_price,
    price_text,
)
from .seed import DEMO_PASSWORD, DEMO_USERS, seed

__all__ = [
    "COOKIE_NAME",
    "DEFAULT_DATABASE",
    "PHOTO_TYPES",
    "SessionsChanged",
    "Typing",
    "app",
    "create_app",
    "database_from_env",
]

TEMPLATES = Path(__file__).parent / "templates"
#: The cookie of this app's sessions (apps mounted side by side share ``/``'s cookies).
COOKIE_NAME = "classifieds_session"
DEFAULT_DATABASE = Path(".livepages") / "classifieds.db"
PHOTO_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
MAX_PHOTO_SIZE = 5 * 1024 * 1024
#: How long "typing..." stays without another keystroke, in seconds (the page counts down).
TYPING_SECONDS = 4
MAX_AGENT = 160

HEAD = (TEMPLATES / "head.html").read_text()


@dataclass
class SessionsChanged(Event, subject="classifieds.sessions.{user}"):
    """A user's sessions were opened or closed: their settings pages re-render."""

    user: str


@dataclass
class Typing(Event, subject="classifieds.typing.{chat}.{to}"):
    """Someone types in a conversation: only the other party (``to``) hears it."""

    chat: int
    to: str
    name: str
    active: bool = True


def database_from_env() -> Path:
    """``$CLASSIFIEDS_DB``, or ``.livepages/classifieds.db`` under the working folder."""
    return Path(os.environ.get("CLASSIFIEDS_DB") or DEFAULT_DATABASE)


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%d %b %Y, %H:%M UTC")


def _device(record: SessionRecord) -> str:
    try:
        return msgspec.json.decode(record.data or b"{}", type=Device).agent
    except msgspec.DecodeError:  # written by another version of the app
        return ""


def _photo_url(photo_id: int) -> str:
    """``/photos/<id>``, inside the mount the app is served under."""
    return within_mount(f"/photos/{photo_id}")


def _user_id(session: Session[Any]) -> int | None:
    """The signed-in user's id (users are numbered; the session keeps it as text)."""
    user = session.user_id
    return int(user) if user is not None and user.isdigit() else None


def _me(session: Session[Any]) -> int:
    # Pages and actions with auth = True run for signed-in users only.
    user = _user_id(session)
    if user is None:
        raise Forbidden("sign in first")
    return user


async def _photos(photos: list[Uploaded]) -> list[NewPhoto]:
    """The uploaded photos' types and bytes; the uploads are then forgotten."""
    kept = []
    for photo in photos:
        kept.append(NewPhoto(photo.content_type, photo.read_bytes()))
        photo.discard()
    return kept


def create_app(settings: Settings | None = None, *, database: str | Path | None = None) -> App:
    """The marketplace on ``database`` (a SQLite file, created with demo data if new)."""
    path = Path(database) if database is not None else database_from_env()
    path.parent.mkdir(parents=True, exist_ok=True)
    market = Market(path)
    # Sessions beside the data: every process on this machine shares both files.
    sessions = SessionManager(
        SQLiteSessionStore(path.with_name(path.stem + "-sessions.db")),
        cookie_name=COOKIE_NAME,
        sign_in_url="/signin",
    )
    settings = msgspec.structs.replace(
        settings or Settings(),
        upload_accept=PHOTO_TYPES,
        max_upload_size=MAX_PHOTO_SIZE,
        max_files=MAX_PHOTOS,
    )
    app = App(
        templates=TEMPLATES,
        settings=settings,
        head=HEAD,
        sessions=sessions,
        store=market.store,
        lifespan=lambda _: _seeded(market),
    )
    app.state.market = market  # for tests and scripts: the app's data

    async def header(session: Session[Device] | None) -> dict[str, Any]:
        """What every page's template needs, and who is signed in. Public pages pass no
        session (``None``): their render is shared by every viewer, and their header
        asks ``whoami`` instead. The header reads the user's record only: a count of
        unread messages would make every page of a seller with many conversations read
        them all, and render again at each message (``/chats`` shows them)."""
        user_id = _user_id(session) if session is not None else None
        me = await market.user(user_id) if user_id is not None else None
        return {
            "shared": session is None,
            "whoami": whoami,
            "me": me,
            "categories": list(Category),
            "photo_url": _photo_url,
            "price": format_price,
            "when": _when,
        }

    @app.action
    async def whoami(session: Session[Device], sse: SSE) -> None:
        """Who is signed in, for the header of a public page (whose render is shared)."""
        found = await header(session)
        me: User | None = found["me"]
        name, user_id = (me.name, me.id) if me is not None else ("", 0)
        await sse.patch_signals({"_me": name, "_me_id": user_id, "_known": True})

    class Shop(Page):
        """Every page of the shop: its header, and signing out."""

        @action
        async def signout(self, session: Session[Device]) -> Redirect:
            user = session.user_id
            # Ends this session's live streams too: its other tabs leave as well.
            await session.sign_out()
            if user is not None:
                await app.publish(SessionsChanged(user=user))
            return redirect(Listings())

    async def sign_in(session: Session[Device], user: User, request: Request) -> None:
        agent = request.headers.get("user-agent", "")[:MAX_AGENT]
        await session.sign_in(str(user.id), Device(agent=agent))
        await app.publish(SessionsChanged(user=str(user.id)))

    # -- listings ----------------------------------------------------------------------

    @app.page("/")
    class Listings(Shop):
        """Search the listings; the filters live in the query string and in signals."""

        q: Annotated[str, Reflect()] = ""
        category: Annotated[str, Reflect()] = ""
        min_price: Annotated[str, Reflect()] = ""
        max_price: Annotated[str, Reflect()] = ""

        def title(self) -> str:
            return "Marketplace"

        async def render(self) -> str:
            # No session: one render per search, shared by everyone who has it open.
            filters = Filters.parse(self.q, self.category, self.min_price, self.max_price)
            found, total = await market.search(filters)
            html: str = self.template(
                "listings.html",
                **await header(None),
                listings=found,
                total=total,
                filter_errors=dict(filters.errors),
            )
            return html

    @app.page("/listings/{id}")
    class ListingPage(Shop):
        """One listing, with how many people are looking at it now."""

        id: int
        presence = "classifieds.listing.{id}"

        def title(self) -> str:
            return "Listing"

        async def render(self, online: Members) -> str:
            # Shared by every viewer: a join or a leave is one render, not one per viewer.
            listing = await market.listing(self.id)
            seller = await market.user(listing.seller)
            html: str = self.template(
                "listing.html",
                **await header(None),
                listing=listing,
                seller=seller,
                online=online,
                signals={"errors": {"contact": ""}},
            )
            return html

        @action
        async def contact(self, session: Session[Device]) -> Redirect:
            """Open (or start) the buyer's conversation with the seller."""
            buyer = _user_id(session)
            if buyer is None:
                return redirect(SignIn(next=self.url))
            chat_id = await market.open_chat(self.id, buyer)
            return redirect(ChatPage(chat_id=chat_id))

    @app.page("/sell")
    class Sell(Shop):
        """Post a listing, photos included."""

        auth = True

        def title(self) -> str:
            return "Sell something"

        async def render(self, session: Session[Device]) -> str:
            html: str = self.template(
                "listing_form.html",
                **await header(session),
                heading="Sell something",
                listing=None,
                submit=self.post,
                remove=None,  # no photos to remove yet
                signals=_form_signals(None),
                max_photos=MAX_PHOTOS,
            )
            return html

        @action
        async def post(
            self, form: ListingForm, photos: list[Uploaded], session: Session[Device]
        ) -> Redirect:
            listing = await market.post(_me(session), form, await _photos(photos))
            return redirect(ListingPage(id=listing.id))

    @app.page("/listings/{id}/edit")
    class EditListing(Shop):
        """Its seller changes a listing: anyone else is refused (403)."""

        id: int
        auth = True

        def title(self) -> str:
            return "Edit listing"

        async def _own(self, session: Session[Device]) -> Listing:
            listing = await market.listing(self.id)
            if listing.seller != _me(session):
                raise Forbidden("only the seller edits a listing")
            return listing

        async def render(self, session: Session[Device]) -> str:
            listing = await self._own(session)
            html: str = self.template(
                "listing_form.html",
                **await header(session),
                heading="Edit listing",
                listing=listing,
                submit=self.save,
                remove=self.remove_photo,
                signals=_form_signals(listing),
                max_photos=MAX_PHOTOS,
            )
            return html

        @action
        async def save(
            self, form: ListingForm, photos: list[Uploaded], session: Session[Device]
        ) -> Redirect:
            await self._own(session)
            await market.edit(self.id, _me(session), form, await _photos(photos))
            return redirect(ListingPage(id=self.id))

        @action
        async def remove_photo(self, ref: PhotoRef, session: Session[Device]) -> None:
            listing = await self._own(session)
            form = ListingForm(
                listing.title, listing.category, price_text(listing.price), listing.description
            )
            await market.edit(self.id, _me(session), form, [], remove=[ref.photo])

    async def photo(request: Request) -> Response:
        """``/photos/<id>``: a listing's photo (its type checked against its bytes on upload)."""
        found = await market.photo(request.path_params["id"])
        if found is None:
            return PlainTextResponse("no such photo", status_code=404)
        headers = {
            # A photo id is never reused for other bytes: cache it for good.
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        }
        return Response(found.data, media_type=found.content_type, headers=headers)

    app.add_route("/photos/{id:int}", photo)

    # -- accounts ------------------------------------------------------------------------

    @app.page("/signup")
    class SignUp(Shop):
        """Open an account."""

        next: str = ""
        # No stream: signing up replaces the guest session, whose streams end with a
        # redirect that would race the action's own.
        live = False

        def title(self) -> str:
            return "Sign up"

        async def render(self, session: Session[Device]) -> str:
            html: str = self.template(
                "signup.html",
                **await header(session),
                signals={
                    "email": "",
                    "name": "",
                    "password": "",
                    "errors": {"email": "", "name": "", "password": ""},
                },
            )
            return html

        @action
        async def signup(
            self, form: SignUpForm, session: Session[Device], request: Request
        ) -> Redirect:
            user = await market.sign_up(form)
            await sign_in(session, user, request)
            return redirect(safe_next(self.next, default=Listings().url))

    @app.page("/signin")
    class SignIn(Shop):
        """Sign in; ``next`` is the page that sent the visitor here."""

        next: str = ""
        live = False  # as SignUp

        def title(self) -> str:
            return "Sign in"

        async def render(self, session: Session[Device]) -> str:
            html: str = self.template(
                "signin.html",
                **await header(session),
                demo_users=DEMO_USERS,
                demo_password=DEMO_PASSWORD,
                signals={"email": "", "password": "", "errors": {"email": "", "password": ""}},
            )
            return html

        @action
        async def signin(
            self, form: SignInForm, session: Session[Device], request: Request
        ) -> Redirect:
            user = await market.authenticate(form.email, form.password)
            if user is None:
                raise ValidationError({"password": "wrong e-mail or password"})
            await sign_in(session, user, request)
            return redirect(safe_next(self.next, default=Listings().url))

    @app.page("/settings")
    @on(SessionsChanged, user=USER)
    class SettingsPage(Shop):
        """Your sessions: every browser where you are signed in, each closable."""

        auth = True

        def title(self) -> str:
            return "Settings"

        async def render(self, session: Session[Device]) -> str:
            user = _me(session)
            records = await sessions.list_user(str(user))
            rows = [(r, r.id == session.id, _device(r)) for r in records]
            html: str = self.template("settings.html", **await header(session), rows=rows)
            return html

        @action
        async def close_session(self, ref: SessionRef, session: Session[Device]) -> Redirect | None:
            user = str(_me(session))
            if ref.session not in {r.id for r in await sessions.list_user(user)}:
                raise NotFound("you have no such session")  # someone else's, or gone
            await sessions.close(ref.session)  # its open tabs are sent to sign in
            await app.publish(SessionsChanged(user=user))
            return redirect(SignIn()) if ref.session == session.id else None

        @action
        async def close_others(self, session: Session[Device]) -> None:
            user = str(_me(session))
            for record in await sessions.list_user(user):
                if record.id != session.id:
                    await sessions.close(record.id)
            await app.publish(SessionsChanged(user=user))

    # -- conversations --------------------------------------------------------------------

    @app.page("/chats")
    class Chats(Shop):
        """Your conversations, the latest active first."""

        auth = True

        def title(self) -> str:
            return "Messages"

        async def render(self, session: Session[Device]) -> str:
            me = _me(session)
            rows = []
            for chat in await market.conversations(me):
                listing = await market.listings.get(chat.listing)
                other = await market.user(chat.other(me))
                rows.append((chat, listing, other))
            html: str = self.template("chats.html", **await header(session), rows=rows, user=me)
            return html

    @app.page("/chats/{chat_id}")
    class ChatPage(Shop):
        """A conversation: only its buyer and seller see it (anyone else: 404)."""

        chat_id: int
        auth = True

        def title(self) -> str:
            return "Conversation"

        async def render(self, session: Session[Device]) -> str:
            me = _me(session)
            chat = await market.chat(self.chat_id, me)
            listing = await market.listings.get(chat.listing)
            other = await market.user(chat.other(me))
            html: str = self.template(
                "chat.html",
                **await header(session),
                chat=chat,
                listing=listing,
                other=other,
                user=me,
                receipt=_receipt(chat, me),
                unseen=chat.unread(me) > 0,
                signals={"text": "", "_typing": "", "_typing_for": 0, "errors": {"text": ""}},
            )
            return html

        @on(Typing, chat="chat_id", to=USER)
        async def heard_typing(self, event: Typing, sse: SSE) -> None:
            # Only the other party subscribes (to=USER): the typist never hears it.
            seconds = TYPING_SECONDS if event.active else 0
            await sse.patch_signals({"_typing": event.name, "_typing_for": seconds})

        @action
        async def send(self, form: MessageForm, session: Session[Device], sse: SSE) -> None:
            me = _me(session)
            chat = await market.chat(self.chat_id, me)
            await market.send(self.chat_id, me, form.text)
            await app.publish(Typing(chat=chat.id, to=str(chat.other(me)), name="", active=False))
            await sse.patch_signals({"text": ""})  # empty the input

        @action
        async def typing(self, session: Session[Device]) -> Response:
            me = _me(session)
            chat = await market.chat(self.chat_id, me)
            user = await market.user(me)
            name = user.name if user is not None else "someone"
            await app.publish(Typing(chat=chat.id, to=str(chat.other(me)), name=name))
            return Response(status_code=204)  # nothing to patch: leave `errors` alone

        @action
        async def seen(self, session: Session[Device]) -> Response:
            await market.mark_seen(self.chat_id, _me(session))
            return Response(status_code=204)

    return app


def _receipt(chat: Chat, me: int) -> int:
    """The newest message's id if it is mine and the other party has seen it (it shows
    "Seen"), else 0."""
    last = chat.messages[-1] if chat.messages else None
    if last is not None and last.sender == me and chat.seen_by(chat.other(me)) >= last.id:
        return last.id
    return 0


def _form_signals(listing: Listing | None) -> dict[str, Any]:
    fields = {"title": "", "category": "", "price": "", "description": ""}
    if listing is not None:
        fields = {
            "title": listing.title,
            "category": listing.category,
            "price": price_text(listing.price),
            "description": listing.description,
        }
    errors = dict.fromkeys((*fields, "photos"), "")
    return {**fields, "photo": 0, "errors": errors}


@asynccontextmanager
async def _seeded(market: Market) -> AsyncIterator[None]:
    """The app's lifespan: the demo data is written at start-up (once per database)."""
    await seed(market)
    yield


app = create_app(Settings.from_env(), database=database_from_env())
