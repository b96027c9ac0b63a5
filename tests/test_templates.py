"""Jinja2 templates: autoescape, strict undefined, and the url/action/asset globals."""

from __future__ import annotations

import hashlib
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from livepages import App, Page, Templates, action, invoke


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def body_of(document: str) -> str:
    return document.split('<main id="lp-root">', 1)[1].rsplit("</main>", 1)[0]


class Attributes(HTMLParser):
    """Every attribute of every start tag, as the browser would decode it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, name, value) for name, value in attrs]


def attributes(html: str) -> list[tuple[str, str, str | None]]:
    parser = Attributes()
    parser.feed(html)
    parser.close()
    return parser.found


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.css").write_text("body { color: red }")
    return tmp_path


def write(folder: Path, name: str, source: str) -> None:
    (folder / "templates" / name).write_text(source)


def test_render_escapes_values_and_returns_markup(folder: Path) -> None:
    write(folder, "hello.html", "<p>{{ name }}</p>{{ trusted }}")
    templates = Templates(folder / "templates")
    out = templates.render("hello.html", name="<script>x</script>", trusted=Markup("<b>ok</b>"))
    assert isinstance(out, Markup)
    assert out == "<p>&lt;script&gt;x&lt;/script&gt;</p><b>ok</b>"


def test_undefined_variables_fail_loudly() -> None:
    templates = Templates()
    with pytest.raises(jinja2.UndefinedError, match="'nmae' is undefined"):
        templates.render_string("{{ nmae }}", name="x")


def test_blocks_do_not_leave_blank_lines() -> None:
    source = "<ul>\n  {% for i in items %}\n  <li>{{ i }}</li>\n  {% endfor %}\n</ul>"
    assert Templates().render_string(source, items=[1, 2]) == (
        "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>"
    )


def test_extra_globals_and_loader() -> None:
    loader = jinja2.DictLoader({"a.html": "{{ greet('x') }}"})
    templates = Templates(loader=loader, globals={"greet": lambda n: f"hi {n}"})
    assert templates.render("a.html") == "hi x"


def test_asset_without_a_static_folder_fails_loudly() -> None:
    with pytest.raises(LookupError, match="no static folder"):
        Templates().render_string("{{ asset('app.css') }}")
    with pytest.raises(LookupError, match="no static folder"):
        App().asset("app.css")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_app(folder: Path, **options: Any) -> App:
    app = App(templates=folder / "templates", static=folder / "static", **options)

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str

        async def render(self) -> Any:
            return self.template("room.html", extra="<x>")

        @action
        async def send(self) -> None:
            pass

    return app


@pytest.mark.anyio
async def test_page_template_sees_the_page_and_the_globals(folder: Path) -> None:
    write(
        folder,
        "room.html",
        '<h1>{{ page.room }}</h1>{{ extra }}<link href="{{ asset("app.css") }}">'
        '<a href="{{ url(Room, room="b c") }}">b</a>',
    )
    app = make_app(folder)
    async with client(app) as c:
        response = await c.get("/rooms/%3Ca%3E")
    digest = content_hash("body { color: red }")
    assert body_of(response.text) == (
        f'<h1>&lt;a&gt;</h1>&lt;x&gt;<link href="/_static/app.{digest}.css">'
        '<a href="/rooms/b%20c">b</a>'
    )


@pytest.mark.anyio
async def test_asset_urls_inside_a_mount_are_prefixed(folder: Path) -> None:
    write(folder, "room.html", '{{ asset("app.css") }}')
    parent = Starlette(routes=[Mount("/sub", app=make_app(folder))])
    async with client(parent) as c:
        response = await c.get("/sub/rooms/1")
        url = body_of(response.text)
        css = await c.get(url)
    assert url == f"/sub/_static/app.{content_hash('body { color: red }')}.css"
    assert css.text == "body { color: red }"


@pytest.mark.anyio
async def test_action_in_an_attribute_is_escaped_for_html(folder: Path) -> None:
    # Quotes, ampersands and "</script>" in every string the expression holds.
    write(
        folder,
        "room.html",
        "<button data-on:click=\"{{ action(page.send, selector='#a\"b&c', "
        "headers={'X-Note': '</script><b>\"&'}) }}\">go</button>",
    )
    app = make_app(folder)
    room = app.pages[0].cls(room="it's")  # type: ignore[call-arg]
    async with client(app) as c:
        response = await c.get(room.url)
    body = body_of(response.text)
    assert "</script>" not in body
    expected = invoke(room.send, selector='#a"b&c', headers={"X-Note": '</script><b>"&'})  # type: ignore[attr-defined]
    assert attributes(body) == [("button", "data-on:click", expected)]


@pytest.mark.anyio
async def test_template_changes_are_picked_up_in_debug_only(folder: Path) -> None:
    write(folder, "room.html", "one")
    debug, production = make_app(folder, debug=True), make_app(folder)
    async with client(debug) as d, client(production) as p:
        assert body_of((await d.get("/rooms/1")).text) == "one"
        assert body_of((await p.get("/rooms/1")).text) == "one"
        write(folder, "room.html", "two")
        later = (folder / "templates" / "room.html").stat().st_mtime + 10
        os.utime(folder / "templates" / "room.html", (later, later))  # no mtime ties
        assert body_of((await d.get("/rooms/1")).text) == "two"
        assert body_of((await p.get("/rooms/1")).text) == "one"


@pytest.mark.anyio
async def test_missing_template_is_a_server_error(folder: Path) -> None:
    app = make_app(folder)  # no room.html
    async with client(app) as c:
        response = await c.get("/rooms/1")
    assert response.status_code == 500


def test_asset_works_with_a_templates_instance(folder: Path) -> None:
    templates = Templates(loader=jinja2.DictLoader({"a.html": "{{ asset('app.css') }}"}))
    app = App(templates=templates, static=folder / "static")
    digest = content_hash("body { color: red }")
    assert app.templates.render("a.html") == f"/_static/app.{digest}.css"


def test_a_user_global_named_like_a_page_wins(folder: Path) -> None:
    templates = Templates(globals={"Room": "mine"})
    app = App(templates=templates)

    @app.page("/r")
    class Room(Page):
        async def render(self) -> str:
            return ""

    assert app.templates.render_string("{{ Room }}") == "mine"
