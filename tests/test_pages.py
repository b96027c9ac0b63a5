"""Pages: routing, URLs (``.url`` and ``url()``), render results, mounting."""

from __future__ import annotations

import html
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from livepages import App, Page, action, url
from livepages.pages import page_spec


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def body_of(document: str) -> str:
    """The page body inside the shell's root element."""
    return document.split('<main id="lp-root">', 1)[1].rsplit("</main>", 1)[0]


app = App()


@app.page("/")
class Home(Page):
    async def render(self) -> Markup:
        return self.template_links()

    def template_links(self) -> Markup:
        source = "<a href=\"{{ url(Room, room='2') }}\">{{ url(Message, room='a b', id=7) }}</a>"
        return app.templates.render_string(source)


@app.page("/rooms/{room}")
class Room(Page):
    room: str

    async def render(self) -> str:
        return f"room {html.escape(self.room)}"

    @action
    async def send(self) -> None:
        pass


@app.page("/rooms/{room}/messages/{id}")
class Message(Page):
    room: str
    id: int

    async def render(self) -> str:
        return f"message {self.id} in {html.escape(self.room)}"


@app.page("/search")
class Search(Page):
    q: str = ""
    page: int = 1
    tags: str | None = None

    async def render(self) -> str:
        return f"search {self.q!r} page {self.page} tags {self.tags!r}"


@app.page("/files/{name:path}")
class File(Page):
    name: str

    async def render(self) -> str:
        return f"file {html.escape(self.name)}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/rooms/42", "room 42"),
        ("/rooms/42/messages/7", "message 7 in 42"),
        ("/search?q=cats&page=3", "search 'cats' page 3 tags None"),
        ("/files/a/b/c.txt", "file a/b/c.txt"),
    ],
)
async def test_routing(path: str, body: str) -> None:
    async with client(app) as c:
        response = await c.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert html.unescape(body_of(response.text)) == body


@pytest.mark.anyio
async def test_unknown_route_gives_the_default_404_page() -> None:
    async with client(app) as c:
        response = await c.get("/nowhere")
    assert response.status_code == 404
    assert response.text.startswith("<!doctype html>")
    assert body_of(response.text) == "<h1>404</h1><p>Not Found</p>"


@pytest.mark.anyio
async def test_unknown_route_gives_the_custom_404_page() -> None:
    custom = App()
    seen: list[tuple[str, int]] = []

    @custom.error_page(404)
    def not_found(request: Request, exc: Exception) -> str:
        seen.append((request.url.path, getattr(exc, "status_code", 0)))
        return "<p>Nothing lives here.</p>"

    async with client(custom) as c:
        response = await c.get("/nowhere")
    assert response.status_code == 404
    assert body_of(response.text) == "<p>Nothing lives here.</p>"
    assert "<title>404 Not Found</title>" in response.text
    assert seen == [("/nowhere", 404)]


def test_query_params_at_their_defaults_are_left_out() -> None:
    assert Search().url == "/search"
    assert Search(q="", page=1, tags=None).url == "/search"
    assert Search(page=2).url == "/search?page=2"
    assert Search(tags="x", q="cats").url == "/search?q=cats&tags=x"  # field order


def test_query_values_are_quoted() -> None:
    assert Search(q="a&b=c #d+é").url == "/search?q=a%26b%3Dc+%23d%2B%C3%A9"


@pytest.mark.anyio
async def test_quoted_query_values_round_trip() -> None:
    async with client(app) as c:
        response = await c.get(Search(q="a&b=c #d+é").url)
    assert html.unescape(body_of(response.text)) == "search 'a&b=c #d+é' page 1 tags None"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("room", "quoted"),
    [("a b", "a%20b"), ("café ☕", "caf%C3%A9%20%E2%98%95"), ("50%?#", "50%25%3F%23")],
)
async def test_path_values_are_quoted_and_round_trip(room: str, quoted: str) -> None:
    assert Room(room=room).url == f"/rooms/{quoted}"
    async with client(app) as c:
        response = await c.get(Room(room=room).url)
    assert html.unescape(body_of(response.text)) == f"room {room}"


