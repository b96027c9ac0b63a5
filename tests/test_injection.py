"""Injection by annotation: planned at registration, resolved per call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.types import ASGIApp

from livepages import App, Page, Query, Signals, action
from livepages.injection import Context, Injector
from livepages.inputs import read_input
from livepages.settings import Settings


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class Opaque:
    """A type nobody taught the injector."""


@dataclass
class Draft:
    text: str


@dataclass
class Other:
    n: int


def register_action(func: Any) -> None:
    app = App()
    namespace = {"render": lambda self: "", func.__name__: action(func)}
    app.page("/p")(type("P", (Page,), namespace))


async def unknown(self: Page, thing: Opaque) -> None:
    pass


async def unannotated(self: Page, thing) -> None:  # type: ignore[no-untyped-def]
    pass


async def two_signals(self: Page, draft: Draft, other: Other) -> None:
    pass


async def two_signals_marked(
    self: Page, draft: Draft, raw: Annotated[dict[str, Any], Signals]
) -> None:
    pass


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (unknown, "unknown\\(\\): parameter 'thing': livepages cannot inject a value of type"),
        (unannotated, "unannotated\\(\\): parameter 'thing' needs a type annotation"),
        (two_signals, "two_signals: only one parameter can receive the signals"),
        (two_signals_marked, "two_signals_marked: only one parameter can receive the signals"),
    ],
    ids=["unknown-type", "no-annotation", "two-signals", "two-signals-marked"],
)
def test_bad_action_signatures_fail_at_registration(func: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        register_action(func)


def test_bad_render_signature_fails_at_registration() -> None:
    async def render(self: Page, thing: Opaque) -> str:
        return ""

    with pytest.raises(TypeError, match="parameter 'thing'"):
        App().page("/")(type("P", (Page,), {"render": render}))


def test_bad_app_action_fails_at_registration() -> None:
    async def act(thing: Opaque) -> None:
        pass

    with pytest.raises(TypeError, match="parameter 'thing'"):
        App().action(act)


class Clock:
    """A service the app provides by type."""

    def __init__(self, now: str) -> None:
        self.now = now


class User:
    def __init__(self, name: str) -> None:
        self.name = name


seen_args: list[Any] = []
app = App()
app.injector.provide(Clock, lambda ctx: Clock("noon"))


async def current_user(ctx: Context) -> User:  # an async resolver, awaited per call
    return User(ctx.request.headers.get("x-user", "anonymous"))


app.injector.provide(User, current_user)


@app.page("/inbox/{box}")
class Inbox(Page):
    box: str

    async def render(self, clock: Clock, user: User, request: Request) -> str:
        return f"{self.box} at {clock.now} for {user.name} via {request.method}"

    @action
    async def read(
        self,
        user: User,
        query: QueryParams,
        application: App,
        marked: Annotated[User, "a comment"],
        draft: Draft,
    ) -> None:
        seen_args.append((self.box, user.name, dict(query), application is app, marked.name, draft))


@pytest.mark.anyio
async def test_provided_types_reach_render() -> None:
    async with client(app) as c:
        response = await c.get("/inbox/main", headers={"x-user": "ada"})
    assert '<main id="lp-root">main at noon for ada via GET</main>' in response.text


@pytest.mark.anyio
async def test_everything_an_action_can_ask_for() -> None:
    seen_args.clear()
    async with client(app) as c:
        response = await c.post(
            "/inbox/main/_action/read?x=1", json={"text": "hi"}, headers={"x-user": "bob"}
        )
    assert response.status_code == 204
    assert seen_args == [("main", "bob", {"x": "1"}, True, "bob", Draft("hi"))]


@pytest.mark.anyio
async def test_each_call_resolves_anew() -> None:
    async with client(app) as c:
        first = await c.get("/inbox/a", headers={"x-user": "one"})
        second = await c.get("/inbox/a", headers={"x-user": "two"})
    assert "for one" in first.text
    assert "for two" in second.text


def test_plan_describes_the_parameters() -> None:
    injector = Injector()

    async def act(self: Any, draft: Draft, request: Request, f: Annotated[Other, Query]) -> None:
        pass

    plan = injector.plan(act, skip_first=True)
    assert [(p.name, p.kind) for p in plan.params] == [
        ("draft", "signals"),
        ("request", "provide"),
        ("f", "query"),
    ]
    assert plan.signals is not None
    assert plan.signals.name == "draft"
    assert plan.wants(Request)
    assert not plan.wants(QueryParams)
    assert plan.is_async


def test_plan_ignores_the_return_annotation() -> None:
    # An action may return its own page class before that name is bound.
    def act(self: Any) -> NotYetDefined:  # type: ignore[name-defined]  # noqa: F821
        raise AssertionError

    assert Injector().plan(act, skip_first=True).params == ()


@pytest.mark.anyio
async def test_plan_calls_sync_and_async_functions() -> None:
    def sync(x: Any) -> int:
        return 1

    async def asynchronous(x: Any) -> int:
        return 2

    injector = Injector()
    assert await injector.plan(sync, skip_first=True).call(0) == 1
    assert await injector.plan(asynchronous, skip_first=True).call(0) == 2


@dataclass
class Named:
    """A dataclass that a named provider, not the signals, supplies."""

    name: str


@pytest.mark.anyio
async def test_a_named_provider_knows_the_parameter_and_shares_the_body() -> None:
    injector = Injector()

    def factory(name: str) -> Any:
        async def resolve(ctx: Context) -> Named:
            values = await read_input(ctx.request, Settings(), dict)
            return Named(f"{name}={values.get(name)}")

        return resolve

    injector.provide_named(Named, factory)

    async def act(draft: Draft, photo: Named) -> None: ...

    plan = injector.plan(act)
    body = b'{"text": "hi", "photo": "x"}'
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "headers": [], "query_string": b""}
    kwargs = await injector.arguments(plan, Context(Request(scope, receive)))
    # Both parameters read the one body: the second from what the first kept.
    assert kwargs == {"draft": Draft("hi"), "photo": Named("photo=x")}
