"""``App``: a livepages application, composed of its parts.

``App`` is a Starlette application, so middleware, mounts, plain routes and the
lifespan work as they do there: it mounts inside FastAPI or Starlette and can
mount them. It registers pages and actions and wires together the parts that
do the work:

- ``documents`` (``livepages.documents``): page documents and error pages;
- ``dispatcher`` (``livepages.dispatch``): actions, from checks to response;
- ``live`` (``livepages.live``): streams, views and fan-out;
- ``visitors`` (``livepages.visitors``): origin, CSRF, sessions and tabs;
- ``broker``, ``sessions``, ``store``, ``keys``, ``errors`` and ``hooks``.

Each page's routes are a ``PageRoutes`` (``livepages.routing``). Changes flow as
typed events through the broker (``app.publish``); the live engine re-renders
the views that subscribed to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, overload

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from livepages.abort import record_server_send
from livepages.actions import Method, action, action_spec
from livepages.assets import Assets
from livepages.backends import backends
from livepages.broker.base import Broker
from livepages.broker.prefix import with_prefix
from livepages.builds import Build
from livepages.compression import CompressionSettings
from livepages.csp import policy
from livepages.csrf import trusted_origins
from livepages.datastar import ServerSentEventGenerator
from livepages.dev.mode import DevMode
from livepages.dispatch import ACTION_METHODS, Dispatcher
from livepages.documents import Documents, ErrorPage
from livepages.events import Event
from livepages.feedback import Feedback
from livepages.guards import Guard
from livepages.handoff import handing_off
from livepages.hooks import Hooks, Published
from livepages.injection import Injector
from livepages.keys import Keys
from livepages.lifecycle import Lifecycle
from livepages.live import LiveEngine, passes_bodies_through
from livepages.middleware import build_stack
from livepages.pages import Page, root_path
from livepages.paths import caller_file, resolve_folder
from livepages.personal import PersonalView
from livepages.plans import PagePlan, plan_action
from livepages.presence import Members, Presence, PresenceBackend
from livepages.protocol import ACTION_PREFIX, SESSION_CLOSED, SessionNotice
from livepages.registration import planned
from livepages.reports import ErrorHook, Reporter
from livepages.routing import PageRoutes, SlashRedirect
from livepages.sessions.session import Session, SessionManager
from livepages.settings import Settings
from livepages.shell import Shell
from livepages.startup import guards
from livepages.store.store import Store
from livepages.tabs import Tab, TabRegistry, TabStore
from livepages.templates import Templates
from livepages.traffic import Traffic
from livepages.uploads import Uploads
from livepages.visitors import Visitors

__all__ = ["App", "ErrorPage"]

P = TypeVar("P", bound=type[Page])
F = TypeVar("F", bound=Callable[..., Any])


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
        tab_store: TabStore | None = None,
        store: Store | None = None,
        feedback: Feedback | None = None,
        routes: Sequence[BaseRoute] | None = None,
        middleware: Sequence[Middleware] | None = None,
        lifespan: Callable[[App], AbstractAsyncContextManager[Any]] | None = None,
        debug: bool | None = None,
    ) -> None:
        if debug is not None:
            settings = msgspec.structs.replace(settings or Settings(), debug=debug)
        #: Development mode, in a process of ``livepages dev`` (``livepages.dev.mode``).
        self.dev, settings, sessions = DevMode.enter(settings or Settings(), sessions)
        self.settings = settings
        self.keys = Keys(settings.secret_key, settings.previous_secret_keys, debug=settings.debug)
        # Given ones, or NATS when settings.nats_url is set (livepages.backends).
        broker, self.sessions, tab_store, presence = backends(settings, broker, sessions, tab_store)
        # Wrapped once, here: whatever publishes or subscribes through app.broker (events,
        # tab refreshes, closed sessions) stays inside the app's subject prefix.
        self.broker = with_prefix(broker, settings.subject_prefix)
        self.compression = compression or CompressionSettings()
        self.hooks = Hooks()
        self.errors = Reporter(debug=settings.debug, lifecycle=self.hooks)
        tabs = TabRegistry(self.keys.all("tabs"), settings.tab_grace, tab_store)
        self.visitors = Visitors(self.sessions, tabs, trusted_origins(settings, self.sessions))
        self.injector = _injector(self.visitors, self.sessions)
        if self.sessions is not None:
            self.sessions.bind(self.keys, self.announce_session_closed, self.hooks)
        source = caller_file()  # the app's module: its folders, its process lock
        here = source.parent if source is not None else None
        self.assets = _assets(settings, resolve_folder(static, here, "static") if static else None)
        self.templates = _templates(templates, here, self.asset if self.assets else None, settings)
        self.shell = Shell(lang=settings.lang, app_head=head)
        self.documents = _documents(self, source, feedback)
        self.dispatcher = Dispatcher(
            self.injector,
            self.visitors,
            self.errors,
            self.hooks,
            self.broker,
            self.startup,
            self.check_request,
        )
        self.pages: list[PagePlan] = []
        self.uploads = _uploads(self)  # chunked uploads (``livepages.uploads``)
        #: Who is on which topic now, on every process (``livepages.presence``).
        self.presence = _presence(self, presence)
        self.live = LiveEngine(self, tabs, PersonalView if settings.personal_holes else None)
        #: The reactive store: its commits re-render the views that read what changed.
        self.store = store
        self.lifecycle = _lifecycle(self, guards(settings, broker, self.keys, source))
        self._user_lifespan = lifespan
        super().__init__(
            debug=settings.debug,
            routes=list(routes or []),
            middleware=middleware,
            exception_handlers=self.documents.handlers(),
            lifespan=self._lifespan,
        )
        self.router.redirect_slashes = False  # Starlette's copies the Host header
        self.router.default = SlashRedirect(self.router)
        #: Times requests for the hooks, while metrics or logs listen (``livepages.traffic``).
        self.traffic = Traffic(self.hooks, self.router.routes)
        if self.assets is not None:
            self.router.routes.append(Mount(settings.static_prefix, app=self.assets))
        app_actions = Route(
            ACTION_PREFIX + "{_action}", self._app_action, methods=[*ACTION_METHODS]
        )
        self.router.routes.append(app_actions)
        self.router.routes.extend(self.uploads.routes())
        if self.dev is not None:
            self.dev.attach(self)

    def build_middleware_stack(self) -> ASGIApp:
        """The app's stack: ``livepages.middleware.build_stack`` around the router."""
        handlers, csp = dict(self.exception_handlers), policy(self.settings)
        stack = build_stack(self.router, self.user_middleware, handlers, self.sessions, csp)
        return handing_off(stack, passes_bodies_through(stack, self.router))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        token = root_path.set(scope.get("root_path", ""))
        record_server_send(scope, send)  # to abort a live stream's stuck connection
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        scope["app"] = self  # as Starlette's own call does, without its frame
        try:
            await self.traffic.serve(scope, receive, send, self.middleware_stack)
        finally:
            root_path.reset(token)

    # -- registration ---------------------------------------------------------------

    def page(self, path: str) -> Callable[[P], P]:
        """Register a page class at ``path`` (``{name}`` segments are its path fields)."""

        def register(cls: P) -> P:
            plan = planned(cls, PagePlan.build, cls, path, self.injector)
            if plan is None:  # livepages check: reported, and the import carries on
                return cls
            plan.spec.app = self
            self.pages.append(plan)
            if plan.spec.path == "/":
                self.dispatcher.root = plan
            self.router.routes.extend(PageRoutes(plan, self).routes())
            self.templates.env.globals.setdefault(cls.__name__, cls)  # url(Room, ...)
            return cls

        return register

    def plan_of(self, cls: type[Page]) -> PagePlan:
        """What the app planned for a registered page class."""
        return next(plan for plan in self.pages if plan.cls is cls)

    @overload
    def action(self, func: F) -> F: ...
    @overload
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
            entry = planned(f, plan_action, f, marked, self.injector)
            if entry is not None:  # (None: livepages check reported why)
                self.dispatcher.actions[marked.name] = entry
            return f

        return register(func) if func is not None else register

    def error_page(self, status: int) -> Callable[[ErrorPage], ErrorPage]:
        """Register the body of the error page for ``status`` (404, 500, ...)."""

        def register(func: ErrorPage) -> ErrorPage:
            self.documents.error_pages[status] = func
            return func

        return register

    def on_error(self, hook: ErrorHook) -> ErrorHook:
        """Call ``hook(request, exc)`` for every unhandled exception (report it, log it)."""
        self.errors.hooks.append(hook)
        return hook

    async def check_request(self, request: Request) -> None:
        """The checks before every action: a write from another site, or without the
        session's CSRF token, is a 403. Override to add your own (call ``super()``)."""
        await self.visitors.check_write(request)

    async def _app_action(self, request: Request) -> Response:
        return await self.dispatcher.app_action(request, self)

    # -- URLs -------------------------------------------------------------------------

    def _datastar_url(self) -> str:
        """The Datastar script: a hashed local file (mount prefix included), or the CDN's."""
        if self.settings.datastar_file is not None:
            return self.asset("datastar.js")
        return self.settings.datastar_url

    def asset(self, name: str) -> str:
        """The content-hashed URL of a static file."""
        if self.assets is None:
            raise LookupError(f"asset({name!r}): this app has no static folder (App(static=...))")
        return root_path.get() + self.assets.url(name)

    # -- events -----------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Publish an event: every view subscribed to its subject updates."""
        await self.startup()
        data = event.encode()
        await self.broker.publish(event.subject, data)
        if self.hooks.wants(Published):
            self.hooks.emit(Published(event.subject, len(data)))

    async def announce_session_closed(self, key: str, notice: SessionNotice) -> None:
        """Tell every stream of session ``key``, wherever the broker reaches, that it ended."""
        await self.startup()
        await self.broker.publish(SESSION_CLOSED + key, notice.encode())

    # -- lifecycle --------------------------------------------------------------------

    async def startup(self) -> None:
        """Start the broker, the stores, presence and the live engine, once: the lifespan
        does, or else the first request or publish (``livepages.lifecycle``)."""
        await self.lifecycle.start()

    async def close_streams(self) -> None:
        """End every live stream now (a server stopping); the broker keeps running
        until the lifespan ends, so the app's own background work can finish."""
        await self.live.shutdown()

    async def shutdown(self) -> None:
        """End every live stream, stop the broker and close the stores. Idempotent."""
        await self.lifecycle.stop()

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


