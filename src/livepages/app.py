"""``App``: the registry of pages and actions, and the ASGI application.

``App`` is a Starlette application, so middleware, mounts, plain routes and the
lifespan work as they do there: it mounts inside FastAPI or Starlette and can
mount them. Each page gets three routes::

    GET  /rooms/{room}                   the full document
    GET  /rooms/{room}/_live             its live stream
    POST /rooms/{room}/_action/{name}    its actions (PUT, PATCH, DELETE too)

Changes flow as typed events through the broker (``app.publish``); the live
engine (``livepages.live``) re-renders the views that subscribed to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import traceback
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from livepages.abort import record_server_send
from livepages.actions import (
    ActionSpec,
    Method,
    action,
    action_spec,
)
from livepages.assets import Assets
from livepages.broker.base import Broker
from livepages.broker.memory import MemoryBroker
from livepages.broker.prefix import with_prefix
from livepages.compression import CompressionSettings
from livepages.csrf import CSRFError, origin_allowed, trusted_origins
from livepages.datastar import DatastarResponse, ServerSentEventGenerator
from livepages.datastar.response import ClientDisconnected
from livepages.errors import BadRequest, Forbidden, HTTPError, NotFound, ValidationError
from livepages.events import Event
from livepages.expressions import js_string
from livepages.injection import Context, Injector, Plan
from livepages.inputs import field_names
from livepages.keys import Keys
from livepages.live import (
    BODY_SEND,
    LiveEngine,
    live_scope,
    passes_bodies_through,
    plan_handlers,
)
from livepages.middleware import SecurityHeaders, SessionCookie
from livepages.pages import Page, PageSpec, root_path, within_mount
from livepages.paths import caller_folder, resolve_folder
from livepages.protocol import (
    ACTION_PREFIX,
    LIVE_PATH,
    SESSION_CLOSED,
    SESSION_SCOPE_KEY,
    TAB_HEADER,
    TAB_REFRESH,
    TAB_SIGNAL,
    SessionNotice,
)
from livepages.reports import GENERIC_MESSAGE, ErrorHook, Reporter
from livepages.responses import (
    Redirect,
    error_event,
    is_datastar,
    redirect_response,
    success_event,
    validation_event,
)
from livepages.routing import SlashRedirect
from livepages.sessions.session import Session, SessionManager
from livepages.settings import Settings
from livepages.shell import Shell, to_html
from livepages.tabs import Tab
from livepages.templates import Templates

__all__ = ["App", "ErrorPage"]

log = logging.getLogger("livepages")

P = TypeVar("P", bound=type[Page])
F = TypeVar("F", bound=Callable[..., Any])

#: An error page: gets the request and the error, returns the body HTML.
ErrorPage = Callable[[Request, HTTPException], Any]


class App(Starlette):
    """A livepages application.

    ::

        app = App(templates="templates", static="static")

        @app.page("/")
        class Home(Page):
            async def render(self) -> str:
                return self.template("home.html")
    """

    def __init__(
        self,
        *,
        templates: str | Path | Templates | None = None,
        static: str | Path | None = None,
        settings: Settings | None = None,
        head: str = "",
        broker: Broker | None = None,
        compression: CompressionSettings | None = None,
        sessions: SessionManager | bool | None = None,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        lifespan: Callable[[App], AbstractAsyncContextManager[Any]] | None = None,
        debug: bool | None = None,
    ) -> None:
        settings = settings or Settings()
        if debug is not None and debug != settings.debug:
            settings = Settings(**{**_as_dict(settings), "debug": debug})
        self.settings = settings
        self.keys = Keys(settings.secret_key, settings.previous_secret_keys, debug=settings.debug)
        # Wrapped once, here: whatever publishes or subscribes through app.broker (events,
        # tab refreshes, closed sessions) stays inside the app's subject prefix.
        self.broker: Broker = with_prefix(
            broker if broker is not None else MemoryBroker(), settings.subject_prefix
        )
        self.compression = compression if compression is not None else CompressionSettings()
        self.injector = Injector()
        self.injector.provide(App, lambda ctx: ctx.app)
        self.injector.provide(ServerSentEventGenerator, lambda ctx: ctx.sse)
        self.injector.provide(Tab, self._tab)
        self.sessions = SessionManager() if sessions is True else sessions or None
        self.trusted_origins = trusted_origins(settings, self.sessions)
        if self.sessions is not None:
            self.sessions.bind(self.keys, self.announce_session_closed)
            self.injector.provide_generic(Session, self._session_resolver)
        here = caller_folder()
        if isinstance(static, str | Path):
            static = resolve_folder(static, here, "static")
        if isinstance(templates, str | Path):
            templates = resolve_folder(templates, here, "templates")
        self.assets = self._make_assets(static)
        if isinstance(templates, Templates):
            self.templates = templates
            if self.assets is not None:
                templates.env.globals["asset"] = self.asset
        else:
            self.templates = Templates(templates, asset=self.asset, auto_reload=settings.debug)
        self.shell = Shell(lang=settings.lang, app_head=head)
        self.pages: list[PageSpec] = []
        self.global_actions: dict[str, ActionEntry] = {}
        self.error_pages: dict[int, ErrorPage] = {}
        self.errors = Reporter(debug=settings.debug)
        self._user_lifespan = lifespan
        self._started = False
        self._starting: asyncio.Task[None] | None = None  # the one start under way
        self._bodies_pass_through = False
        self.live = LiveEngine(self)
        super().__init__(
            debug=settings.debug,
            routes=list(routes or []),
            middleware=middleware,
            exception_handlers={
                ClientDisconnect: self._client_disconnected,
                HTTPException: self._http_error,
                ValidationError: self._validation_error,
                Exception: self._server_error,
            },
            lifespan=self._lifespan,
        )
        self.router.redirect_slashes = False  # Starlette's copies the Host header
        self.router.default = SlashRedirect(self.router)
        if self.assets is not None:
            self.router.routes.append(Mount(settings.static_prefix, app=self.assets))
        self.router.routes.append(
            Route(ACTION_PREFIX + "{_action}", self._global_action, methods=list(_ACTION_METHODS))
        )

    def _make_assets(self, static: str | Path | None) -> Assets | None:
        files = {}
        if self.settings.datastar_file is not None:
            files["datastar.js"] = self.settings.datastar_file
        if static is None and not files:
            return None
        return Assets(
            static, prefix=self.settings.static_prefix, dev=self.settings.debug, files=files
        )

    def build_middleware_stack(self) -> ASGIApp:
        """Starlette's stack, inside the session cookie and the security headers.

        Those two sit outside all error handling, so 500s get them too. livepages
        renders debug tracebacks itself, so Starlette's debug page is never used.
        """
        # Unexpected errors are handled inside, by the ExceptionMiddleware, and not
        # re-raised: Starlette's ServerErrorMiddleware answers and then re-raises, so
        # the server would log every error a second time.
        middleware = [
            Middleware(ServerErrorMiddleware),
            *self.user_middleware,
            Middleware(ExceptionMiddleware, handlers=dict(self.exception_handlers)),
        ]
        stack: ASGIApp = self.router
        for cls, args, kwargs in reversed(middleware):
            stack = cls(stack, *args, **kwargs)
        if self.sessions is not None:
            stack = SessionCookie(stack, self.sessions)
        stack = SecurityHeaders(stack)
        self._bodies_pass_through = passes_bodies_through(stack, self.router)
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        token = root_path.set(scope.get("root_path", ""))
        record_server_send(scope, send)  # to abort a live stream's stuck connection
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        if self._bodies_pass_through:
            scope[BODY_SEND] = send  # live stream bodies need none of this app's layers
        else:
            scope.pop(BODY_SEND, None)  # an outer app's: this app's middleware must see them
        try:
            await super().__call__(scope, receive, send)
        finally:
            root_path.reset(token)

    # -- registration ---------------------------------------------------------------

    def page(self, path: str) -> Callable[[P], P]:
        """Register a page class at ``path`` (``{name}`` segments are its path fields)."""

        def register(cls: P) -> P:
            spec = PageSpec.build(cls, path)
            spec.app = self
            render = getattr(cls, "render", None)
            if render is None:
                raise TypeError(f"{cls.__name__} needs a render() method")
            spec.extra["render"] = plan = self.injector.plan(render, skip_first=True)
            spec.extra["handlers"] = handlers = plan_handlers(self, cls)
            spec.extra["live_scope"] = live_scope(plan, handlers)
            spec.extra["hooks"] = {
                name: self.injector.plan(getattr(cls, name), skip_first=True)
                for name in ("opened", "closed")
                if callable(getattr(cls, name, None))
            }
            for _, member in inspect.getmembers(cls):
                marked = action_spec(member)
                if marked is not None:
                    plan = self.injector.plan(member, skip_first=True)
                    spec.actions[marked.name] = ActionEntry.of(marked, plan)
            self.pages.append(spec)
            self._add_page_routes(spec)
            self.templates.env.globals.setdefault(cls.__name__, cls)  # url(Room, ...) in templates
            return cls

        return register

    def _add_page_routes(self, spec: PageSpec) -> None:
        base = spec.path.rstrip("/")
        name = spec.cls.__name__

        async def page_endpoint(request: Request) -> Response:
            return await self._render_page(spec, request)

        async def action_endpoint(request: Request) -> Response:
            return await self._page_action(spec, request)

        routes = self.router.routes
        if spec.cls.live:
            endpoint = _LiveEndpoint(self, spec)
            routes.append(Route(base + LIVE_PATH, endpoint, methods=["GET"], name=name + ".live"))
        routes.append(
            Route(
                base + ACTION_PREFIX + "{_action}",
                action_endpoint,
                methods=list(_ACTION_METHODS),
                name=name + ".action",
            )
        )
        routes.append(Route(spec.path, page_endpoint, methods=["GET", "HEAD"], name=name))

    @typing.overload
    def action(self, func: F) -> F: ...
    @typing.overload
    def action(
        self, *, method: Method = "POST", name: str | None = None, auth: bool = False
    ) -> Callable[[F], F]: ...
    def action(
        self,
        func: F | None = None,
        *,
        method: Method = "POST",
        name: str | None = None,
        auth: bool = False,
    ) -> F | Callable[[F], F]:
        """Register an app-wide action at ``/_action/<name>``: ``@app.action``."""

        def register(f: F) -> F:
            marked = action_spec(f) or action_spec(action(method=method, name=name, auth=auth)(f))
            assert marked is not None
            self.global_actions[marked.name] = ActionEntry.of(marked, self.injector.plan(f))
            return f

        return register(func) if func is not None else register

    def error_page(self, status: int) -> Callable[[ErrorPage], ErrorPage]:
        """Register the body of the error page for ``status`` (404, 500, ...)."""

        def register(func: ErrorPage) -> ErrorPage:
            self.error_pages[status] = func
            return func

        return register

    def on_error(self, hook: ErrorHook) -> ErrorHook:
        """Call ``hook(request, exc)`` for every unhandled exception (report it, log it)."""
        self.errors.hooks.append(hook)
        return hook

    def _datastar_url(self) -> str:
        """The Datastar script of this request: a hashed local file (mount prefix included)."""
        if self.settings.datastar_file is not None:
            return self.asset("datastar.js")
        return self.settings.datastar_url

    def asset(self, name: str) -> str:
        """The content-hashed URL of a static file."""
        if self.assets is None:
            raise LookupError(f"asset({name!r}): this app has no static folder (App(static=...))")
        return root_path.get() + self.assets.url(name)

    async def publish(self, event: Event) -> None:
        """Publish an event: every view subscribed to its subject updates."""
        await self.startup()
        await self.broker.publish(event.subject, event.encode())

    async def startup(self) -> None:
        """Start the broker and the live engine's subscriptions, once.

        The lifespan does this; so do the first request and the first publish if no
        lifespan ran. Concurrent callers all wait for the same start; if it fails, each of
        them gets the error and the next call tries again.
        """
        if self._started or self.live.closing:
            return
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._start())
        # Shielded: a caller that gives up must not cancel the start the others wait for.
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        try:
            await self.broker.start()
            if self.sessions is not None:
                await self.sessions.start()
            await self.live.start()
        finally:
            self._starting = None  # a failed start is tried again by the next caller
        self._started = True

    async def close_streams(self) -> None:
        """End every live stream now (a server stopping); the broker keeps running
        until the lifespan ends, so the app's own background work can finish."""
        await self.live.shutdown()

    async def shutdown(self) -> None:
        """End every live stream and stop the broker. Idempotent."""
        await self.live.shutdown()
        starting = self._starting
        if starting is not None:
            # Let a start under way finish first, or it could reopen what we close.
            with contextlib.suppress(Exception):
                await asyncio.shield(starting)
        if self._started or starting is not None:
            self._started = False
            await self.broker.close()
        if self.sessions is not None:
            await self.sessions.stop()

    @asynccontextmanager
    async def _lifespan(self, app: App) -> AsyncIterator[Any]:
        self.keys.warn_if_ephemeral()
        await self.startup()
        try:
            if self._user_lifespan is None:
                yield None
            else:
                async with self._user_lifespan(self) as state:
                    yield state  # Starlette hands a yielded mapping to request.state
        finally:
            await self.shutdown()

    # -- request handling -----------------------------------------------------------

    def csrf_token(self, request: Request) -> str:
        """A freshly masked CSRF token for the page's actions ("" without sessions)."""
        return self.sessions.csrf_token(request) if self.sessions is not None else ""

    async def check_request(self, request: Request) -> None:
        """Before any action: refuse a write from another site (always), then one
        without the session's CSRF token (when sessions are on): a 403 either way."""
        host = request.headers.get("host", "")
        if not origin_allowed(
            request.headers, host, request.url.scheme, trusted_origins=self.trusted_origins
        ):
            raise CSRFError("cross-site request refused")
        if self.sessions is not None:
            await self.sessions.check(request)

    async def check_signed_in(self, request: Request) -> None:
        """Refuse (403) a request whose session has no signed-in user."""
        if self.sessions is None:
            raise Forbidden("this action needs a signed-in user, and sessions are off")
        if (await self.sessions.load(request)).is_guest:
            raise Forbidden("sign in first")

    async def prepare_live(self, ctx: Context) -> None:
        """Before a live stream opens: load the session; guarded pages need a user."""
        if self.sessions is None:
            return
        session = await self.sessions.load(ctx.request)
        if type(ctx.page).auth and session.is_guest:
            raise Forbidden("sign in first")

    def session_key(self, ctx: Context) -> Any:
        """What distinguishes per-session views: the session id."""
        return self.session_id(ctx)

    def session_id(self, ctx: Context) -> str | None:
        """The id of the request's session, if it has one (loaded beforehand)."""
        session = ctx.request.scope.get(SESSION_SCOPE_KEY)
        return session.id if session is not None else None

    def session_user(self, ctx: Context) -> str | None:
        """The signed-in user of a request, for ``USER`` bindings."""
        session = ctx.request.scope.get(SESSION_SCOPE_KEY)
        return session.user_id if session is not None else None

    def session_closed_url(self) -> str:
        """Where the streams of a closed session send their page."""
        return self.sessions.closed_url if self.sessions is not None else "/"

    async def announce_session_closed(self, key: str, notice: SessionNotice) -> None:
        """Tell every stream of session ``key``, wherever the broker reaches, that it ended."""
        await self.startup()
        await self.broker.publish(SESSION_CLOSED + key, notice.encode())

    def _session_resolver(self, annotation: Any) -> Callable[[Context], Awaitable[Any]]:
        args = typing.get_args(annotation)
        data_type = args[0] if args else dict

        async def resolve(ctx: Context) -> Any:
            assert self.sessions is not None
            return (await self.sessions.load(ctx.request)).typed(data_type)

        return resolve

    async def _tab(self, ctx: Context) -> Tab:
        tab = ctx.extras.get(Tab)
        if tab is None:
            header = ctx.request.headers.get(TAB_HEADER)
            if header is None:
                raise BadRequest(f"this action needs the {TAB_HEADER} header of its page")
            tab_id = await self.verify_tab(ctx.request, header)
            tab = ctx.extras[Tab] = self.live.tabs.get(tab_id)
        return tab

    async def verify_tab(self, request: Request, header: str | None) -> str:
        """The request's tab id, if it was issued to the request's session (400 if not)."""
        session = await self.sessions.load(request) if self.sessions is not None else None
        return self.live.tabs.verify(header, session.id if session is not None else None)

    async def report_error(self, request: Request, exc: BaseException) -> None:
        """Log an unexpected error once and pass it to every ``on_error`` hook."""
        await self.errors.report(request, exc)

    async def _render_page(self, spec: PageSpec, request: Request) -> Response:
        page = spec.instance(request.path_params, request.query_params)
        live = type(page).live
        ctx = Context(request, page, self)
        if self.sessions is not None:
            session = await self.sessions.ensure(request)
            if type(page).auth and session.is_guest:
                sign_in = within_mount(self.sessions.sign_in_url)
                target = sign_in + "?" + urlencode({"next": page.url})
                return redirect_response(request, target)
        session_id = self.session_id(ctx)
        tab_id = self.live.tabs.issue(session_id) if live else ""
        if tab_id:
            # Not registered: a tab exists server-side only once its stream or an action uses it,
            # so a GET that never opens a stream leaves nothing behind.
            ctx.extras[Tab] = Tab(tab_id)
        body = await self.render_body(spec, page, ctx)
        html = self.shell.render(
            body,
            datastar_url=self._datastar_url(),
            title=_title(page, self.settings.title),
            head=_page_head(page),
            live_url=spec.url_for(page, LIVE_PATH) if live else None,
            live_options=_live_options(type(page)),
            csrf_token=self.csrf_token(request),
            tab_id=tab_id,
        )
        return HTMLResponse(html)

    async def render_body(self, spec: PageSpec, page: Page, ctx: Context) -> str:
        """Run the page's render with its injected arguments; the body as text."""
        plan: Plan = spec.extra["render"]
        kwargs = await self.injector.arguments(plan, ctx)
        return to_html(await plan.call(page, **kwargs))

    async def _page_action(self, spec: PageSpec, request: Request) -> Response:
        entry = spec.actions.get(request.path_params["_action"])
        if entry is None:
            raise NotFound(f"{spec.cls.__name__} has no action {request.path_params['_action']!r}")
        params = {k: v for k, v in request.path_params.items() if k != "_action"}
        page = spec.instance(params, request.query_params)
        return await self._run_action(entry, request, page)

    async def _global_action(self, request: Request) -> Response:
        name = request.path_params["_action"]
        entry = self.global_actions.get(name)
        if entry is not None:
            return await self._run_action(entry, request, None)
        # The page at "/" has its actions at /_action/<name> too.
        root = next((s for s in self.pages if s.path == "/" and name in s.actions), None)
        if root is None:
            raise NotFound(f"no action {name!r}")
        return await self._page_action(root, request)

    async def _run_action(self, entry: ActionEntry, request: Request, page: Any) -> Response:
        marked, plan, fields = entry
        if request.method != marked.method:
            raise HTTPException(405, headers={"Allow": marked.method})
        await self.check_request(request)
        if marked.auth or (page is not None and type(page).auth):
            await self.check_signed_in(request)
        ctx = Context(request, page, self)
        try:
            kwargs = await self.injector.arguments(plan, ctx)
        except ValidationError as exc:
            if not is_datastar(request):
                raise
            return DatastarResponse(validation_event(exc.errors, fields))
        args = (page,) if page is not None else ()
        if plan.wants(ServerSentEventGenerator):
            # Started lazily, so a sign-in before the first event still sets its cookie.
            stream = self._streaming_action(plan, ctx, args, kwargs, fields)
            return DatastarResponse(stream, start_immediately=False)
        try:
            result = await plan.call(*args, **kwargs)
        except ValidationError as exc:
            if not is_datastar(request):
                raise
            return DatastarResponse(validation_event(exc.errors, fields))
        if page is not None:
            await self.refresh_caller(request)
        return self._action_result(request, result, fields)

    async def refresh_caller(self, request: Request) -> None:
        """Re-render the views of the tab that sent this request (a no-op if unchanged).

        It goes through the broker, so it reaches the tab's stream on any process.
        """
        header = request.headers.get(TAB_HEADER)
        if header is None:
            return
        try:
            tab_id = await self.verify_tab(request, header)
        except BadRequest:
            return
        await self.startup()
        await self.broker.publish(TAB_REFRESH + tab_id, b"")

    def _streaming_action(
        self, plan: Plan, ctx: Context, args: tuple[Any, ...], kwargs: dict[str, Any], fields: Any
    ) -> Callable[[ServerSentEventGenerator], Awaitable[None]]:
        async def stream(sse: ServerSentEventGenerator) -> None:
            ctx.sse = sse
            for param in plan.params:
                if param.annotation is ServerSentEventGenerator:
                    kwargs[param.name] = sse
            try:
                result = await plan.call(*args, **kwargs)
            except ValidationError as exc:
                await sse.send(validation_event(exc.errors, fields))
                return
            except HTTPException as exc:
                await sse.send(error_event(exc.status_code, exc.detail))
                return
            except ClientDisconnected:  # nobody is left to tell: not an error of the app
                log.debug("client left during %s %s", ctx.request.method, ctx.request.url.path)
                return
            except Exception as exc:  # the stream has started: report it in the page
                await self.report_error(ctx.request, exc)
                await sse.send(error_event(500, self.errors.message(exc)))
                return
            if isinstance(result, Redirect | Page):
                await sse.redirect(result.url)
            else:
                await sse.send(success_event(fields))
            if ctx.page is not None:
                await self.refresh_caller(ctx.request)

        return stream

    def _action_result(self, request: Request, result: Any, fields: tuple[str, ...]) -> Response:
        if isinstance(result, Response):
            return result
        if isinstance(result, Redirect | Page):
            return redirect_response(request, result.url)
        if result is not None:
            raise TypeError(f"an action returns None, a redirect or a Response, not {result!r}")
        if is_datastar(request):  # a success clears what an earlier failure showed
            return DatastarResponse(success_event(fields))
        return Response(status_code=204)

    # -- errors ---------------------------------------------------------------------

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if isinstance(exc, CSRFError):
            # A refused write stays a real 403 for every client, Datastar included.
            return PlainTextResponse(exc.detail, status_code=403, headers=headers)
        if is_datastar(request):
            return DatastarResponse(error_event(exc.status_code, exc.detail), headers=headers)
        return await self.error_response(request, exc, headers)

    async def _client_disconnected(self, request: Request, exc: Exception) -> Response:
        """The client left while sending its request: nobody to answer, nothing to report.

        The 499 (nginx's "client closed request") only reaches access logs.
        """
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return Response(status_code=499)

    async def _validation_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ValidationError)
        if is_datastar(request):
            return DatastarResponse(validation_event(exc.errors))
        error = HTTPError(str(exc), status=422)
        return await self.error_response(request, error, {})

    async def _server_error(self, request: Request, exc: Exception) -> Response:
        await self.report_error(request, exc)
        if is_datastar(request):
            return DatastarResponse(error_event(500, self.errors.message(exc)))
        error = HTTPError(GENERIC_MESSAGE, status=500)
        detail = "".join(traceback.format_exception(exc)) if self.settings.debug else ""
        return await self.error_response(request, error, {}, detail)

    async def error_response(
        self, request: Request, exc: HTTPException, headers: dict[str, str], detail: str = ""
    ) -> Response:
        """The HTML error page for ``exc``, with its status."""
        status = exc.status_code
        page = self.error_pages.get(status)
        body: Any = None
        if page is not None:
            try:
                body = page(request, exc)
                if inspect.isawaitable(body):
                    body = await body
            except Exception:
                log.exception("the error page for %d failed", status)
                body = None
        if body is None:
            body = _default_error_body(status, exc.detail, detail)
        html = self.shell.render(
            to_html(body), datastar_url=self._datastar_url(), title=f"{status} {exc.detail}"
        )
        return HTMLResponse(html, status_code=status, headers=headers)