@pytest.mark.parametrize("room", ["a/b", ""])
def test_path_values_that_cannot_round_trip_are_refused(room: str) -> None:
    # The router matches the decoded path: "a%2Fb" would be two segments, "" none.
    with pytest.raises(ValueError, match="path parameter 'room' cannot be"):
        _ = Room(room=room).url


@pytest.mark.anyio
async def test_path_convertor_allows_slashes() -> None:
    assert File(name="a/b c.txt").url == "/files/a%2Fb%20c.txt"
    async with client(app) as c:
        response = await c.get(File(name="a/b c.txt").url)
    assert body_of(response.text) == "file a/b c.txt"


@pytest.mark.anyio
async def test_page_classes_are_template_globals_for_url() -> None:
    async with client(app) as c:
        response = await c.get("/")
    assert body_of(response.text) == '<a href="/rooms/2">/rooms/a%20b/messages/7</a>'


def test_url_accepts_a_class_with_params_or_an_instance() -> None:
    assert url(Message, room="r", id=3) == "/rooms/r/messages/3"
    assert url(Message(room="r", id=3)) == "/rooms/r/messages/3"
    assert url(Search, page=2) == "/search?page=2"
    assert url(Search, tags=None) == "/search"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: url(Room, rom="x"), "Room has no parameter 'rom'"),
        (lambda: url(Message, room="r", id="3"), "parameter 'id' must be int, got str"),
        (lambda: url(Message, room="r", id=True), "parameter 'id' must be int, got bool"),
        (lambda: url(Search, tags=3), "parameter 'tags' must be str | None, got int"),
        (lambda: url(Message, room="r"), "url\\(Message\\): .*missing.*'id'"),
        (lambda: url(Room(room="r"), room="s"), "url\\(page_instance\\) takes no parameters"),
        (
            lambda: url("/rooms/1"),  # type: ignore[arg-type]
            "url\\(\\) takes a page class or instance",
        ),
    ],
    ids=["name", "type", "bool-for-int", "optional", "missing", "instance-and-params", "str"],
)
def test_url_checks_names_and_types_at_run_time(call: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        call()


def test_url_of_an_unregistered_page_is_a_lookup_error() -> None:
    class Loose(Page):
        async def render(self) -> str:
            return ""

    with pytest.raises(LookupError, match="Loose is not registered"):
        url(Loose)
    with pytest.raises(LookupError):
        _ = Loose().url
    with pytest.raises(LookupError):
        Loose().template("x.html")


@pytest.mark.anyio
async def test_wrong_url_call_in_a_template_fails_the_render() -> None:
    broken = App()

    @broken.page("/")
    class Broken(Page):
        async def render(self) -> Any:
            return broken.templates.render_string("{{ url(Broken, nope=1) }}")

    async with client(broken) as c:
        response = await c.get("/")
    assert response.status_code == 500


@pytest.mark.anyio
async def test_head_sends_the_headers_of_get_without_a_body() -> None:
    async with client(app) as c:
        get = await c.get("/rooms/1")
        head = await c.head("/rooms/1")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == str(len(get.content))


@pytest.mark.anyio
async def test_other_methods_on_a_page_are_405() -> None:
    async with client(app) as c:
        response = await c.post("/rooms/1")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}


