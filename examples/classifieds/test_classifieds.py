"""The classifieds example: over HTTP in process, in Chromium, and on two processes with NATS."""

from __future__ import annotations

import asyncio
import json
import tempfile
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.classifieds import app as module
from examples.classifieds.app import COOKIE_NAME, create_app
from examples.classifieds.market import Market, verify_password
from examples.classifieds.models import (
    MAX_MESSAGE,
    MAX_PRICE,
    Filters,
    format_price,
    parse_price,
)
from examples.classifieds.seed import DEMO_PASSWORD, png
from livepages import App, Settings
from livepages.testing import (
    Client,
    DatastarEvent,
    LiveServer,
    LiveStream,
    LoadedPage,
    goto_live,
    parse_events,
    watch_console,
)
from tests.fixtures.cluster import AppProcess, app_processes

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.fixtures.browser import NewContext

ADA, GRACE, ALAN = "ada@example.com", "grace@example.com", "alan@example.com"
#: Seeded listings: 1 is Ada's, 2 is Grace's, 3 is Alan's.
ADAS, GRACES = 1, 2


@pytest.fixture
def app(tmp_path: Path) -> App:
    return create_app(database=tmp_path / "market.db")


def market_of(app: App) -> Market:
    market: Market = app.state.market
    return market


@pytest.fixture
async def client(app: App) -> AsyncIterator[Client]:
    """A visitor. The app is started (and seeded) with it, and stopped after the test."""
    async with Client(app) as c:
        await module.seed(market_of(app))
        yield c


@pytest.fixture
def other(app: App, client: Client) -> Client:
    """Another browser on the same app (started and stopped by ``client``)."""
    return Client(app)


@pytest.fixture
def third(app: App, client: Client) -> Client:
    """A third browser on the same app."""
    return Client(app)


def patches(response: httpx.Response) -> list[DatastarEvent]:
    assert response.status_code == 200, response.text
    events, rest = parse_events(response.text)
    assert rest == ""
    return events


def errors(response: httpx.Response) -> dict[str, str]:
    """The ``errors`` signal a response patches."""
    found: dict[str, str] = {}
    for event in patches(response):
        if event.type == "datastar-patch-signals":
            found.update(event.signals.get("errors", {}))
    return found


def redirected_to(response: httpx.Response) -> str:
    """Where a Datastar response sends its page."""
    for event in patches(response):
        found = re.search(r'window\.location\.href = "([^"]*)"', event.elements)
        if found:
            return found[1]
    raise AssertionError(f"no redirect in {response.text!r}")


async def sign_in(client: Client, email: str, password: str = DEMO_PASSWORD) -> None:
    page = await client.get("/signin")
    response = await page.action("signin", {"email": email, "password": password})
    assert redirected_to(response) == "/", response.text


async def sign_up(client: Client, email: str, name: str, password: str = "long enough") -> None:
    page = await client.get("/signup")
    response = await page.action("signup", {"email": email, "name": name, "password": password})
    assert redirected_to(response) == "/", response.text


async def open_chat(client: Client, listing: int) -> int:
    page = await client.get(f"/listings/{listing}")
    target = redirected_to(await page.action("contact"))
    found = re.fullmatch(r"/chats/(\d+)", target)
    assert found is not None, target
    return int(found[1])


def shown(html: str, element: str) -> str:
    """The text of the element with id ``element``."""
    found = re.search(rf'id="{element}"[^>]*>(.*?)</', html, re.S)
    assert found is not None, f"no #{element}"
    return unescape(found[1]).strip()


def titles(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'<div class="title">([^<]*)</div>', html)]


# -- listings and search -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_new_market_has_demo_listings(client: Client) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert len(titles(page.html)) == 12
    assert shown(page.html, "count") == "12 listings"
    assert shown(page.html, "to-signin") == "Sign in"
    assert await module.seed(market_of(client.app)) is False  # once per database


@pytest.mark.anyio
async def test_the_filters_are_query_fields_mirrored_by_signals(client: Client) -> None:
    page = await client.get("/?q=BIKE&category=bikes&max_price=100")
    assert titles(page.html) == ["Children's bike with stabilisers"]
    document = unescape(page.html)
    assert 'q: "BIKE", category: "bikes", min_price: "", max_price: "100"' in document
    assert "history.replaceState" in document
    assert page.live_url is not None
    async with page.stream() as stream:  # the stream renders the same filter
        first = await stream.next_event()
        assert titles(first.elements) == ["Children's bike with stabilisers"]
    cheap = await client.get("/?min_price=40&max_price=$70.00")
    assert titles(cheap.html) == [  # newest first
        "Camping tent for two",
        "Children's bike with stabilisers",
        "Wool winter coat (M)",
        "Mechanical keyboard",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("category=cars", "category is not a category"),
        ("min_price=cheap", "min price must be an amount such as 25 or 12.50"),
        ("min_price=50&max_price=10", "max price is below the minimum"),
        ("max_price=99999999999", "max price must be an amount such as 25 or 12.50"),
    ],
)
async def test_a_filter_that_does_not_parse_is_named_not_a_400(
    client: Client, query: str, message: str
) -> None:
    page = await client.get("/?" + query)
    assert page.status_code == 200
    assert message in unescape(page.html)


