"""Reflected query fields: what the document declares and writes for them."""

from __future__ import annotations

import html
import re
from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import App, Page, Reflect, Settings
from livepages.pages import page_spec, url
from livepages.params import ParamError
from livepages.reflect import Kind, reflection
from livepages.registration import RegistrationError
from livepages.testing import Client

pytestmark = pytest.mark.anyio


def make_app() -> tuple[App, type[Page]]:
    """A fresh app (a stopped one refuses streams) and its page with reflected fields."""
    app = App(settings=Settings(secret_key="reflect"))

    @app.page("/items")
    class Items(Page):
        q: Annotated[str, Reflect()] = ""
        page: Annotated[int, Reflect(push=True)] = 1
        done: Annotated[bool | None, Reflect(signal="onlyDone")] = None
        other: str = "x"

        def render(self) -> str:
            return f"<p>{self.q}|{self.page}|{self.done}</p>"

    @app.page("/still")
    class Still(Page):
        live = False
        q: Annotated[str, Reflect()] = ""

        def render(self) -> str:
            return "<p>still</p>"

    @app.page("/plain")
    class Plain(Page):
        q: str = ""

        def render(self) -> str:
            return "<p>plain</p>"

    return app, Items


_, ITEMS = make_app()


def live_element(document: str) -> str:
    match = re.search(r'<div id="lp-live"[^>]*>', document)
    assert match is not None
    return html.unescape(match.group(0))


def test_the_fields_and_how_they_are_written() -> None:
    spec = page_spec(ITEMS)
    found = reflection(spec)
    assert found is not None
    assert [(f.param, f.signal, f.push, f.kind, f.default) for f in found.fields] == [
        ("q", "q", False, Kind.TEXT, ""),
        ("page", "page", True, Kind.NUMBER, "1"),
        ("done", "onlyDone", False, Kind.BOOL, None),
    ]


async def test_the_document_declares_the_signals_and_syncs_the_url() -> None:
    async with Client(make_app()[0]) as client:
        page = await client.get("/items?q=tea&page=3&done=true&other=y")
        text = html.unescape(page.html)
        assert 'q: "tea", page: 3, onlyDone: true}' in text
        live = live_element(page.html)
        assert "data-effect=" in live
        assert "data-init=" not in live
        # The stream opens at the page's path plus the address bar's query.
        assert "@get('/items/_live' + location.search" in live
        assert "history.replaceState" in live
        assert "history.pushState" in live
        assert "data-on:popstate__window=" in live
        async with page.stream() as stream:  # the test client follows the page's query
            assert "tea|3|True" in (await stream.next_event()).elements


async def test_a_page_without_reflected_fields_is_unchanged() -> None:
    async with Client(make_app()[0]) as client:
        live = live_element((await client.get("/plain?q=a")).html)
    assert "data-init=\"@get('/plain/_live?q=a'" in live
    assert "location" not in live


async def test_a_still_page_syncs_the_url_without_a_stream() -> None:
    async with Client(make_app()[0]) as client:
        live = live_element((await client.get("/still?q=a")).html)
    assert "history.replaceState" in live
    assert "@get" not in live


async def test_a_bad_value_is_refused_as_on_a_get() -> None:
    async with Client(make_app()[0]) as client:
        response = await client.http.get("/items?page=abc")
        assert response.status_code == 400
        assert "parameter 'page'" in html.unescape(response.text)
        page = await client.get("/items")
        # What the page's effect opens after "abc" is typed into a bound page number.
        async with client.stream("/items/_live", "page=abc", {"X-LP-Tab": page.tab}) as refusal:
            assert refusal.status == 204


def test_a_path_parameter_cannot_be_reflected() -> None:
    app = App(settings=Settings(secret_key="reflect"))
    with pytest.raises(RegistrationError, match="path parameter 'id' cannot be reflected"):

        @app.page("/things/{id}")
        class Thing(Page):
            id: Annotated[int, Reflect()]

            def render(self) -> str:
                return ""


@pytest.mark.parametrize("name", ["", "a-b", "_q", "1q", "é"])
def test_a_signal_name_must_be_plain(name: str) -> None:
    with pytest.raises(ValueError, match="not a plain signal name"):
        Reflect(signal=name)


@given(st.text())
def test_any_query_text_is_a_value_or_a_400(text: str) -> None:
    spec = page_spec(ITEMS)
    for name in ("q", "page", "done"):
        try:
            page = spec.instance({}, {name: text})
        except ParamError:
            continue
        assert isinstance(page, Page)


def test_url_checks_a_reflected_field_by_its_type() -> None:
    assert url(ITEMS, q="tea", page=2) == "/items?q=tea&page=2"
    with pytest.raises(TypeError, match="parameter 'page' must be int"):
        url(ITEMS, page="2")
