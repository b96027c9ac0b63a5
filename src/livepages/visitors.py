"""Visitors: who a request comes from, and what they may do.

One place answers, for pages, actions and streams alike: is this write from
this site (Origin / Sec-Fetch-Site, every action) and from this session (CSRF
token, with sessions on)? Is a user signed in? Which session and which tab is
it, and was the tab id issued to that session? With sessions off, there is no
session: every visitor is a guest without one.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import HTTPConnection, Request

from livepages.csrf import CSRFError, origin_allowed
from livepages.errors import BadRequest, Forbidden
from livepages.injection import Context
from livepages.pages import within_mount
from livepages.protocol import ACTION_PREFIX, SESSION_SCOPE_KEY, TAB_HEADER
from livepages.responses import safe_next
from livepages.sessions.session import Session, SessionEnded, SessionManager
from livepages.tabs import Tab, TabRegistry

__all__ = ["Visitors"]


class Visitors:
    """Checks requests and tells sessions and tabs apart."""

    def __init__(
        self, sessions: SessionManager | None, tabs: TabRegistry, trusted_origins: frozenset[str]
    ) -> None:
        self.sessions = sessions
        self.tabs = tabs
        self.trusted_origins = trusted_origins

    # -- checks ---------------------------------------------------------------------

    async def check_write(self, request: Request) -> None:
        """Before any action: refuse a write from another site (always), then one
        without the session's CSRF token (when sessions are on): a 403 either way."""
        host = request.headers.get("host", "")
        scheme = request.url.scheme
        if not origin_allowed(request.headers, host, scheme, trusted_origins=self.trusted_origins):
            raise CSRFError("cross-site request refused")
        if self.sessions is not None:
            session = await self.sessions.load(request)
            if session.ended:  # its page outlived it: sign in again, then back to the page
                raise SessionEnded(self.sign_in_url(_page_of(request)))
            await self.sessions.check(request)

    async def check_signed_in(self, request: Request) -> None:
        """Refuse (403) a request whose session has no signed-in user."""
        if self.sessions is None:
            raise Forbidden("this action needs a signed-in user, and sessions are off")
        if (await self.sessions.load(request)).is_guest:
            raise Forbidden("sign in first")

    async def admit_stream(self, ctx: Context) -> None:
        """Before a live stream opens: load the session; guarded pages need a user
        (and go to sign in, if the page's session has ended since)."""
        if self.sessions is None:
            return
        session = await self.sessions.load(ctx.request)
        if type(ctx.page).auth and session.is_guest:
            if session.ended:
                raise SessionEnded(self.sign_in_url(ctx.page.url))
            raise Forbidden("sign in first")

    def sign_in_url(self, next_url: str, root: str | None = None) -> str:
        """The sign-in page (within the mount), with ``next`` set to come back to."""
        sign_in = self.sessions.sign_in_url if self.sessions is not None else "/"
        return within_mount(sign_in, root) + "?" + urlencode({"next": next_url})

    # -- who ------------------------------------------------------------------------

    async def session_of(self, conn: HTTPConnection) -> Session[Any] | None:
        """The request's session (loaded and cached), or None with sessions off."""
        return await self.sessions.load(conn) if self.sessions is not None else None

    @staticmethod
    def session_id(conn: HTTPConnection) -> str | None:
        """The id of the request's session, if one was loaded."""
        session = conn.scope.get(SESSION_SCOPE_KEY)
        return session.id if session is not None else None

    @staticmethod
    def user_id(conn: HTTPConnection) -> str | None:
        """The signed-in user of a request (for ``USER`` bindings), if any."""
        session = conn.scope.get(SESSION_SCOPE_KEY)
        return session.user_id if session is not None else None

    @property
    def closed_url(self) -> str:
        """Where the streams of a closed session send their page."""
        return self.sessions.closed_url if self.sessions is not None else "/"

    def csrf_token(self, request: Request) -> str:
        """A freshly masked CSRF token for the page's actions ("" without sessions)."""
        return self.sessions.csrf_token(request) if self.sessions is not None else ""

    # -- tabs -----------------------------------------------------------------------

    async def tab_id(self, request: Request, header: str | None) -> str:
        """The request's tab id, if it was issued to the request's session (400 if not)."""
        session = await self.session_of(request)
        return self.tabs.verify(header, session.id if session is not None else None)

    async def tab(self, ctx: Context) -> Tab:
        """The injected ``Tab`` of an action or render: its page's, from the header."""
        tab = ctx.extras.get(Tab)
        if tab is None:
            header = ctx.request.headers.get(TAB_HEADER)
            if header is None:
                raise BadRequest(f"this action needs the {TAB_HEADER} header of its page")
            # Read afresh: with many processes, another one may have changed it.
            tab = ctx.extras[Tab] = await self.tabs.load(await self.tab_id(ctx.request, header))
        return tab

    def session_resolver(self, annotation: Any) -> Callable[[Context], Awaitable[Any]]:
        """How to inject ``Session[Data]``: the request's session, its data as ``Data``."""
        args = typing.get_args(annotation)
        data_type = args[0] if args else dict

        async def resolve(ctx: Context) -> Any:
            assert self.sessions is not None
            return (await self.sessions.load(ctx.request)).typed(data_type)

        return resolve


def _page_of(request: Request) -> str:
    """The page an action came from: its ``Referer`` on this site, else the path the
    action hangs below, with its query (``/notes/_action/save?tab=2`` is an action of
    ``/notes?tab=2``)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc and referer.netloc == request.headers.get("host"):
        page = referer.path + (f"?{referer.query}" if referer.query else "")
    else:
        path = request.url.path
        page = (path[: path.find(ACTION_PREFIX)] if ACTION_PREFIX in path else path) or "/"
        query = request.url.query  # a page action's URL carries its page's query
        page += f"?{query}" if query else ""
    return safe_next(page)  # mount prefix included, like a page's ``url``
