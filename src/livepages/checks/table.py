"""The route table of an app: every route it answers, in the order its router tries them.

Pages (their GET document), their live streams and each of their actions, app-wide
actions, the upload endpoint and its script, the static files and the local Datastar
build, plain Starlette routes and mounts, and the routes of mounted apps with the mount's
prefix in front. ``livepages routes`` prints it; ``livepages check`` looks for routes
that collide in it.

A page's routes are listed together (document, stream, actions) where the page's first
route is. Actions are listed one per name (``/rooms/{room}/_action/send``), although one
route answers all the actions of a page.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Host, Mount, Route, WebSocketRoute, compile_path

from livepages.app import App
from livepages.pages import Page
from livepages.plans import PagePlan
from livepages.protocol import ACTION_PREFIX, LIVE_PATH
from livepages.routing import PageRoutes
from livepages.uploads import Uploads

__all__ = ["RouteEntry", "RouteKind", "apps_in", "route_table"]


class RouteKind(enum.Enum):
    """What answers a route."""

    PAGE = "page"
    STREAM = "stream"
    ACTION = "action"
    UPLOAD = "upload"
    STATIC = "static"
    DATASTAR = "datastar"
    MOUNT = "mount"
    ROUTE = "route"
    WEBSOCKET = "websocket"
    HOST = "host"


@dataclass(frozen=True, slots=True, eq=False)
class RouteEntry:
    """One row of the table."""

    kind: RouteKind
    #: The HTTP methods it answers; empty for any.
    methods: tuple[str, ...]
    #: The full path, mount prefixes included, in Starlette's ``{name}`` syntax.
    path: str
    #: What answers: a page class, ``Page.action``, an action or endpoint function.
    target: str
    note: str = ""
    #: The class or function to point at when this route has a problem.
    owner: object = None
    #: The livepages app that serves it (None for plain Starlette routes outside one).
    app: App | None = None
    #: The Starlette route it comes from, and the mounts that hold it.
    route: BaseRoute | None = None
    mounts: tuple[BaseRoute, ...] = field(default=())
    #: What request paths it takes (None for rows that are not routes of their own).
    pattern: re.Pattern[str] | None = None

    def describe(self) -> str:
        """The route in words: ``page Item``, ``the live stream of Item``, ..."""
        if self.kind is RouteKind.STREAM:
            return f"the live stream of {self.target}"
        if self.kind is RouteKind.ACTION and self.note == "app-wide":
            return f"app-wide action {self.target}"
        if self.kind in (RouteKind.STATIC, RouteKind.DATASTAR):
            return f"the {self.target}"
        if self.kind is RouteKind.MOUNT:
            return f"the mount of a {self.target}"
        return f"{self.kind.value} {self.target}"


def route_table(app: Any) -> list[RouteEntry]:
    """The table of a Starlette (or livepages) app; empty for an app without routes."""
    return list(_walk(app, _Where(app if isinstance(app, App) else None, "", ())))


def apps_in(app: Any) -> list[tuple[str, App]]:
    """Every livepages app in ``app``: itself, and any mounted in it, with their prefixes."""
    found = [("", app)] if isinstance(app, App) else []
    for entry in route_table(app):
        mounted = _base(entry.route)
        if entry.kind is RouteKind.MOUNT and isinstance(mounted, App):
            found.append((entry.path, mounted))
    return found


@dataclass(frozen=True, slots=True)
class _Where:
    """Where the walk is: in which livepages app, below which prefix and mounts."""

    app: App | None
    prefix: str
    mounts: tuple[BaseRoute, ...]

    def row(
        self,
        kind: RouteKind,
        methods: tuple[str, ...],
        path: str,
        target: str,
        note: str = "",
        *,
        owner: object = None,
        route: BaseRoute | None = None,
        matches: str | None = None,
    ) -> RouteEntry:
        """A row here; ``matches`` is the path pattern it takes, when it is a route."""
        pattern = _pattern(matches) if matches is not None else None
        return RouteEntry(
            kind, methods, path, target, note, owner, self.app, route, self.mounts, pattern
        )


def _walk(app: Any, where: _Where) -> Iterator[RouteEntry]:
    routes: Sequence[BaseRoute] = getattr(app, "routes", None) or []
    listed: set[int] = set()
    for route in routes:
        if isinstance(route, Mount):
            yield from _mount(route, where)
        elif isinstance(route, Route):
            yield from _route(route, where, listed)
        elif isinstance(route, WebSocketRoute):
            path = where.prefix + route.path
            name = _qualified(route.endpoint)
            yield where.row(
                RouteKind.WEBSOCKET, (), path, name, owner=route.endpoint, route=route, matches=path
            )
        elif isinstance(route, Host):
            yield where.row(RouteKind.HOST, (), route.host, type(route.app).__name__, route=route)
        else:
            yield where.row(RouteKind.ROUTE, (), "", type(route).__name__, route=route)


#: What each route of the upload endpoint does, by its method's name.
_UPLOADS = {"script": "upload script", "start": "new upload", "upload": "an upload"}


def _mount(route: Mount, where: _Where) -> Iterator[RouteEntry]:
    path = where.prefix + route.path
    catch_all = path + "/{path:path}"
    assets = where.app.assets if where.app is not None else None
    if where.app is not None and assets is not None and route.app is assets:
        folder = str(assets.directory or "")
        yield where.row(
            RouteKind.STATIC,
            ("GET",),
            path + "/{path}",
            "static files",
            folder,
            route=route,
            matches=catch_all,
        )
        datastar = where.app.settings.datastar_file
        if datastar is not None:
            url = where.prefix + assets.url("datastar.js")
            yield where.row(
                RouteKind.DATASTAR, ("GET",), url, "Datastar file", datastar, route=route
            )
        return
    base = _base(route)
    what = "livepages app" if isinstance(base, App) else type(base).__name__
    yield where.row(RouteKind.MOUNT, (), path, what, route=route, matches=catch_all)
    inner = _Where(base if isinstance(base, App) else None, path, (*where.mounts, route))
    yield from _walk(base, inner)


def _route(route: Route, where: _Where, listed: set[int]) -> Iterator[RouteEntry]:
    endpoint = route.endpoint
    owner = getattr(endpoint, "__self__", None)
    stream_of = getattr(endpoint, "routes", None)  # a page's /_live endpoint knows its routes
    page_routes = owner if isinstance(owner, PageRoutes) else stream_of
    if isinstance(page_routes, PageRoutes):
        if id(page_routes) not in listed:  # the page's rows, once, where its first route is
            listed.add(id(page_routes))
            yield from _page(page_routes.plan, where)
        return
    if isinstance(owner, App) and owner is where.app:  # the app-wide /_action/{name}
        for name, entry in owner.dispatcher.actions.items():
            path = where.prefix + ACTION_PREFIX + name
            yield where.row(
                RouteKind.ACTION,
                (entry.spec.method,),
                path,
                name,
                "app-wide",
                owner=entry.plan.func,
                route=route,
                matches=path,
            )
        return
    methods = tuple(sorted((route.methods or set()) - {"HEAD"}))
    path = where.prefix + route.path
    if isinstance(owner, Uploads):
        what = _UPLOADS.get(endpoint.__name__, endpoint.__name__)
        yield where.row(RouteKind.UPLOAD, methods, path, what, route=route, matches=path)
        return
    yield where.row(
        RouteKind.ROUTE,
        methods,
        path,
        _qualified(endpoint),
        owner=endpoint,
        route=route,
        matches=path,
    )


def _page(plan: PagePlan, where: _Where) -> Iterator[RouteEntry]:
    cls: type[Page] = plan.cls
    path = where.prefix + plan.spec.path
    base = where.prefix + plan.spec.path.rstrip("/")
    note = "live" if cls.live else "not live"
    yield where.row(RouteKind.PAGE, ("GET",), path, cls.__name__, note, owner=cls, matches=path)
    if cls.live:
        stream = base + LIVE_PATH
        yield where.row(RouteKind.STREAM, ("GET",), stream, cls.__name__, owner=cls, matches=stream)
    for name, entry in plan.actions.items():
        action = base + ACTION_PREFIX + name
        target = f"{cls.__name__}.{entry.plan.func.__name__}"
        yield where.row(
            RouteKind.ACTION,
            (entry.spec.method,),
            action,
            target,
            "page",
            owner=entry.plan.func,
            matches=action,
        )


def _pattern(path: str) -> re.Pattern[str] | None:
    try:
        return compile_path(path)[0]
    except (ValueError, AssertionError):
        return None


def _base(route: BaseRoute | None) -> Any:
    """The app a mount holds, inside the middleware it may be wrapped in."""
    return getattr(route, "_base_app", getattr(route, "app", None))


def _qualified(endpoint: Any) -> str:
    module = getattr(endpoint, "__module__", None)
    name = getattr(endpoint, "__qualname__", None) or type(endpoint).__name__
    return f"{module}.{name}" if module else name
