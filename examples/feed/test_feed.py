"""The feed example: in process, and 100,000 posts in Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from examples.feed import app as feed
from examples.feed.app import SEED, Posts, create_app, render_post
from livepages import Settings
from livepages.testing import Client, LiveServer, LiveStream, goto_live, watch_console

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext


async def loaded(stream: LiveStream, count: int) -> int:
    """Read the stream until ``count`` posts arrived; how many patches carried them."""
    posts = patches = 0
    while posts < count:
        event = await stream.next_event(wait=30)
        if event.option("selector") == "#posts":
            posts += event.elements.count("<article ")
            patches += 1
    return patches


def test_posts_are_read_newest_first_and_safely_while_they_change() -> None:
    posts = Posts(1_200)
    reader = posts.newest(page=500)
    first = [next(reader).id for _ in range(600)]
    assert first == list(range(1_200, 600, -1))
    posts.remove(100)
    posts.add("Ada", "late")  # newer than the cursor: not in this read
    rest = [post.id for post in reader]
    assert rest == [i for i in range(600, 0, -1) if i != 100]
    assert next(post.id for post in posts.newest()) == 1_201


def test_a_post_renders_escaped_with_its_stream_id() -> None:
    html = render_post(feed.Post(7, "Ada <b>", "1 < 2 & so on", "Jan 01, 00:00", likes=2))
    assert html.startswith('<article id="posts-7" ')
    assert "Ada &lt;b&gt;" in html
    assert "1 &lt; 2 &amp; so on" in html
    assert 'class="like liked"' in html


@pytest.mark.anyio
async def test_posting_liking_and_deleting_are_one_small_patch_each() -> None:
    app = create_app(count=2_000)
    async with Client(app) as client:
        page = await client.get("/")
        assert '<b id="count">2,000</b>' in page.html
        assert "<article" not in page.html  # the posts come over the stream
        async with page.stream() as stream:
            assert await loaded(stream, 2_000) == 2_000 // feed.CHUNK
            await stream.drain(quiet=0.1)
            await page.action("like", {"target": 1_999})
            (liked,) = await stream.drain(quiet=0.1)
            assert liked.option("selector") == "#posts-1999"
            assert liked.option("mode") == "replace"
            assert "&#9829; 1</button>" in liked.elements
            assert len(liked.elements) < 600

            response = await page.action("post", {"name": "Ada", "text": "hello <world>"})
            assert response.status_code == 200
            events = [e for e in await stream.drain(quiet=0.1) if not e.comment]
            prepended = [e for e in events if e.option("mode") == "prepend"]
            assert len(prepended) == 1
            assert "hello &lt;world&gt;" in prepended[0].elements
            assert len(prepended[0].elements) < 600
            header = [e for e in events if e.option("selector") is None]
            assert '<b id="count">2,001</b>' in header[-1].elements  # the page re-rendered...
            assert "<article" not in header[-1].elements  # ...without the posts

            await page.action("remove", {"target": 5})
            events = [e for e in await stream.drain(quiet=0.1) if not e.comment]
            removed = [e for e in events if e.option("mode") == "remove"]
            assert [e.option("selector") for e in removed] == ["#posts-5"]

            refused = await page.action("post", {"name": "", "text": ""})
            assert refused.status_code == 200
            assert "errors" in refused.text


def test_module_app_is_what_make_run_serves() -> None:
    assert SEED == 100_000
    assert feed.app.routes


# -- in a real browser ----------------------------------------------------------------------


#: Posts in the browser test: enough for 40 chunks, few enough for a shared CI machine
#: (Chromium builds about 10,000 of these posts a second here; 100,000 are tested over HTTP).
BROWSER_SEED = 10_000


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the tests, so pages close before the server stops.
    app = create_app(Settings(datastar_file=str(datastar_js)), count=BROWSER_SEED)
    with LiveServer(app) as live:
        yield live


def test_a_long_feed_in_chromium(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    ada, bob = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (ada, bob)]
    for page in (ada, bob):
        goto_live(page, server.url + "/")
        expect(page.locator("#posts > article")).to_have_count(BROWSER_SEED, timeout=30_000)
    assert ada.locator("#posts > article").first.get_attribute("id") == f"posts-{BROWSER_SEED}"

    ada.fill("#name", "Ada")
    ada.fill("#text", "hello from Ada")
    ada.press("#text", "Enter")
    for page in (ada, bob):
        expect(page.locator("#posts > article").first).to_contain_text("hello from Ada")
        expect(page.locator("#count")).to_have_text("10,001")  # a re-render, list kept
        expect(page.locator("#posts > article")).to_have_count(BROWSER_SEED + 1)
    expect(ada.locator("#text")).to_have_value("")

    newest = BROWSER_SEED
    bob.locator(f"#posts-{newest} .like").click()
    for page in (ada, bob):
        expect(page.locator(f"#posts-{newest} .like")).to_have_text("\u2665 1")
    ada.locator(f"#posts-{newest - 1} .delete").click()
    for page in (ada, bob):
        expect(page.locator(f"#posts-{newest - 1}")).to_have_count(0)
        expect(page.locator("#count")).to_have_text("10,000")
        expect(page.locator("#posts > article")).to_have_count(BROWSER_SEED)

    ada.reload()  # a new page and stream: the list comes from the source again
    goto_live(ada, server.url + "/")
    expect(ada.locator("#posts > article")).to_have_count(BROWSER_SEED, timeout=30_000)
    expect(ada.locator(f"#posts-{newest} .like")).to_have_text("\u2665 1")
    assert problems == [[], []]


@pytest.mark.parametrize("count", [0, 3])
def test_the_first_chunk_replaces_what_the_container_held(
    datastar_js: Path, browser_context: NewContext, count: int
) -> None:
    """As when a stream reconnects to a page that still shows its list: never twice."""
    from playwright.sync_api import expect

    app = create_app(Settings(datastar_file=str(datastar_js)), count=count)
    with LiveServer(app) as server:
        page = browser_context().new_page()
        problems = watch_console(page)
        stale = '<article id="posts-999">stale</article>'
        page.add_init_script(
            "document.addEventListener('DOMContentLoaded', () => document"
            f".getElementById('posts').insertAdjacentHTML('beforeend', '{stale}'))"
        )
        goto_live(page, server.url + "/")
        expect(page.locator("#posts-999")).to_have_count(0)
        ids = [f"posts-{i}" for i in range(count, 0, -1)]
        expect(page.locator("#posts > article")).to_have_count(count)
        assert page.eval_on_selector_all("#posts > article", "all => all.map(a => a.id)") == ids
        page.close()
        assert problems == []