@given(q=st.text(), category=st.text(), low=st.text(), high=st.text())
def test_any_filter_text_parses_to_a_filter(q: str, category: str, low: str, high: str) -> None:
    filters = Filters.parse(q, category, low, high)
    fields = {name for name, _ in filters.errors}
    assert fields <= {"category", "min_price", "max_price"}
    for value in (filters.min_price, filters.max_price):
        assert value is None or 0 <= value <= MAX_PRICE


@given(st.text())
def test_any_price_text_is_cents_or_a_value_error(text: str) -> None:
    try:
        cents = parse_price(text)
    except ValueError as exc:
        assert str(exc)  # a message the form shows
    else:
        assert 0 <= cents <= MAX_PRICE
        assert parse_price(format_price(cents).replace(",", "")) == cents


@pytest.mark.parametrize(
    ("text", "cents"), [("25", 2500), ("12.5", 1250), ("$12.50", 1250), (" 0,99 ", 99)]
)
def test_prices(text: str, cents: int) -> None:
    assert parse_price(text) == cents


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    query=st.lists(
        st.tuples(
            st.sampled_from(["q", "category", "min_price", "max_price", "other"]),
            st.binary(max_size=20),
        ),
        max_size=5,
    )
)
def test_any_query_string_is_a_page_or_a_400(query: list[tuple[str, bytes]]) -> None:
    # Any bytes in the query values, as a hostile client may send them: never a 500.
    text = "&".join(f"{name}={quote_from_bytes(value)}" for name, value in query)

    async def load() -> int:
        with tempfile.TemporaryDirectory() as folder:
            async with Client(create_app(database=Path(folder) / "market.db")) as client:
                return (await client.http.get("/?" + text)).status_code

    assert asyncio.run(load()) in (200, 400)


# -- in a real browser ----------------------------------------------------------------------------


@pytest.fixture
def server(datastar_js: Path, tmp_path: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the tests, so pages close before the server stops.
    settings = Settings(datastar_file=str(datastar_js))
    with LiveServer(create_app(settings, database=tmp_path / "market.db")) as live:
        yield live


def browser_sign_in(page: Page, url: str, email: str) -> None:
    page.goto(url + "/signin")
    page.fill("#email", email)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#submit")
    page.wait_for_url(url + "/")


def noisy_png(width: int, height: int) -> bytes:
    """A real PNG of random pixels: it does not compress, so it uploads in several chunks."""
    import os
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 0))
        + chunk(b"IEND", b"")
    )