def _lifecycle(app: App, checks: Sequence[Guard]) -> Lifecycle:
    """What starts and stops the app's parts (its store bound to its live engine first)."""
    if app.store is not None:
        app.store.bind(app.broker, app.live.reads, app.startup)
    parts = (app.broker, app.sessions, app.live, app.presence, app.store, checks)
    return Lifecycle(*parts, gc_threshold=app.settings.gc_threshold)


def _documents(app: App, source: Path | None, feedback: Feedback | None) -> Documents:
    """The app's documents: its build (``livepages.builds``) and its feedback."""
    settings = app.settings
    documents = Documents(
        app.shell, settings, app.injector, app.visitors, app.errors, app._datastar_url
    )
    documents.build = Build(settings.build_id, source, _folders(app))
    if feedback is not None and settings.feedback:  # its words and look, adjusted
        documents.feedback = feedback
    return documents


def _folders(app: App) -> list[Path]:
    """The app's template and static folders, part of its build (``livepages.builds``)."""
    loader = app.templates.env.loader
    folders = [Path(p) for p in getattr(loader, "searchpath", ())]
    if app.assets is not None and app.assets.directory is not None:
        folders.append(Path(app.assets.directory))
    return folders


def _uploads(app: App) -> Uploads:
    """The app's uploads: its endpoint, the template helper ``upload(signal)`` and the
    action parameters ``Uploaded`` and ``list[Uploaded]``."""
    uploads = Uploads(app.settings, app.keys.derive("uploads"), app.visitors, app.check_request)
    uploads.install(app.injector)
    app.templates.env.globals.setdefault("upload", uploads.attributes)
    return uploads


