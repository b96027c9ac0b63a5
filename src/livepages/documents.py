"""Documents: a page's body, its full HTML document, and the error pages.

A page GET answers the whole document: the shell (doctype, head, the Datastar
script, the page-local signals) around the page's render, and, for a live
page, the element that opens its stream. Errors that reach a browser
navigation get an HTML page with the real status; those of a Datastar request
get a patch of the ``_error`` signal (Datastar reads only 200 bodies).
"""

from __future__ import annotations

import inspect
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from livepages import csp
from livepages.broker.base import BrokerUnavailable
from livepages.builds import Build, restore_expression
from livepages.csrf import CSRFError
from livepages.datastar import DatastarResponse
from livepages.errors import HTTPError, ServiceUnavailable, ValidationError
from livepages.expressions import js_string
from livepages.feedback import Feedback
from livepages.injection import Context, Injector
from livepages.pages import Page
from livepages.plans import PagePlan
from livepages.protocol import (
    BUILD_HEADER,
    CSRF_HEADER,
    CSRF_SIGNAL,
    LIVE_PATH,
    TAB_HEADER,
    TAB_SIGNAL,
)
from livepages.reports import GENERIC_MESSAGE, Reporter
from livepages.responses import error_event, is_datastar, redirect_response, validation_event
from livepages.sessions.session import SessionEnded
from livepages.settings import Settings
from livepages.shell import Shell, to_html
from livepages.tabs import Tab
from livepages.visitors import Visitors

__all__ = ["Documents", "ErrorPage"]

log = logging.getLogger("livepages")

#: An error page: gets the request and the error, returns the body HTML.
ErrorPage = Callable[[Request, HTTPException], Any]