def test_sign_up_in_the_browser(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    problems = watch_console(page)
    page.goto(server.url + "/signup")
    page.fill("#name", "Zoe Example")
    page.fill("#email", "ZOE@example.com")
    page.fill("#password", "short")
    page.click("#submit")
    expect(page.locator("#password-error")).to_have_text("must be at least 8 characters")
    page.fill("#password", "a long password")
    page.click("#submit")
    page.wait_for_url(server.url + "/")
    expect(page.locator("#me")).to_have_text("Zoe Example")
    # The account is real: signed out, the same e-mail (any case) and password sign in.
    page.click("#sign-out")
    expect(page.locator("#to-signin")).to_be_visible()
    page.goto(server.url + "/signin")
    page.fill("#email", "zoe@example.com")
    page.fill("#password", "a long password")
    page.click("#submit")
    page.wait_for_url(server.url + "/")
    expect(page.locator("#me")).to_have_text("Zoe Example")
    assert problems == []


def test_the_url_follows_the_search(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    problems = watch_console(page)
    goto_live(page, server.url + "/")
    expect(page.locator(".card")).to_have_count(12)
    page.fill("#q", "bike")
    expect(page).to_have_url(server.url + "/?q=bike")
    expect(page.locator(".card .title")).to_have_text(
        ["Children's bike with stabilisers", "Road bike, 56 cm frame"]
    )
    page.select_option("#category", "bikes")
    page.fill("#max-price", "100")
    expect(page).to_have_url(server.url + "/?q=bike&category=bikes&max_price=100")
    expect(page.locator(".card .title")).to_have_text(["Children's bike with stabilisers"])
    expect(page.locator("#count")).to_have_text("1 listing")
    # The URL gives the filters back: a reload shows the same search.
    page.reload()
    expect(page.locator("#q")).to_have_value("bike")
    expect(page.locator("#category")).to_have_value("bikes")
    expect(page.locator(".card .title")).to_have_text(["Children's bike with stabilisers"])
    page.fill("#max-price", "lots")
    expect(page.locator(".filter-error")).to_have_text(
        "max price must be an amount such as 25 or 12.50"
    )
    assert problems == []


def test_post_a_listing_with_a_photo(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import FilePayload, expect

    page = browser_context().new_page()
    problems = watch_console(page)
    browser_sign_in(page, server.url, ALAN)
    goto_live(page, server.url + "/sell")
    page.click("#submit")  # nothing filled in: every field says what it needs
    expect(page.locator("#title-error")).to_have_text("is required")
    expect(page.locator("#category-error")).to_have_text("choose a category")
    expect(page.locator("#price-error")).to_have_text("is required")

    page.fill("#title", "Green armchair")
    page.select_option("#category", "furniture")
    page.fill("#price", "45")
    page.fill("#description", "Comfortable.\nCollect in town.")
    page.evaluate(
        "window.progress = [];"
        "document.querySelector('#photos').addEventListener("
        "  'lp-upload', (e) => window.progress.push(e.detail.percent))"
    )
    photo: FilePayload = {
        "name": "chair.png",
        "mimeType": "image/png",
        "buffer": noisy_png(700, 700),  # about 1.5 MiB: two chunks
    }
    page.set_input_files("#photos", files=[photo])
    expect(page.locator("#photos")).to_have_attribute("data-lp-state", "done")
    expect(page.locator("#photos-percent")).to_have_text("Uploaded")
    expect(page.locator("#photos-progress progress")).to_have_attribute("value", "100")
    seen: list[float] = page.evaluate("window.progress")
    assert any(0 < percent < 100 for percent in seen), seen  # it moved, then finished
    assert seen[-1] == 100

    page.click("#submit")
    page.wait_for_url(server.url + "/listings/13")
    expect(page.locator("#title")).to_have_text("Green armchair")
    expect(page.locator("#price")).to_have_text("$45")
    expect(page.locator("#edit")).to_be_visible()  # the seller's own listing
    page.wait_for_function("document.querySelector('.photos img').naturalWidth === 700")
    assert problems == []


def test_buyer_and_seller_chat(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    buyer, seller = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (buyer, seller)]
    browser_sign_in(buyer, server.url, ADA)
    browser_sign_in(seller, server.url, GRACE)

    goto_live(buyer, server.url + f"/listings/{GRACES}")
    buyer.click("#contact")
    buyer.wait_for_url(server.url + "/chats/1")
    goto_live(buyer, server.url + "/chats/1")  # reloaded so its stream is surely open
    goto_live(seller, server.url + "/chats/1")
    expect(seller.locator("#other")).to_have_text("Ada Lovelace")

    buyer.bring_to_front()
    buyer.fill("#text", "Is it still available?")  # an input event: "typing"
    expect(seller.locator("#typing")).to_be_visible()
    expect(seller.locator("#typing")).to_have_text("Ada Lovelace is typing\u2026")
    buyer.press("#text", "Enter")
    expect(seller.locator("#messages li.theirs")).to_have_text(
        re.compile("^Is it still available?")
    )
    expect(seller.locator("#typing")).to_be_hidden()  # sent: no longer typing
    expect(buyer.locator("#text")).to_have_value("")
    # The seller's page shows the message, and says so: the buyer sees "Seen".
    expect(buyer.locator("#receipt")).to_have_text("Seen")

    seller.bring_to_front()
    seller.fill("#text", "Yes! Come by on Saturday.")
    seller.press("#text", "Enter")
    expect(buyer.locator("#messages li.theirs")).to_have_text(re.compile("^Yes! Come by"))
    expect(seller.locator("#receipt")).to_have_text("Seen")
    expect(buyer.locator("#receipt")).to_have_count(0)  # the newest of Ada's is older
    assert problems == [[], []]


def test_presence_counts_the_people_looking(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    first, second = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (first, second)]
    goto_live(first, server.url + f"/listings/{ADAS}")
    expect(first.locator("#watching")).to_have_text("1 person is looking at this")
    goto_live(second, server.url + f"/listings/{ADAS}")
    for page in (first, second):
        expect(page.locator("#watching")).to_have_text("2 people are looking at this")
    second.close()
    expect(first.locator("#watching")).to_have_text("1 person is looking at this")
    assert problems == [[], []]


def test_close_another_session_from_settings(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    laptop, phone = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (laptop, phone)]
    browser_sign_in(laptop, server.url, ADA)
    browser_sign_in(phone, server.url, ADA)
    goto_live(phone, server.url + "/sell")  # a private page, open on the "phone"
    goto_live(laptop, server.url + "/settings")
    expect(laptop.locator("#sessions li")).to_have_count(2)
    expect(laptop.locator("#sessions li.current")).to_have_count(1)

    laptop.click("#sessions li:not(.current) button.close")
    # The phone's open page is sent away at once, to sign in; the list shows one session.
    phone.wait_for_url(server.url + "/signin")
    expect(phone.locator("#to-signin")).to_be_visible()
    expect(laptop.locator("#sessions li")).to_have_count(1)
    phone.goto(server.url + "/sell")  # its cookie opens nothing any more
    assert phone.url == server.url + "/signin?next=%2Fsell"
    assert problems == [[], []]
