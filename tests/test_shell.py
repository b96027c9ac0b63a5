"""The document shell around every page, read back with an HTML parser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import Markup
from starlette.types import ASGIApp

from livepages import App, Page, Settings
from livepages.protocol import ROOT_ID
from livepages.settings import DATASTAR_CDN_URL
from livepages.shell import Shell, root, to_html

#: The page-local signals of a page without a stream or a session.
NO_TAB_SIGNALS = "{_csrf: '', _tab: '', _error: {status: 0, message: ''}}"


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str) -> Node:
        """The first descendant with ``tag`` (depth first)."""
        found = self.find_all(tag)
        assert found, f"no <{tag}> in <{self.tag}>"
        return found[0]

    def find_all(self, tag: str) -> list[Node]:
        out = []
        for child in self.children:
            if child.tag == tag:
                out.append(child)
            out += child.find_all(tag)
        return out


VOID = {"meta", "link", "input", "br", "img", "hr"}


class TreeBuilder(HTMLParser):
    """Just enough of a DOM to check where things are."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]
        self.decl = ""

    def handle_decl(self, decl: str) -> None:
        self.decl = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(document: str) -> Node:
    builder = TreeBuilder()
    builder.feed(document)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    assert builder.decl == "doctype html"
    return builder.root


class TokenApp(App):
    """An app whose CSRF token needs escaping, as a session layer's could."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.visitors.csrf_token = lambda request: "to'k</script>"  # type: ignore[method-assign]


def make_app(settings: Settings | None = None) -> App:
    app = TokenApp(head='<link rel="stylesheet" href="/app.css">', settings=settings)

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str
        tab: str = "info"

        def title(self) -> str:
            return f"Room <{self.room}>"

        def head(self) -> str:
            return '<meta name="room" content="yes">'

        async def render(self) -> str:
            return "<p>hello</p>"

    @app.page("/plain")
    class Plain(Page):
        async def render(self) -> str:
            return "plain"

    return app


async def fetch(app: App, path: str) -> tuple[str, Node]:
    async with client(app) as c:
        response = await c.get(path)
    return response.text, parse(response.text)


@pytest.mark.anyio
async def test_document_structure() -> None:
    async with client(make_app()) as c:
        response = await c.get("/rooms/7?tab=chat")
    text, doc = response.text, parse(response.text)
    assert text.startswith("<!doctype html>")
    page = doc.find("html")
    assert page.attrs == {"lang": "en"}
    head, body = page.children
    tags = ["meta", "meta", "title", "script", "link", "meta", "style"]
    assert [n.tag for n in head.children] == tags
    charset, viewport, title, script, app_head, page_head, feedback = head.children
    assert charset.attrs == {"charset": "utf-8"}
    assert viewport.attrs == {"name": "viewport", "content": "width=device-width, initial-scale=1"}
    assert title.text == "Room <7>"
    # The script carries the response's nonce, the one its CSP header allows.
    nonce = script.attrs.pop("nonce")
    assert f"'nonce-{nonce}'" in response.headers["content-security-policy"]
    assert script.attrs == {"type": "module", "src": DATASTAR_CDN_URL}
    assert app_head.attrs == {"rel": "stylesheet", "href": "/app.css"}
    assert page_head.attrs == {"name": "room", "content": "yes"}
    assert feedback.attrs == {"id": "lp-feedback-style"}  # livepages.feedback's look
    # The CSRF token as a JS string (escaped), and the signed tab id of this page load.
    signals = body.attrs["data-signals"] or ""
    csrf, tab = r"_csrf: 'to\\'k\\x3c/script\\x3e'", r"_tab: '[\w-]{32}'"
    assert re.fullmatch(
        r"\{" + csrf + ", " + tab + r", _error: \{status: 0, message: ''\}, _connection: 'live'\}",
        signals,
    )


@pytest.mark.anyio
async def test_live_stream_opens_outside_the_root() -> None:
    _, doc = await fetch(make_app(), "/rooms/7?tab=chat")
    body = doc.find("body")
    assert [n.tag for n in body.children] == ["div", "div", "main"]
    feedback, live, main = body.children
    assert feedback.attrs["id"] == "lp-feedback"
    assert set(live.attrs) == {"id", "hidden", "data-init"}
    assert live.attrs["id"] == "lp-live"
    init = live.attrs["data-init"] or ""
    assert init.startswith("@get('/rooms/7/_live?tab=chat', {")
    assert "headers: {'X-LP-Tab': $_tab, 'X-CSRF-Token': $_csrf, 'X-LP-Build': '" in init
    assert main.attrs == {"id": ROOT_ID}
    assert main.find_all("div") == []  # morphing the root never restarts the stream
    assert main.find("p").text == "hello"


@pytest.mark.anyio
async def test_a_page_that_is_not_live_has_no_stream() -> None:
    app = App()

    @app.page("/static")
    class Static(Page):
        live = False

        async def render(self) -> str:
            return "still"

    text, doc = await fetch(app, "/static")
    ids = [div.attrs.get("id") for div in doc.find("body").find_all("div")]
    assert ids == ["lp-feedback", "lp-notice"]  # no stream, no connection to watch
    assert doc.find("body").attrs["data-signals"] == NO_TAB_SIGNALS
    assert "_live" not in text
    async with client(app) as c:
        assert (await c.get("/static/_live")).status_code == 404


@pytest.mark.anyio
async def test_title_defaults_to_the_settings_title() -> None:
    _, doc = await fetch(make_app(settings=Settings(title="My app", lang="fr")), "/plain")
    assert doc.find("title").text == "My app"
    assert doc.find("html").attrs == {"lang": "fr"}


@pytest.mark.anyio
async def test_datastar_url_comes_from_the_settings() -> None:
    url = 'https://example.com/datastar.js?v=1&x="y"'
    _, doc = await fetch(make_app(settings=Settings(datastar_url=url)), "/plain")
    assert doc.find("script").attrs["src"] == url


@pytest.mark.anyio
async def test_datastar_file_is_served_with_a_hashed_url(tmp_path: Path) -> None:
    (tmp_path / "ds.js").write_text("console.log('datastar')")
    app = make_app(settings=Settings(datastar_file=str(tmp_path / "ds.js")))
    _, doc = await fetch(app, "/plain")
    src = doc.find("script").attrs["src"]
    assert src is not None
    assert src.startswith("/_static/datastar.")
    assert src.endswith(".js")
    async with client(app) as c:
        response = await c.get(src)
    assert response.text == "console.log('datastar')"
    assert "immutable" in response.headers["cache-control"]


@pytest.mark.anyio
async def test_error_pages_have_the_shell_but_no_live_stream() -> None:
    text, doc = await fetch(make_app(), "/nowhere")
    assert doc.find("title").text == "404 Not Found"
    ids = [div.attrs.get("id") for div in doc.find("body").find_all("div")]
    assert ids == ["lp-feedback", "lp-notice"]
    assert "_live" not in text


def test_shell_render_options() -> None:
    shell = Shell(lang="de", app_head="<!-- app -->")
    document = shell.render(
        "<p>x</p>",
        datastar_url="/ds.js",
        title="T & <b>",
        head="<!-- page -->",
        live_url="/p/_live",
        csrf_token="abc",
        tab_id="t1",
        live_options="openWhenHidden: true",
    )
    doc = parse(document)
    assert doc.find("title").text == "T & <b>"
    assert doc.find("div").attrs["data-init"] == "@get('/p/_live', {openWhenHidden: true})"
    assert doc.find("body").attrs["data-signals"] == (
        "{_csrf: 'abc', _tab: 't1', _error: {status: 0, message: ''}, _connection: 'live'}"
    )
    assert "<!-- app --><!-- page --></head>" in document
    assert shell.render("", datastar_url="/ds.js", title="t").count("lp-live") == 0
    assert 'src="/ds.js"' in document


class Element:
    def __html__(self) -> str:
        return "<b>el</b>"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("<i>s</i>", "<i>s</i>"),
        (Markup("<i>m</i>"), "<i>m</i>"),
        (Element(), "<b>el</b>"),
        (None, ""),
        (42, "42"),
    ],
)
def test_to_html(value: object, text: str) -> None:
    assert to_html(value) == text
    assert type(to_html(value)) in (str, Markup)


def test_root_wraps_the_body() -> None:
    assert root("<p>x</p>") == '<main id="lp-root"><p>x</p></main>'