class Html:
    def __html__(self) -> str:
        return "<b>from __html__</b>"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("result", "body"),
    [
        ("<i>a str is trusted HTML</i>", "<i>a str is trusted HTML</i>"),
        (Markup("<i>{}</i>").format("<x>"), "<i>&lt;x&gt;</i>"),
        (Html(), "<b>from __html__</b>"),
        (None, ""),
    ],
    ids=["str", "markup", "__html__", "none"],
)
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_render_results(result: Any, body: str, sync: bool) -> None:
    one = App()

    async def async_render(self: Page) -> Any:
        return result

    def sync_render(self: Page) -> Any:
        return result

    one.page("/")(type("One", (Page,), {"render": sync_render if sync else async_render}))
    async with client(one) as c:
        response = await c.get("/")
    assert response.status_code == 200
    assert body_of(response.text) == body


@pytest.mark.anyio
async def test_page_inside_a_mount_builds_prefixed_urls() -> None:
    parent = Starlette(routes=[Mount("/admin", app=app)])
    async with client(parent) as c:
        page = await c.get("/admin/rooms/7")
        home = await c.get("/admin/")
    assert page.status_code == 200
    assert body_of(page.text) == "room 7"
    assert "@get(&#x27;/admin/rooms/7/_live&#x27;, {" in page.text
    assert body_of(home.text) == '<a href="/admin/rooms/2">/admin/rooms/a%20b/messages/7</a>'
    # Outside a request no prefix applies.
    assert Room(room="7").url == "/rooms/7"


@pytest.mark.anyio
async def test_starlette_app_mounted_inside_an_app() -> None:
    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"pong from {request.scope['root_path']}")

    host = App()

    @host.page("/")
    class Index(Page):
        async def render(self) -> str:
            return "index"

    host.mount("/api", Starlette(routes=[Route("/ping", ping)]))
    async with client(host) as c:
        api = await c.get("/api/ping")
        index = await c.get("/")
    assert (api.status_code, api.text) == (200, "pong from /api")
    assert body_of(index.text) == "index"


def test_page_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Room("positional")  # type: ignore[call-arg]
    assert Message(room="r", id=1).params == {"room": "r", "id": 1}


def test_page_spec_describes_the_route() -> None:
    spec = page_spec(Message)
    assert spec.path == "/rooms/{room}/messages/{id}"
    assert spec.path_params == ("room", "id")
    assert page_spec(Search).query_params == ("q", "page", "tags")
    assert page_spec(Search).defaults == {"q": "", "page": 1, "tags": None}
    assert set(app.plan_of(Message).actions) == set()
    assert set(app.plan_of(Room).actions) == {"send"}


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        ("rooms/{room}", ValueError, "page paths start with '/'"),
        ("/rooms/{room}/{other}", TypeError, "path parameter {other} has no field"),
    ],
)
def test_bad_routes_fail_at_registration(path: str, error: type[Exception], message: str) -> None:
    other = App()

    class Bad(Page):
        room: str

        async def render(self) -> str:
            return ""

    with pytest.raises(error, match=message):
        other.page(path)(Bad)


def test_a_page_needs_render() -> None:
    with pytest.raises(TypeError, match="needs a render"):
        App().page("/")(type("NoRender", (Page,), {}))


@pytest.mark.parametrize("name", ["title", "url", "params", "head", "template", "live"])
def test_parameters_cannot_shadow_page_attributes(name: str) -> None:
    # `title: str = ""` would replace Page.title() and make every render fail.
    shadowing = type("Shadow", (Page,), {"__annotations__": {name: str}, name: ""})
    with pytest.raises(TypeError, match=f"a parameter cannot be named '{name}'"):
        App().page("/")(shadowing)


@given(
    st.dictionaries(
        st.sampled_from(["q", "page", "tags", "other"]), st.text(max_size=30), max_size=4
    ),
    st.text(max_size=30),
)
def test_any_url_text_is_a_page_or_a_400(query: dict[str, str], room_id: str) -> None:
    message = {"room": room_id, "id": room_id}
    for spec, path in ((page_spec(Search), {}), (page_spec(Message), message)):
        try:
            spec.instance(path, query)
        except HTTPException as exc:
            status = exc.status_code
        else:
            status = 200
        assert status == 200 or 400 <= status < 500