class Documents:
    """Renders pages and error pages into whole documents."""

    def __init__(
        self,
        shell: Shell,
        settings: Settings,
        injector: Injector,
        visitors: Visitors,
        reporter: Reporter,
        datastar_url: Callable[[], str],
    ) -> None:
        self.shell = shell
        self.settings = settings
        self.injector = injector
        self.visitors = visitors
        self.reporter = reporter
        self.datastar_url = datastar_url
        self.error_pages: dict[int, ErrorPage] = {}
        #: The build that renders pages; its id goes with every stream (``livepages.builds``).
        self.build = Build(settings.build_id)
        #: The connection, in-flight and error feedback of every page, or None.
        self.feedback: Feedback | None = Feedback() if settings.feedback else None

    # -- pages ----------------------------------------------------------------------

    async def body(
        self, plan: PagePlan, page: Page, ctx: Context, given: Mapping[str, Any] | None = None
    ) -> str:
        """Run the page's render with its injected arguments (those ``given`` instead of
        injected: the stand-ins of a shared render, ``livepages.holes``); the body as text."""
        kwargs = await self.injector.arguments(plan.render, ctx)
        if given:
            kwargs.update(given)
        return to_html(await plan.render.call(page, **kwargs))

    async def page(self, plan: PagePlan, request: Request, app: Any) -> Response:
        """The full document of a page GET (or the sign-in redirect of a guarded page)."""
        page = plan.spec.instance(request.path_params, request.query_params)
        sessions = self.visitors.sessions
        if sessions is not None:
            session = await sessions.ensure(request)
            if plan.cls.auth and session.is_guest:
                return redirect_response(request, self.visitors.sign_in_url(page.url))
        ctx = Context(request, page, app)
        live = plan.cls.live
        tab_id = self.visitors.tabs.issue(Visitors.session_id(request)) if live else ""
        if tab_id:
            # Not registered: a tab exists server-side only once its stream or an action
            # uses it, so a GET that never opens a stream leaves nothing behind.
            ctx.extras[Tab] = Tab(tab_id)
        nonce = csp.nonce(request.scope)
        token = csp.current_nonce.set(nonce)  # for csp_nonce() in the page's templates
        try:
            body, head = await self.body(plan, page, ctx), page.head()
        finally:
            csp.current_nonce.reset(token)
        reflection = plan.reflection
        live_url = None
        if live:  # a reflected query is read from the address bar when the stream opens
            suffix = plan.spec.path_for if reflection else plan.spec.url_for
            live_url = suffix(page, LIVE_PATH)
        headers = {BUILD_HEADER: self.build.id}
        feedback = self.feedback
        html = self.shell.render(
            body,
            datastar_url=self.datastar_url(),
            title=page.title() or self.settings.title,
            head=head + (feedback.head() if feedback else ""),
            live_url=live_url,
            live_options=live_options(plan.cls, headers),
            csrf_token=self.visitors.csrf_token(request),
            tab_id=tab_id,
            signals=reflection.signals(page) if reflection else None,
            url_sync=reflection.sync() if reflection else "",
            url_restore=reflection.restore() if reflection else "",
            nonce=nonce,
            feedback=feedback.html(live=live) if feedback else "",
            restore=restore_expression(plan.cls.kept_signals) if plan.cls.kept_signals else "",
        )
        return HTMLResponse(html)

    # -- errors ---------------------------------------------------------------------

    def handlers(self) -> dict[Any, Callable[[Request, Exception], Any]]:
        """Starlette exception handlers, by exception class."""
        return {
            ClientDisconnect: self.client_disconnected,
            HTTPException: self.http_error,
            ValidationError: self.validation_error,
            BrokerUnavailable: self.broker_unavailable,
            Exception: self.server_error,
        }

    async def http_error(self, request: Request, exc: Exception) -> Response:
        """An ``HTTPException``: its page, or an ``_error`` patch for Datastar."""
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if isinstance(exc, SessionEnded):  # to sign in, and back (Datastar or not)
            return redirect_response(request, exc.location)
        if isinstance(exc, CSRFError):
            # A refused write stays a real 403 for every client, Datastar included.
            return PlainTextResponse(exc.detail, status_code=403, headers=headers)
        if is_datastar(request):
            return DatastarResponse(error_event(exc.status_code, exc.detail), headers=headers)
        return await self.error_response(request, exc, headers)

    async def client_disconnected(self, request: Request, exc: Exception) -> Response:
        """The client left while sending its request: nobody to answer, nothing to report.

        The 499 (nginx's "client closed request") only reaches access logs.
        """
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=499)

    async def broker_unavailable(self, request: Request, exc: Exception) -> Response:
        """The broker's server is away (NATS restarting): a 503 the page shows, not a 500.

        The event was not sent; the server's own message (a host) is for the logs only.
        """
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        unavailable = ServiceUnavailable("live updates are unavailable, try again shortly")
        return await self.http_error(request, unavailable)

    async def validation_error(self, request: Request, exc: Exception) -> Response:
        """Field errors: an ``errors`` patch for Datastar, a 422 page otherwise."""
        assert isinstance(exc, ValidationError)
        if is_datastar(request):
            return DatastarResponse(validation_event(exc.errors))
        return await self.error_response(request, HTTPError(str(exc), status=422), {})

    async def server_error(self, request: Request, exc: Exception) -> Response:
        """An unexpected error: reported once, then a 500 (with the traceback in debug)."""
        await self.reporter.report(request, exc, recovered=False)
        if is_datastar(request):
            return DatastarResponse(error_event(500, self.reporter.message(exc)))
        error = HTTPError(GENERIC_MESSAGE, status=500)
        detail = "".join(traceback.format_exception(exc)) if self.settings.debug else ""
        return await self.error_response(request, error, {}, detail)

    async def error_response(
        self, request: Request, exc: HTTPException, headers: dict[str, str], detail: str = ""
    ) -> Response:
        """The HTML error page for ``exc``, with its status."""
        status = exc.status_code
        body = await self._custom_body(request, exc)
        if body is None:
            body = _default_error_body(status, exc.detail, detail)
        feedback = self.feedback
        html = self.shell.render(
            to_html(body),
            datastar_url=self.datastar_url(),
            title=f"{status} {exc.detail}",
            nonce=csp.nonce(request.scope),
            head=feedback.head() if feedback else "",
            feedback=feedback.html(live=False) if feedback else "",
        )
        return HTMLResponse(html, status_code=status, headers=headers)

    async def _custom_body(self, request: Request, exc: HTTPException) -> Any:
        page = self.error_pages.get(exc.status_code)
        if page is None:
            return None
        try:
            body = page(request, exc)
            return await body if inspect.isawaitable(body) else body
        except Exception:
            log.exception("the error page for %d failed", exc.status_code)
            return None


def _default_error_body(status: int, message: str, detail: str) -> Markup:
    body = Markup("<h1>{}</h1><p>{}</p>").format(status, message)
    if detail:
        body += Markup("<pre>{}</pre>").format(detail)
    return body


def live_options(cls: type[Page], headers: Mapping[str, str] | None = None) -> str:
    """The ``@get`` options of a page's stream, with its tab header (and ``headers``).

    ``retry: 'always'`` makes the browser reconnect after a stream ends (a server
    restart) or answers 503 (one shutting down); a refused stream answers 204,
    which stops the retries.
    """
    fixed = "".join(f", {js_string(k)}: {js_string(v)}" for k, v in (headers or {}).items())
    # The CSRF token too: the stream sends a fresh one if the key that signed it is old.
    signals = f"{js_string(TAB_HEADER)}: ${TAB_SIGNAL}, {js_string(CSRF_HEADER)}: ${CSRF_SIGNAL}"
    options = f"headers: {{{signals}{fixed}}}, retry: 'always'"
    if cls.live_when_hidden:
        options += ", openWhenHidden: true"
    return options