def _presence(app: App, backend: PresenceBackend) -> Presence:
    """The app's presence on ``backend``, injectable into renders as ``Members``."""
    presence = Presence(
        backend,
        key=app.keys.derive("presence"),
        broker=app.broker,
        visitors=app.visitors,
        injector=app.injector,
        errors=app.errors,
    )
    app.injector.provide(Members, presence.resolve)
    return presence


def _injector(visitors: Visitors, sessions: SessionManager | None) -> Injector:
    """The injector of an app: what pages, actions and handlers can ask for by type."""
    injector = Injector()
    injector.provide(App, lambda ctx: ctx.app)
    injector.provide(ServerSentEventGenerator, lambda ctx: ctx.sse)
    injector.provide(Tab, visitors.tab)
    if sessions is not None:
        injector.provide_generic(Session, visitors.session_resolver)
    return injector


def _assets(settings: Settings, static: Path | None) -> Assets | None:
    """The app's static files, and the local Datastar build if one is set."""
    files = {"datastar.js": settings.datastar_file} if settings.datastar_file else {}
    if static is None and not files:
        return None
    return Assets(static, prefix=settings.static_prefix, dev=settings.debug, files=files)


def _templates(
    templates: str | Path | Templates | None,
    here: Path | None,
    asset: Callable[[str], str] | None,
    settings: Settings,
) -> Templates:
    """The app's templates: the ones given, or a folder's (beside the app's module)."""
    if isinstance(templates, Templates):
        if asset is not None:
            templates.env.globals["asset"] = asset
        return templates
    folder = resolve_folder(templates, here, "templates") if templates else None
    return Templates(folder, asset=asset, auto_reload=settings.debug)
