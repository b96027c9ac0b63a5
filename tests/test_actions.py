"""Actions: methods, signals, injection, streaming, redirects, errors, and ``invoke``."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message

from livepages import (
    SSE,
    App,
    Forbidden,
    Page,
    Query,
    Redirect,
    Settings,
    Signals,
    ValidationError,
    action,
    invoke,
    redirect,
)
from livepages.datastar import events, patch_elements, patch_signals
from livepages.responses import error_event


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


DATASTAR = {"datastar-request": "true"}


def signal_patch(response: httpx.Response) -> Any:
    """The JSON of the single ``datastar-patch-signals`` event a response holds."""
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    head, sep, rest = response.content.partition(b"data: signals ")
    assert head == b"event: datastar-patch-signals\n"
    assert sep
    assert rest.endswith(b"\n\n")
    assert rest.count(b"\n") == 2, "one event on one line"
    return msgspec.json.decode(rest)


@dataclass
class Draft:
    text: str
    count: int = 0


class Move(msgspec.Struct):
    x: int
    y: int


@dataclass
class Filters:
    sort: str = "name"
    limit: int = 10


@dataclass
class Signup:
    email: str
    age: int
    name: str = ""


calls: list[tuple[Any, ...]] = []


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


app = App(settings=Settings(max_signals_size=256))


@app.page("/rooms/{room}")
class Room(Page):
    room: int
    tab: str = "chat"

    async def render(self) -> str:
        return "room"

    @action
    async def send(self, draft: Draft) -> None:
        calls.append(("send", self.room, self.tab, draft))

    @action(method="PUT")
    async def put(self, move: Move) -> None:
        calls.append(("put", move))

    @action(method="PATCH")
    def patch(self, move: Move) -> None:  # a sync action
        calls.append(("patch", move))

    @action(method="DELETE")
    async def remove(self, draft: Draft) -> None:
        calls.append(("remove", draft))

    @action(name="renamed")
    async def original(self) -> None:
        calls.append(("renamed",))

    @action
    async def search(self, filters: Annotated[Filters, Query], request: Request) -> None:
        calls.append(("search", filters, request.method, request.url.path))

    @action
    async def raw(self, signals: Annotated[dict[str, Any], Signals]) -> None:
        calls.append(("raw", signals))

    @action
    async def stream(self, sse: SSE) -> None:
        await sse.patch_elements('<p id="one">1</p>')
        await sse.patch_signals({"n": self.room})

    @action
    async def go(self) -> Redirect:
        return redirect("/elsewhere?next='x'</script>")

    @action
    async def next_room(self) -> Room:
        return Room(room=self.room + 1, tab=self.tab)

    @action
    async def signup(self, form: Signup) -> None:
        if form.email == "taken@example.com":
            raise ValidationError({"email": "is taken"})
        calls.append(("signup", form))

    @action
    async def stream_signup(self, form: Signup, sse: SSE) -> None:
        await sse.patch_elements('<p id="busy">checking</p>')
        if form.email == "taken@example.com":
            raise ValidationError({"email": "is taken"})

    @action
    async def stream_forbidden(self, sse: SSE) -> None:
        await sse.patch_elements('<p id="busy">checking</p>')
        raise Forbidden("not yours")

    @action
    async def stream_redirect(self, sse: SSE) -> Redirect:
        await sse.patch_elements('<p id="busy">leaving</p>')
        return redirect("/bye")

    @action
    async def forbidden(self) -> None:
        raise Forbidden("not yours")

    @action
    async def custom(self) -> Response:
        return PlainTextResponse("custom", status_code=201)

    @action
    async def odd(self) -> int:
        return 3


@app.action
async def ping(request: Request) -> None:
    calls.append(("ping", request.url.path))


def clear() -> None:
    calls.append(("clear",))


# Not as a decorator: App.action(...) is typed as returning Any, which mypy --strict
# reports as an untyped decorator.
app.action(method="DELETE", name="clear-all")(clear)


@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as c:
        yield c


# -- methods and routing -------------------------------------------------------------


@pytest.mark.anyio
async def test_post_action_gets_page_params_and_signals(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/5/_action/send?tab=files", json={"text": "hi", "count": 2})
    assert response.status_code == 204
    assert calls == [("send", 5, "files", Draft(text="hi", count=2))]


@pytest.mark.anyio
async def test_signals_the_action_does_not_declare_are_ignored(c: httpx.AsyncClient) -> None:
    # Datastar sends every (non-local) signal of the page with each request.
    response = await c.post("/rooms/5/_action/send", json={"text": "hi", "other": {"a": 1}})
    assert response.status_code == 204
    assert calls == [("send", 5, "chat", Draft(text="hi"))]


@pytest.mark.anyio
async def test_put_and_patch_with_a_struct(c: httpx.AsyncClient) -> None:
    assert (await c.put("/rooms/1/_action/put", json={"x": 1, "y": 2})).status_code == 204
    assert (await c.patch("/rooms/1/_action/patch", json={"x": 3, "y": 4})).status_code == 204
    assert calls == [("put", Move(1, 2)), ("patch", Move(3, 4))]


@pytest.mark.anyio
async def test_delete_reads_signals_from_the_query(c: httpx.AsyncClient) -> None:
    # Datastar sends DELETE signals in the `datastar` query parameter, as for GET.
    response = await c.delete("/rooms/1/_action/remove", params={"datastar": '{"text": "bye"}'})
    assert response.status_code == 204
    assert calls == [("remove", Draft(text="bye"))]


@pytest.mark.anyio
async def test_action_name_can_differ_from_the_method_name(c: httpx.AsyncClient) -> None:
    assert (await c.post("/rooms/1/_action/renamed")).status_code == 204
    assert (await c.post("/rooms/1/_action/original")).status_code == 404
    assert calls == [("renamed",)]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/rooms/1/_action/send", "POST"),
        ("POST", "/rooms/1/_action/put", "PUT"),
        ("DELETE", "/rooms/1/_action/patch", "PATCH"),
        ("PATCH", "/rooms/1/_action/remove", "DELETE"),
        ("POST", "/_action/clear-all", "DELETE"),
        ("DELETE", "/_action/ping", "POST"),
    ],
)
async def test_wrong_method_is_405_with_allow(
    c: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    response = await c.request(method, path, json={})
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert calls == []


@pytest.mark.anyio
async def test_get_on_an_action_is_405(c: httpx.AsyncClient) -> None:
    response = await c.get("/rooms/1/_action/send")
    assert response.status_code == 405
    assert "GET" not in response.headers["allow"]


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/rooms/1/_action/nope", "/_action/nope"])
async def test_unknown_action_is_404(c: httpx.AsyncClient, path: str) -> None:
    response = await c.post(path)
    assert response.status_code == 404
    assert "nope" in response.text


@pytest.mark.anyio
async def test_bad_page_param_in_the_action_url_is_400(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/abc/_action/send", json={"text": "x"})
    assert response.status_code == 400
    assert "parameter &#39;room&#39;" in response.text
    assert calls == []


# -- inputs ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_query_struct_and_request_injection(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/search?sort=date&limit=5&tab=x")
    assert response.status_code == 204
    assert calls == [("search", Filters("date", 5), "POST", "/rooms/1/_action/search")]


@pytest.mark.anyio
async def test_bad_query_struct_is_400_naming_the_field(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/search?limit=many")
    assert response.status_code == 400
    assert "invalid query: limit: must be a whole number" in response.text


@pytest.mark.anyio
async def test_raw_signals_dict(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/raw", json={"a": [1, 2], "b": {"c": None}})
    assert response.status_code == 204
    assert calls == [("raw", {"a": [1, 2], "b": {"c": None}})]


@pytest.mark.anyio
async def test_malformed_signals_json_is_400(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/send", content=b'{"text": ')
    assert response.status_code == 400
    assert "signals are not valid JSON" in response.text
    assert calls == []


@pytest.mark.anyio
async def test_malformed_signals_json_from_datastar_patches_error(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/send", content=b'{"text": ', headers=DATASTAR)
    error = signal_patch(response)["_error"]
    assert error["status"] == 400
    assert error["message"].startswith("signals are not valid JSON: ")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("signals", "fragment"),
    [
        ({"text": 5}, "Expected `str`, got `int` - at `$.text`"),
        ({"text": "a", "count": "2"}, "Expected `int`, got `str` - at `$.count`"),
        ({}, "Object missing required field `text`"),
        ([1], "Expected `object`, got `array`"),
    ],
)
async def test_wrong_signal_types_are_400_naming_the_field(
    c: httpx.AsyncClient, signals: Any, fragment: str
) -> None:
    response = await c.post("/rooms/1/_action/send", json=signals)
    assert response.status_code == 400
    assert fragment in response.text.replace("&#96;", "`")
    assert calls == []


@pytest.mark.anyio
async def test_oversized_signals_are_413(c: httpx.AsyncClient) -> None:
    big = {"text": "x" * 300}
    assert (await c.post("/rooms/1/_action/send", json=big)).status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 50
        yield b'"}'

    response = await c.post("/rooms/1/_action/send", content=chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    query = {"datastar": msgspec.json.encode(big).decode()}
    assert (await c.delete("/rooms/1/_action/remove", params=query)).status_code == 413
    assert calls == []


hardened = App()
refusals: list[BaseException] = []
hardened.on_error(lambda request, exc: refusals.append(exc))


@hardened.page("/notes")
class Notes(Page):
    async def render(self) -> str:
        return ""

    @action
    async def add(self, draft: Draft) -> None:
        calls.append(("add", draft))

    @action(method="DELETE")
    async def remove(self, draft: Draft) -> None:
        calls.append(("remove", draft))


DEEP = "[" * 1000 + "]" * 1000
UNDECODABLE = [
    (b'{"text": "\xff"}', "not UTF-8"),
    (b'{"text": "x", "undeclared": ' + DEEP.encode() + b"}", "nested deeper than 64 levels"),
    (DEEP.encode(), "nested deeper than 64 levels"),
]


async def refused(request: httpx.Request, caplog: pytest.LogCaptureFixture) -> httpx.Response:
    """Send ``request`` to the hardened app; it must be refused quietly, as the client's fault."""
    refusals.clear()
    with caplog.at_level(logging.DEBUG):
        async with client(hardened) as c:
            response = await c.send(request)
    assert refusals == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert calls == []
    return response


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "message"), UNDECODABLE, ids=["bad-byte", "deep-field", "deep"])
@pytest.mark.parametrize("datastar", [False, True], ids=["browser", "datastar"])
async def test_signals_that_do_not_decode_are_a_400(
    caplog: pytest.LogCaptureFixture, body: bytes, message: str, datastar: bool
) -> None:
    headers = DATASTAR if datastar else {}
    request = httpx.Request(
        "POST", "http://testserver/notes/_action/add", content=body, headers=headers
    )
    response = await refused(request, caplog)
    if datastar:
        error = signal_patch(response)["_error"]
        assert error["status"] == 400
        assert message in error["message"]
    else:
        assert response.status_code == 400
        assert message in response.text


