"""The todo list example: over HTTP (in process and on a real server) and in Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from examples.todolist import app as todolist
from examples.todolist.app import MAX_TITLE, create_app
from livepages import App, Settings
from livepages.testing import (
    Client,
    LiveServer,
    LoadedPage,
    goto_live,
    parse_events,
    watch_console,
)

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext


def signal_patches(response: httpx.Response) -> list[dict[str, Any]]:
    """The signals that a Datastar response patches, one dict per event."""
    assert response.status_code == 200, response.text
    events, rest = parse_events(response.text)
    assert rest == ""
    found = []
    for event in events:
        assert event.type == "datastar-patch-signals"
        found.append(event.signals)
    return found


def titles(html: str) -> list[str]:
    """The titles of the todos on a rendered page, in order."""
    parts = unescape(html).split('<span class="title">')[1:]
    return [part.split("</span>", 1)[0] for part in parts]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(create_app(database=tmp_path / "todos.db")) as c:
        yield c


@pytest.fixture
async def tab(client: Client) -> LoadedPage:
    """One page load of the list: its actions carry its tab id, as its Datastar's do."""
    page = await client.get("/")
    assert page.status_code == 200
    assert page.tab
    return page


# -- the shared list ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_page_starts_empty_with_every_filter(client: Client) -> None:
    html = unescape((await client.get("/")).html)
    assert "Nothing to show." in html
    assert "0 left of 0" in html
    for name in ("all", "active", "done"):
        assert f"$filter = '{name}'; @post('/_action/show'" in html
    assert 'id="filter-all" aria-pressed="true"' in html
    start = html.index("data-signals__ifmissing='") + len("data-signals__ifmissing='")
    signals = json.loads(html[start : html.index("'", start)])
    assert signals == {"title": "", "todo": 0, "filter": "all", "errors": {"title": ""}}


@pytest.mark.anyio
async def test_add_toggle_and_delete(client: Client, tab: LoadedPage) -> None:
    # A successful add empties the input and clears the error under it.
    added = await tab.action("add", {"title": "  milk  "})
    cleared = {"_error": {"status": 0, "message": ""}, "errors": {"title": ""}}
    assert signal_patches(added) == [{"title": ""}, cleared]
    await tab.action("add", {"title": "eggs"})
    html = (await client.get("/")).html
    assert titles(html) == ["milk", "eggs"]
    assert "2 left of 2" in html

    assert (await tab.action("toggle", {"todo": 1})).status_code == 200
    html = (await client.get("/")).html
    assert '<li id="todo-1" class="done">' in html
    assert "1 left of 2" in html
    await tab.action("toggle", {"todo": 1})
    assert '<li id="todo-1" class="active">' in (await client.get("/")).html

    assert (await tab.action("delete", {"todo": 1}, method="DELETE")).status_code == 200
    assert titles((await client.get("/")).html) == ["eggs"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("title", "message"),
    [("", "is required"), ("   ", "is required"), ("x" * (MAX_TITLE + 1), "must be at most")],
)
async def test_bad_titles_are_refused(
    client: Client, tab: LoadedPage, title: str, message: str
) -> None:
    [errors] = signal_patches(await tab.action("add", {"title": title}))
    assert errors["errors"]["title"].startswith(message)
    assert "0 left of 0" in (await client.get("/")).html