_ACTION_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ActionEntry(typing.NamedTuple):
    """A registered action: its spec, its argument plan, and its input's field names."""

    spec: ActionSpec
    plan: Plan
    #: The keys of the ``errors`` signal the action's input can patch.
    fields: tuple[str, ...]

    @classmethod
    def of(cls, spec: ActionSpec, plan: Plan) -> ActionEntry:
        """Plan once at registration what every call of the action needs."""
        signals = plan.signals
        return cls(spec, plan, field_names(signals.annotation) if signals else ())


class _LiveEndpoint:
    """A page's ``/_live`` route: a plain ASGI app, so the stream owns its response."""

    def __init__(self, app: App, spec: PageSpec) -> None:
        self.app = app
        self.spec = spec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app.startup()
        await self.app.live.serve(self.spec, scope, receive, send)


def _default_error_body(status: int, message: str, detail: str) -> Markup:
    body = Markup("<h1>{}</h1><p>{}</p>").format(status, message)
    if detail:
        body += Markup("<pre>{}</pre>").format(detail)
    return body


def _title(page: Page, default: str) -> str:
    return page.title() or default


def _page_head(page: Page) -> str:
    return page.head()


def _as_dict(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__struct_fields__}


def _live_options(cls: type[Page]) -> str:
    """The ``@get`` options of a page's stream, with its tab header.

    ``retry: 'always'`` makes the browser reconnect after a stream ends (a server
    restart) or answers 503 (one shutting down); a refused stream answers 204,
    which stops the retries.
    """
    options = f"headers: {{{js_string(TAB_HEADER)}: ${TAB_SIGNAL}}}, retry: 'always'"
    if cls.live_when_hidden:
        options += ", openWhenHidden: true"
    return options