@pytest.mark.anyio
@pytest.mark.parametrize(("body", "message"), UNDECODABLE, ids=["bad-byte", "deep-field", "deep"])
async def test_a_delete_query_that_does_not_decode_is_a_400(
    caplog: pytest.LogCaptureFixture, body: bytes, message: str
) -> None:
    query = urllib.parse.quote_from_bytes(body)
    url = "http://testserver/notes/_action/remove?datastar=" + query
    response = await refused(httpx.Request("DELETE", url), caplog)
    assert response.status_code == 400
    assert message in response.text


# -- results: redirects, pages, responses -------------------------------------------------


@pytest.mark.anyio
async def test_redirect_is_303_for_a_browser(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/go")
    assert response.status_code == 303
    assert response.headers["location"] == "/elsewhere?next='x'%3C/script%3E"


@pytest.mark.anyio
async def test_redirect_is_a_script_patch_for_datastar(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/go", headers=DATASTAR)
    assert response.status_code == 200
    assert response.content == events.redirect("/elsewhere?next='x'</script>")
    assert b"</script>" not in response.content.split(b"data: elements ", 1)[1][:-20]


@pytest.mark.anyio
async def test_returning_a_page_redirects_to_it(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/next_room?tab=files")
    assert response.status_code == 303
    assert response.headers["location"] == "/rooms/2?tab=files"
    response = await c.post("/rooms/1/_action/next_room", headers=DATASTAR)
    assert response.content == events.redirect("/rooms/2")


@pytest.mark.anyio
async def test_returning_a_response_sends_it(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/custom")
    assert (response.status_code, response.text) == (201, "custom")


@pytest.mark.anyio
async def test_returning_anything_else_is_a_server_error(c: httpx.AsyncClient) -> None:
    assert (await c.post("/rooms/1/_action/odd")).status_code == 500


@pytest.mark.anyio
async def test_http_error_from_an_action(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/forbidden")
    assert response.status_code == 403
    assert "<p>not yours</p>" in response.text
    response = await c.post("/rooms/1/_action/forbidden", headers=DATASTAR)
    assert signal_patch(response) == {"_error": {"status": 403, "message": "not yours"}}


# -- streaming ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_action_streams_with_an_injected_sse(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/9/_action/stream", headers=DATASTAR)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    done = patch_signals({"_error": {"status": 0, "message": ""}})  # a success clears _error
    assert response.content == patch_elements('<p id="one">1</p>') + patch_signals({"n": 9}) + done


@pytest.mark.anyio
async def test_streaming_action_validation_error_patches_errors(c: httpx.AsyncClient) -> None:
    busy = patch_elements('<p id="busy">checking</p>')
    taken = {"email": "taken@example.com", "age": 30}
    response = await c.post("/rooms/1/_action/stream_signup", json=taken, headers=DATASTAR)
    errors = {"errors": {"email": "is taken", "age": "", "name": ""}}
    assert response.content == busy + patch_signals(errors)
    fine = {"email": "a@example.com", "age": 30}
    response = await c.post("/rooms/1/_action/stream_signup", json=fine, headers=DATASTAR)
    cleared = {
        "_error": {"status": 0, "message": ""},
        "errors": {"email": "", "age": "", "name": ""},
    }
    assert response.content == busy + patch_signals(cleared)


@pytest.mark.anyio
async def test_streaming_action_http_error_patches_error(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/stream_forbidden", headers=DATASTAR)
    busy = patch_elements('<p id="busy">checking</p>')
    assert response.content == busy + error_event(403, "not yours")


@pytest.mark.anyio
async def test_streaming_action_redirect(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/stream_redirect", headers=DATASTAR)
    assert response.content == patch_elements('<p id="busy">leaving</p>') + events.redirect("/bye")


crashing = App()
crashes: list[BaseException] = []
crashing.on_error(lambda request, exc: crashes.append(exc))


@crashing.page("/crash")
class Crash(Page):
    async def render(self) -> str:
        return ""

    @action
    async def boom(self, sse: SSE) -> None:
        await sse.patch_elements('<p id="busy">working</p>')
        raise RuntimeError("boom")


@pytest.mark.anyio
async def test_streaming_action_crash_calls_the_error_hook() -> None:
    crashes.clear()
    async with client(crashing) as c:
        response = await c.post("/crash/_action/boom", headers=DATASTAR)
    assert [str(e) for e in crashes] == ["boom"]
    assert response.content.startswith(patch_elements('<p id="busy">working</p>'))


@pytest.mark.anyio
async def test_streaming_action_crash_patches_a_500_error() -> None:
    async with client(crashing) as c:
        response = await c.post("/crash/_action/boom", headers=DATASTAR)
    busy = patch_elements('<p id="busy">working</p>')
    assert response.content == busy + error_event(500, "Something went wrong")


# -- validation errors -------------------------------------------------------------------


@pytest.mark.anyio
async def test_validation_error_patches_every_field(c: httpx.AsyncClient) -> None:
    taken = {"email": "taken@example.com", "age": 30}
    response = await c.post("/rooms/1/_action/signup", json=taken, headers=DATASTAR)
    assert signal_patch(response) == {"errors": {"email": "is taken", "age": "", "name": ""}}
    assert calls == []


@pytest.mark.anyio
async def test_successful_action_clears_errors(c: httpx.AsyncClient) -> None:
    fine = {"email": "a@example.com", "age": 30}
    response = await c.post("/rooms/1/_action/signup", json=fine, headers=DATASTAR)
    assert signal_patch(response) == {
        "_error": {"status": 0, "message": ""},
        "errors": {"email": "", "age": "", "name": ""},
    }
    assert calls == [("signup", Signup("a@example.com", 30))]


@pytest.mark.anyio
async def test_validation_error_without_datastar_is_422(c: httpx.AsyncClient) -> None:
    taken = {"email": "taken@example.com", "age": 30}
    response = await c.post("/rooms/1/_action/signup", json=taken)
    assert response.status_code == 422
    assert "email: is taken" in response.text


@pytest.mark.anyio
async def test_action_without_signals_answers_204_to_datastar(c: httpx.AsyncClient) -> None:
    response = await c.post("/rooms/1/_action/renamed", headers=DATASTAR)
    assert response.status_code == 200


# -- app-wide actions --------------------------------------------------------------------


@pytest.mark.anyio
async def test_actions_of_a_page_at_the_root() -> None:
    # Their URLs are /_action/<name>, the same shape as app-wide actions.
    root = App()

    @root.page("/")
    class Home(Page):
        async def render(self) -> str:
            return ""

        @action
        async def hello(self) -> None:
            calls.append(("hello",))

    assert invoke(Home().hello) == f"@post('/_action/hello', {{{CSRF}}})"
    async with client(root) as c:
        assert (await c.post("/_action/hello")).status_code == 204
    assert calls == [("hello",)]


@pytest.mark.anyio
async def test_app_wide_actions(c: httpx.AsyncClient) -> None:
    assert (await c.post("/_action/ping")).status_code == 204
    assert (await c.delete("/_action/clear-all")).status_code == 204
    assert calls == [("ping", "/_action/ping"), ("clear",)]


@pytest.mark.anyio
async def test_check_request_runs_before_the_action() -> None:
    class Guarded(App):
        async def check_request(self, request: Request) -> None:
            if request.headers.get("x-csrf-token") != "ok":
                raise Forbidden("bad token")

    guarded = Guarded()
    guarded.action(ping)
    async with client(guarded) as c:
        refused = await c.post("/_action/ping")
        allowed = await c.post("/_action/ping", headers={"x-csrf-token": "ok"})
    assert (refused.status_code, allowed.status_code) == (403, 204)
    assert calls == [("ping", "/_action/ping")]


def test_action_rejects_other_methods() -> None:
    with pytest.raises(ValueError, match="not 'GET'"):
        action(method="GET")  # type: ignore[call-overload]


# -- invoke: the expression that calls an action ------------------------------------------

CSRF = "headers: {'X-CSRF-Token': $_csrf, 'X-LP-Tab': $_tab}"


@pytest.mark.parametrize(
    ("target", "expression"),
    [
        (lambda: Room(room=1).send, f"@post('/rooms/1/_action/send', {{{CSRF}}})"),
        (lambda: Room(room=1, tab="a b").put, f"@put('/rooms/1/_action/put?tab=a+b', {{{CSRF}}})"),
        (lambda: Room(room=1).patch, f"@patch('/rooms/1/_action/patch', {{{CSRF}}})"),
        (lambda: Room(room=1).remove, f"@delete('/rooms/1/_action/remove', {{{CSRF}}})"),
        (lambda: Room(room=1).original, f"@post('/rooms/1/_action/renamed', {{{CSRF}}})"),
        (lambda: ping, f"@post('/_action/ping', {{{CSRF}}})"),
        (lambda: clear, f"@delete('/_action/clear-all', {{{CSRF}}})"),
    ],
)
def test_invoke_targets(target: Callable[[], Callable[..., Any]], expression: str) -> None:
    assert invoke(target()) == expression


@pytest.mark.parametrize(
    ("options", "extra"),
    [
        ({"form": True}, "contentType: 'form'"),
        ({"form": True, "selector": "#signup"}, "contentType: 'form', selector: '#signup'"),
        ({"include": r"^draft\."}, r"filterSignals: {include: new RegExp('^draft\\.')}"),
        (
            {"include": "^a", "exclude": "^_"},
            "filterSignals: {include: new RegExp('^a'), exclude: new RegExp('^_')}",
        ),
        ({"open_when_hidden": True}, "openWhenHidden: true"),
        ({"open_when_hidden": False}, "openWhenHidden: false"),
        ({"retry": "error"}, "retry: 'error'"),
        (
            {"retry_interval": 500, "retry_scaler": 1.5, "retry_max_wait": 9000},
            "retryInterval: 500, retryScaler: 1.5, retryMaxWait: 9000",
        ),
        ({"retry_max_count": 0}, "retryMaxCount: 0"),
        ({"request_cancellation": "disabled"}, "requestCancellation: 'disabled'"),
    ],
)
def test_invoke_options(options: dict[str, Any], extra: str) -> None:
    assert invoke(Room(room=1).send, **options) == (
        f"@post('/rooms/1/_action/send', {{{CSRF}, {extra}}})"
    )


def test_invoke_extra_headers_follow_the_csrf_header() -> None:
    expression = invoke(Room(room=1).send, headers={"X-Mine": "t1", "X-Q": "it's"})
    assert expression == (
        "@post('/rooms/1/_action/send', {headers: {'X-CSRF-Token': $_csrf, "
        "'X-LP-Tab': $_tab, 'X-Mine': 't1', 'X-Q': 'it\\'s'}})"
    )


def test_invoke_escapes_quotes_and_script_ends_in_every_string() -> None:
    @action(name="it's</script>\n")
    async def odd() -> None:
        pass

    expression = invoke(odd, selector="a[name='x']", headers={"X": "</script>"})
    assert expression == (
        "@post('/_action/it\\'s\\x3c/script\\x3e\\n', {headers: {'X-CSRF-Token': $_csrf, "
        "'X-LP-Tab': $_tab, 'X': '\\x3c/script\\x3e'}, selector: 'a[name=\\'x\\']'})"
    )


@app.page("/where")
class Where(Page):
    """Renders the expressions that its actions would be called with."""

    async def render(self) -> str:
        return "\n".join([invoke(Room(room=3).send), invoke(ping)])


@pytest.mark.anyio
async def test_invoke_inside_a_mount_is_prefixed() -> None:
    async with client(Starlette(routes=[Mount("/o'k", app=app)])) as c:
        response = await c.get("/o'k/where")
    body = response.text.split('<main id="lp-root">')[1].split("</main>")[0]
    assert body.split("\n") == [
        f"@post('/o\\'k/rooms/3/_action/send', {{{CSRF}}})",
        f"@post('/o\\'k/_action/ping', {{{CSRF}}})",
    ]


class NotAPage:
    @action
    async def act(self) -> None:
        pass


def plain() -> None:
    pass


@pytest.mark.parametrize(
    ("target", "message"),
    [
        (plain, "is not an action"),
        (Room(room=1).render, "is not an action"),
        (NotAPage().act, "which is not a page"),
        (Room.send, "call it on a page"),
    ],
    ids=["function", "page-method", "other-class", "unbound"],
)
def test_invoke_refuses_non_action_targets(target: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        invoke(target)


@pytest.mark.anyio
async def test_a_client_that_leaves_a_streaming_action_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    reported: list[BaseException] = []
    app.on_error(lambda request, exc: reported.append(exc))
    sent: list[Message] = []

    @app.action
    async def ticker(sse: SSE) -> None:
        for n in range(5):
            await sse.patch_signals({"n": n})

    async def receive() -> Message:
        if not sent:
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await asyncio.Event().wait()  # the client never says goodbye: its socket just fails
        raise AssertionError

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and message.get("body"):
            raise OSError("the client is gone")

    scope = {
        "type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/_action/ticker", "raw_path": b"/_action/ticker", "root_path": "",
        "query_string": b"", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), (b"datastar-request", b"true"),
                    (b"content-type", b"application/json")],
    }  # fmt: skip
    with caplog.at_level(logging.DEBUG, logger="livepages"):
        await app(scope, receive, send)
    assert reported == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("client left during POST /_action/ticker" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_a_success_after_a_failure_clears_the_error_the_page_shows() -> None:
    app = App()
    outcomes = iter([Forbidden("not now"), None])

    @app.action
    async def flaky() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        failed = await c.post("/_action/flaky", headers=DATASTAR)
        assert signal_patch(failed) == {"_error": {"status": 403, "message": "not now"}}
        succeeded = await c.post("/_action/flaky", headers=DATASTAR)
        assert signal_patch(succeeded) == {"_error": {"status": 0, "message": ""}}