@pytest.mark.anyio
async def test_the_list_has_a_bound(
    client: Client, tab: LoadedPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(todolist, "MAX_TODOS", 2)
    for title in ("one", "two"):
        await tab.action("add", {"title": title})
    [errors] = signal_patches(await tab.action("add", {"title": "three"}))
    assert errors == {"errors": {"title": "the list is full (2 todos)"}}
    assert titles((await client.get("/")).html) == ["one", "two"]


@pytest.mark.anyio
async def test_titles_are_escaped(client: Client, tab: LoadedPage) -> None:
    await tab.action("add", {"title": "<script>alert(1)</script>"})
    html = (await client.get("/")).html
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.anyio
async def test_unknown_todos_are_404(client: Client, tab: LoadedPage) -> None:
    # Datastar requests get the error as a signal patch; plain requests a real 404.
    [patch] = signal_patches(await tab.action("toggle", {"todo": 7}))
    assert patch["_error"]["status"] == 404
    assert (await client.http.post("/_action/toggle", json={"todo": 7})).status_code == 404
    query = {"datastar": json.dumps({"todo": 7})}
    assert (await client.http.delete("/_action/delete", params=query)).status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("toggle", {}),
        ("toggle", {"todo": "one"}),
        ("show", {"filter": "everything"}),
        ("show", {}),
    ],
)
async def test_malformed_signals_are_400(
    client: Client, tab: LoadedPage, name: str, body: dict[str, Any]
) -> None:
    headers = {"X-LP-Tab": tab.tab}
    response = await client.http.post(f"/_action/{name}", json=body, headers=headers)
    assert response.status_code == 400


@pytest.mark.anyio
@pytest.mark.parametrize("header", [None, "A" * 32, "short"])
async def test_the_filter_needs_a_real_tab(client: Client, header: str | None) -> None:
    headers = {} if header is None else {"X-LP-Tab": header}
    response = await client.http.post("/_action/show", json={"filter": "done"}, headers=headers)
    assert response.status_code == 400


@pytest.mark.anyio
async def test_wrong_method_is_405(client: Client) -> None:
    assert (await client.http.post("/_action/delete", json={"todo": 1})).status_code == 405


@pytest.mark.anyio
async def test_apps_do_not_share_lists(client: Client, tab: LoadedPage) -> None:
    await tab.action("add", {"title": "mine"})
    async with Client(create_app()) as other:
        assert titles((await other.get("/")).html) == []


@pytest.mark.anyio
async def test_the_list_outlives_a_restart(tmp_path: Path) -> None:
    async with Client(create_app(database=tmp_path / "todos.db")) as first:
        tab = await first.get("/")
        await tab.action("add", {"title": "milk"})
        await tab.action("toggle", {"todo": 1})
    async with Client(create_app(database=tmp_path / "todos.db")) as second:
        html = (await second.get("/")).html
        assert titles(html) == ["milk"]
        assert '<li id="todo-1" class="done">' in html
        tab = await second.get("/")
        await tab.action("add", {"title": "eggs"})  # ids go on from where they were
        assert '<li id="todo-2" class="active">' in (await second.get("/")).html


@pytest.mark.anyio
async def test_a_deleted_todo_cannot_be_toggled(client: Client, tab: LoadedPage) -> None:
    await tab.action("add", {"title": "milk"})
    await tab.action("delete", {"todo": 1}, method="DELETE")
    [patch] = signal_patches(await tab.action("toggle", {"todo": 1}))
    assert patch["_error"] == {"status": 404, "message": "there is no todo 1"}
    await tab.action("add", {"title": "eggs"})  # a deleted todo's id is not reused
    assert '<li id="todo-2" class="active">' in (await client.get("/")).html


def test_module_app_is_what_make_run_serves() -> None:
    assert isinstance(todolist.app, App)


# -- a filter per tab, on live streams ------------------------------------------------------


