"""All the examples in one ASGI app: each mounted under its own prefix, an index at ``/``.

Every example is a livepages ``App`` (or a Starlette app) that knows nothing of
the others; mounted under ``/counter`` its page links, action URLs and live
stream URL carry the prefix by themselves. Starlette runs the lifespan of the
outer app only, so the outer lifespan enters each mounted app's own: that is
what starts the Game of Life's stepping loop and each app's broker, and what
ends their live streams on shutdown.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from html import escape
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from livepages import Settings
from livepages.middleware import SecurityHeaders

__all__ = ["EXAMPLES", "Example", "create_app", "from_env", "mounted"]


@dataclass(frozen=True, slots=True)
class Example:
    """One example: where it is mounted, the module that builds it, what it shows."""

    prefix: str
    module: str
    title: str
    about: str
    #: Mounted only when its module exists (it is written separately).
    optional: bool = False


EXAMPLES = (
    Example("/counter", "examples.counter.app", "Counter", "one number shared by every viewer"),
    Example(
        "/todolist",
        "examples.todolist.app",
        "Todo list",
        "a shared list with a filter of each tab's own",
    ),
    Example(
        "/chat", "examples.chat.app", "Chat", "rooms whose new messages are appended, not redrawn"
    ),
    Example(
        "/feed",
        "examples.feed.app",
        "Feed",
        "100,000 posts on one live page; each new post, like or delete is one small patch",
    ),
    Example(
        "/game_of_life",
        "examples.game_of_life.app",
        "Game of Life",
        "a 50x50 board stepped by the server at 5 Hz, one render per step for everyone",
    ),
    Example(
        "/signup",
        "examples.signup.app",
        "Sign-up",
        "a form validated field by field on the server",
        optional=True,
    ),
    Example(
        "/notes",
        "examples.notes.app",
        "Notes",
        "sessions: sign in, private notes, close your sessions",
        optional=True,
    ),
    Example(
        "/classifieds",
        "examples.classifieds.app",
        "Classifieds",
        "a marketplace: accounts, search, photos, buyer-seller chat, who is looking",
    ),
    Example(
        "/sdk", "examples.sdk_demo", "SDK demo", "a clock and an echo on the bare Datastar SDK"
    ),
)


def _exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # its package is missing too
        return False


def build(example: Example, settings: Settings) -> ASGIApp | None:
    """The example's app: from ``create_app(settings)`` if it has one, else its ``app``.

    ``None`` for an optional example that is not there. One that is there but
    fails to import raises: a broken example should be loud, not missing.
    """
    if example.optional and not _exists(example.module):
        return None
    module = importlib.import_module(example.module)
    factory: Callable[..., ASGIApp] | None = getattr(module, "create_app", None)
    if factory is not None:
        return factory(settings)
    app: ASGIApp | None = getattr(module, "app", None)
    if app is None and not example.optional:
        raise LookupError(f"{example.module} defines neither create_app nor app")
    return app


def mounted(settings: Settings | None = None) -> list[tuple[Example, ASGIApp]]:
    """Every example that is there, with its app."""
    settings = settings or Settings()
    found = [(example, build(example, settings)) for example in EXAMPLES]
    return [(example, app) for example, app in found if app is not None]


def _index_page(examples: list[Example]) -> str:
    items = "".join(
        f'<li><a href="{escape(e.prefix)}/">{escape(e.title)}</a>: {escape(e.about)}</li>'
        for e in examples
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,"><title>livepages examples</title>'
        "<style>body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }"
        "</style></head>"
        f'<body><h1>livepages examples</h1><ul id="examples">{items}</ul></body></html>'
    )


def from_env() -> Starlette:
    """Every example with its settings from ``LIVEPAGES_*`` variables, for ``livepages
    run 'examples.index:from_env()'`` (with ``LIVEPAGES_NATS_URL``, on many workers)."""
    return create_app(Settings.from_env())


def create_app(settings: Settings | None = None) -> Starlette:
    """One app serving every example under its prefix, with the index at ``/``."""
    apps = mounted(settings)
    page = _index_page([example for example, _ in apps])

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    @asynccontextmanager
    async def lifespan(parent: Starlette) -> AsyncIterator[None]:
        # Starlette does not run a mounted app's lifespan: enter each one here, and
        # leave them in reverse order on shutdown.
        async with AsyncExitStack() as stack:
            for _, app in apps:
                if isinstance(app, Starlette):
                    context: Any = app.router.lifespan_context(app)
                    await stack.enter_async_context(context)
            yield

    routes: list[BaseRoute] = [Route("/", index)]
    routes += [Mount(example.prefix, app=app) for example, app in apps]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