@pytest.mark.anyio
async def test_each_tab_keeps_its_own_filter() -> None:
    with LiveServer(create_app()) as server:
        async with Client(server.url) as client:
            one, two = await client.get("/"), await client.get("/")
            async with one.stream() as first, two.stream() as second:
                for stream in (first, second):
                    assert stream.status == 200
                    assert stream.headers["content-type"].startswith("text/event-stream")
                    await stream.next_event()  # the opening render
                await one.action("add", {"title": "milk"})
                await one.action("add", {"title": "eggs"})
                await one.action("toggle", {"todo": 1})
                await first.wait_for(lambda e: '<li id="todo-1" class="done">' in e.elements)
                await second.wait_for(lambda e: '<li id="todo-1" class="done">' in e.elements)

                assert (await one.action("show", {"filter": "done"})).status_code == 200
                shown = await first.wait_for(
                    lambda e: 'id="filter-done" aria-pressed="true"' in e.elements
                )
                assert titles(shown.elements) == ["milk"]

                # The other tab's view did not change: a new todo shows in both, each filtered.
                await two.action("add", {"title": "bread"})
                mine = await first.wait_for(lambda e: "2 left of 3" in e.elements)
                theirs = await second.wait_for(lambda e: "2 left of 3" in e.elements)
                assert titles(mine.elements) == ["milk"]
                assert titles(theirs.elements) == ["milk", "eggs", "bread"]
                assert 'id="filter-all" aria-pressed="true"' in theirs.elements


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the tests, so pages close before the server stops.
    with LiveServer(create_app(Settings(datastar_file=str(datastar_js)))) as live:
        yield live


def test_two_tabs_share_the_list_but_not_the_filter(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import Page, expect

    context = browser_context()  # one browser: two tabs of the same user
    left, right = context.new_page(), context.new_page()
    problems = [watch_console(page) for page in (left, right)]
    for page in (left, right):
        goto_live(page, server.url + "/")

    def switch_to(page: Page) -> Page:
        # As a user would: Chromium throttles animation frames in a background tab,
        # which Playwright waits on before it clicks.
        page.bring_to_front()
        return page

    def shows(page: Page, *expected: str) -> None:
        expect(page.locator("#todos .title")).to_have_text(list(expected), timeout=2000)

    switch_to(left)
    left.fill("#title", "milk")
    left.press("#title", "Enter")
    shows(left, "milk")
    left.fill("#title", "eggs")
    left.press("#title", "Enter")
    shows(left, "milk", "eggs")
    expect(left.locator("#title")).to_have_value("")
    shows(right, "milk", "eggs")

    left.check("#todo-1 input[type=checkbox]")
    expect(right.locator("#todo-1")).to_have_class("done")

    left.click("#filter-done")
    shows(left, "milk")
    expect(left.locator("#filter-done")).to_have_attribute("aria-pressed", "true")
    switch_to(right).click("#filter-active")
    shows(right, "eggs")
    shows(left, "milk")

    right.fill("#title", "bread")
    right.press("#title", "Enter")
    shows(right, "eggs", "bread")
    expect(left.locator("#summary")).to_have_text("2 left of 3")
    shows(left, "milk")

    # Not done any more: it leaves the left tab's "done" view, joins the right one's.
    switch_to(left).click("#todo-1 input[type=checkbox]")
    expect(left.locator("#todos .empty")).to_have_text("Nothing to show.")
    shows(right, "milk", "eggs", "bread")
    expect(right.locator("#filter-active")).to_have_attribute("aria-pressed", "true")
    assert problems == [[], []]


def test_the_search_box_is_in_the_url(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    problems = watch_console(page)
    goto_live(page, server.url + "/")
    for title in ("milk", "oat milk", "eggs"):
        page.fill("#title", title)
        page.press("#title", "Enter")
        expect(page.locator("#todos .title").last).to_have_text(title, timeout=2000)

    page.fill("#search", "milk")
    page.wait_for_url(server.url + "/?q=milk", timeout=2000)  # no request: replaceState
    expect(page.locator("#todos .title")).to_have_text(["milk", "oat milk"], timeout=2000)
    page.click("#filter-done")  # the tab's filter and the search work together
    expect(page.locator("#todos .empty")).to_have_text("Nothing to show.", timeout=2000)
    page.click("#filter-all")

    goto_live(page, page.url)  # a reload (or a shared link) shows the same search
    expect(page.locator("#search")).to_have_value("milk")
    expect(page.locator("#todos .title")).to_have_text(["milk", "oat milk"], timeout=2000)
    page.fill("#search", "")
    page.wait_for_url(server.url + "/", timeout=2000)
    expect(page.locator("#todos .title")).to_have_text(["milk", "oat milk", "eggs"], timeout=2000)
    assert problems == []
