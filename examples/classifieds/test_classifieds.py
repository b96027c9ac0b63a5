"""The classifieds example: over HTTP in process, in Chromium, and on two processes with NATS."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote_from_bytes

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount
from tests.fixtures.cluster import AppProcess, app_processes

from examples.classifieds import app as module
from examples.classifieds.app import create_app
from examples.classifieds.market import Market, verify_password
from examples.classifieds.models import (
    MAX_MESSAGE,
    MAX_PRICE,
    Filters,
    ListingForm,
    MessageForm,
    SignInForm,
    SignUpForm,
    format_price,
    parse_price,
)
from examples.classifieds.seed import DEMO_PASSWORD, png, seed
from livepages import App, Settings, ValidationError
from livepages.hooks import Rendered
from livepages.testing import (
    Client,
    DatastarEvent,
    LiveServer,
    LoadedPage,
    goto_live,
    parse_events,
    watch_console,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from tests.fixtures.browser import NewContext

ADA, GRACE, ALAN = "ada@example.com", "grace@example.com", "alan@example.com"
#: Seeded listings: 1 is Ada's, 2 is Grace's, 3 is Alan's.
ADAS, GRACES = 1, 2


@pytest.fixture
def app(tmp_path: Path) -> App:
    return create_app(database=tmp_path / "market.db")


def app_of(client: Client) -> App:
    """The app a client drives in process."""
    app = client.app
    assert isinstance(app, App)
    return app


def market_of(target: App | Client) -> Market:
    """The data of an app, or of the app a client drives."""
    app = app_of(target) if isinstance(target, Client) else target
    market: Market = app.state.market
    return market


@pytest.fixture
async def client(app: App) -> AsyncIterator[Client]:
    """A visitor. The app is started (and seeded) with it, and stopped after the test."""
    async with Client(app) as c:
        await seed(market_of(app))
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


async def whoami(client: Client) -> dict[str, object]:
    """What a public page's header learns from ``whoami``: who is signed in."""
    page = await client.get("/")
    signals: dict[str, object] = {}
    for event in patches(await client.http.post("/_action/whoami", headers=page.headers)):
        signals.update(event.signals)
    return signals


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
    assert await seed(market_of(client)) is False  # once per database


@pytest.mark.anyio
async def test_two_processes_seeding_one_new_file_seed_once(tmp_path: Path) -> None:
    first, second = (create_app(database=tmp_path / "market.db") for _ in range(2))
    async with Client(first) as one, Client(second):
        done = await asyncio.gather(seed(market_of(first)), seed(market_of(second)))
        assert sorted(done) == [False, True]
        listings = await market_of(first).listings.all()
        assert [listing.id for listing in listings] == list(range(1, 13))
        assert titles((await one.get("/")).html)[-1] == "Road bike, 56 cm frame"


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
        message = str(exc)  # what the form shows
        assert message in {"is required", "must be an amount such as 25 or 12.50"} or (
            message.startswith("must be at most")
        )
        return
    assert 0 <= cents <= MAX_PRICE
    assert parse_price(format_price(cents).replace(",", "")) == cents


@given(st.lists(st.text(), min_size=4, max_size=4))
def test_any_form_text_is_a_form_or_a_validation_error(texts: list[str]) -> None:
    # The checks in the forms' __post_init__ take any text the signals decoded to.
    for form in (SignUpForm, SignInForm, ListingForm, MessageForm):
        fields = len(dataclasses.fields(form))
        messages: dict[str, str] = {}
        try:
            made = form(*texts[:fields])
        except ValidationError as exc:
            messages = exc.errors
        else:
            if isinstance(made, ListingForm):
                assert 0 <= made.cents <= MAX_PRICE
            continue
        assert messages
        assert all(isinstance(m, str) and m for m in messages.values())


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


# -- accounts ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_sign_up_makes_an_account_with_a_hashed_password(client: Client) -> None:
    await sign_up(client, " Zoe@Example.com ", "  Zoe   Example ", "correct horse")
    me = await whoami(client)
    assert me["_me"] == "Zoe Example"
    assert client.http.cookies.get(module.COOKIE_NAME)  # the app's own cookie
    market = market_of(client)
    key = await market.emails.get("zoe@example.com")
    assert key is not None
    user = await market.users.get(key.user)
    assert user is not None
    assert user.email == "zoe@example.com"
    assert "correct horse" not in user.password
    assert user.password.startswith("scrypt$")
    assert verify_password("correct horse", user.password)
    assert not verify_password("wrong horse", user.password)


GOOD = {"email": "z@example.com", "name": "Zoe", "password": "long enough"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ({}, {"email": "is required", "name": "is required"}),
        ({**GOOD, "email": "nope"}, {"email": "is not an e-mail address"}),
        ({**GOOD, "name": "Z" * 51}, {"name": "must be at most 50 characters"}),
        ({**GOOD, "password": "short"}, {"password": "must be at least 8 characters"}),
        ({**GOOD, "email": ADA.upper()}, {"email": "is already registered: sign in instead"}),
    ],
)
async def test_sign_up_is_checked(
    client: Client, signals: dict[str, str], expected: dict[str, str]
) -> None:
    page = await client.get("/signup")
    found = errors(await page.action("signup", signals))
    assert {name: text for name, text in found.items() if text} == {
        **expected,
        **({"password": "must be at least 8 characters"} if "password" not in signals else {}),
    }


@pytest.mark.anyio
async def test_a_wrong_password_or_address_does_not_sign_in(client: Client) -> None:
    page = await client.get("/signin")
    for email, password in ((ADA, "not it"), ("nobody@example.com", DEMO_PASSWORD)):
        response = await page.action("signin", {"email": email, "password": password})
        assert errors(response)["password"] == "wrong e-mail or password"
    assert (await whoami(client))["_me"] == ""


@pytest.mark.anyio
async def test_malformed_signals_are_400(client: Client) -> None:
    page = await client.get("/signin")
    # A Datastar request gets its errors as the `_error` signal (Datastar reads only 200s).
    response = await client.http.post(
        "/signin/_action/signin", content=b"{not json", headers=page.headers
    )
    assert '"_error":{"status":400' in response.text
    response = await page.action("signin", {"email": 5, "password": []})
    assert '"_error":{"status":400' in response.text
    plain = {"X-LP-Tab": page.tab, "X-CSRF-Token": page.csrf}  # not Datastar: a real 400
    response = await client.http.post("/signin/_action/signin", content=b"{", headers=plain)
    assert response.status_code == 400


@pytest.mark.anyio
async def test_actions_need_the_csrf_token(client: Client) -> None:
    page = await client.get("/signin")
    headers = {**page.headers, "X-CSRF-Token": "forged"}
    signals = {"email": ADA, "password": DEMO_PASSWORD}
    refused = await page.action("signin", signals, headers=headers)
    assert refused.status_code == 403
    assert client.http.cookies.get(module.COOKIE_NAME) is not None
    assert (await whoami(client))["_me"] == ""


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/sell", "/settings", "/chats", "/chats/1", "/listings/1/edit"])
async def test_guests_are_sent_to_sign_in(client: Client, path: str) -> None:
    response = await client.http.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=" + path.replace("/", "%2F")


@pytest.mark.anyio
async def test_sign_in_returns_to_the_page_that_sent_you(client: Client) -> None:
    page = await client.get("/signin?next=%2Fsell")
    response = await page.action("signin", {"email": ADA, "password": DEMO_PASSWORD})
    assert redirected_to(response) == "/sell"
    page = await client.get("/signin?next=//evil.example")
    response = await page.action("signin", {"email": ADA, "password": DEMO_PASSWORD})
    assert redirected_to(response) == "/"


# -- listings and photos ---------------------------------------------------------------------------


async def upload(page: LoadedPage, data: bytes, name: str = "photo.png") -> str:
    """Upload ``data`` as the page's script does; the upload's id."""
    headers = {"X-LP-Tab": page.tab, "X-CSRF-Token": page.csrf}
    start = {"name": name, "size": len(data), "type": "image/png"}
    started = await page.client.http.post("/_upload", json=start, headers=headers)
    assert started.status_code == 201, started.text
    upload_id: str = started.json()["id"]
    sent = await page.client.http.patch(
        f"/_upload/{upload_id}", content=data, headers={**headers, "Upload-Offset": "0"}
    )
    assert sent.status_code == 204, sent.text
    return upload_id


LAMP = {"title": "Desk lamp", "category": "home", "price": "12.50", "description": "Bright."}


@pytest.mark.anyio
async def test_post_a_listing_with_photos(client: Client) -> None:
    await sign_in(client, ALAN)
    sell = await client.get("/sell")
    image = png(40, 30, (10, 200, 30))
    photos = [await upload(sell, image), await upload(sell, image, "two.png")]
    response = await sell.action("post", {**LAMP, "photos": photos})
    assert redirected_to(response) == "/listings/13"
    page = await client.get("/listings/13")
    assert shown(page.html, "title") == "Desk lamp"
    assert shown(page.html, "price") == "$12.50"
    assert shown(page.html, "seller") == "Alan Turing"
    sources = re.findall(r'<img src="(/photos/\d+)"', page.html)
    assert len(sources) == 2
    served = await client.http.get(sources[0])
    assert served.content == image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert (await client.http.get("/photos/999")).status_code == 404
    assert "Desk lamp" in titles((await client.get("/?q=lamp")).html)


@pytest.mark.anyio
async def test_a_listing_without_photos_and_the_checks(client: Client) -> None:
    await sign_in(client, ALAN)
    sell = await client.get("/sell")
    refused = errors(await sell.action("post", {"title": " ", "category": "cars", "price": "-1"}))
    assert refused == {
        "title": "is required",
        "category": "choose a category",
        "price": "must be an amount such as 25 or 12.50",
        "description": "",
    }
    headers = {"X-LP-Tab": sell.tab, "X-CSRF-Token": sell.csrf}
    start = {"name": "half.png", "size": 100, "type": "image/png"}
    half = (await client.http.post("/_upload", json=start, headers=headers)).json()["id"]
    refused = errors(await sell.action("post", {**LAMP, "photos": [half]}))
    assert refused["photos"] == "is still uploading"
    assert await market_of(client).listings.count() == 12  # nothing was written
    response = await sell.action("post", LAMP)
    assert redirected_to(response) == "/listings/13"


@pytest.mark.anyio
async def test_only_images_are_accepted(client: Client) -> None:
    await sign_in(client, ALAN)
    sell = await client.get("/sell")
    headers = {"X-LP-Tab": sell.tab, "X-CSRF-Token": sell.csrf}
    for name, kind in (("page.svg", "image/svg+xml"), ("notes.txt", "text/plain")):
        start = {"name": name, "size": 10, "type": kind}
        refused = await client.http.post("/_upload", json=start, headers=headers)
        assert refused.status_code == 415
    start = {"name": "big.png", "size": module.MAX_PHOTO_SIZE + 1, "type": "image/png"}
    refused = await client.http.post("/_upload", json=start, headers=headers)
    assert refused.status_code == 413


@pytest.mark.anyio
async def test_only_the_seller_edits(client: Client, other: Client) -> None:
    await sign_in(client, ADA)
    await sign_in(other, GRACE)
    assert (await other.http.get(f"/listings/{ADAS}/edit")).status_code == 403
    # Grace cannot save Ada's listing through her own edit page's action either.
    own = await other.get(f"/listings/{GRACES}/edit")
    target = f"/listings/{ADAS}/edit/_action/save"
    forged = await other.http.post(target, json=LAMP, headers=own.headers)
    assert "403" in forged.text
    listing = await market_of(client).listings.get(ADAS)
    assert listing is not None
    assert listing.title == "Road bike, 56 cm frame"

    edit = await client.get(f"/listings/{ADAS}/edit")
    assert shown(edit.html, "photo-" + str(listing.photos[0])).startswith("")
    response = await edit.action("save", {**LAMP, "price": "399"})
    assert redirected_to(response) == f"/listings/{ADAS}"
    page = await client.get(f"/listings/{ADAS}")
    assert (shown(page.html, "title"), shown(page.html, "price")) == ("Desk lamp", "$399")
    removed = await edit.action("remove_photo", {"photo": listing.photos[0]})
    assert removed.status_code == 200
    assert '<img src="/photos/' not in (await client.get(f"/listings/{ADAS}")).html


@pytest.mark.anyio
async def test_listings_and_their_text_are_escaped(client: Client) -> None:
    await sign_in(client, ALAN)
    sell = await client.get("/sell")
    hostile = {**LAMP, "title": "<script>alert(1)</script>", "description": "<b>bold</b>"}
    await sell.action("post", hostile)
    page = await client.get("/listings/13")
    assert "<script>alert(1)" not in page.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.html
    assert "<b>bold</b>" not in page.html


@pytest.mark.anyio
async def test_a_new_listing_reaches_open_searches(client: Client, other: Client) -> None:
    await sign_in(client, ALAN)
    search = await other.get("/?q=lamp")
    async with search.stream() as stream:
        assert titles((await stream.next_event()).elements) == []
        sell = await client.get("/sell")
        await sell.action("post", LAMP)
        found = await stream.wait_for(lambda e: "Desk lamp" in e.elements)
        assert titles(found.elements) == ["Desk lamp"]


@pytest.mark.anyio
async def test_public_pages_render_once_for_every_viewer(
    client: Client, other: Client, third: Client
) -> None:
    # Three people, two of them signed in, on one search and one listing: each change
    # is one render of each page, whoever is looking.
    await sign_in(client, ADA)
    await sign_in(other, GRACE)
    renders: list[Rendered] = []
    app_of(client).hooks.add(Rendered, renders.append)
    searches = [await c.get("/?q=lamp") for c in (client, other, third)]
    listings = [await c.get(f"/listings/{GRACES}") for c in (client, other, third)]
    streams = [await page.stream().open() for page in searches + listings]
    for stream in streams:
        await stream.next_event()
    for stream in streams[3:]:  # presence: all three counted
        await stream.wait_for(lambda e: "3 people are looking" in e.elements)
    assert {r.scope for r in renders} == {"shared"}
    renders.clear()
    await (await other.get(f"/listings/{GRACES}/edit")).action("save", {**LAMP, "price": "99"})
    for stream in streams:
        await stream.wait_for(lambda e: "Desk lamp" in e.elements)
    assert sorted(r.page for r in renders) == ["ListingPage", "Listings"]
    for stream in streams:
        await stream.close()


@pytest.mark.anyio
async def test_the_data_outlives_the_process(tmp_path: Path) -> None:
    database = tmp_path / "market.db"
    async with Client(create_app(database=database)) as client:
        await seed(market_of(client))
        await sign_in(client, ALAN)
        await (await client.get("/sell")).action("post", LAMP)
        chat = await open_chat(client, ADAS)
        await (await client.get(f"/chats/{chat}")).action("send", {"text": "still there?"})
    async with Client(create_app(database=database)) as again:
        assert "Desk lamp" in titles((await again.get("/")).html)
        await sign_in(again, ALAN)
        assert "still there?" in (await again.get(f"/chats/{chat}")).html


# -- conversations --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_contact_opens_one_conversation_per_listing_and_buyer(
    client: Client, other: Client
) -> None:
    await sign_in(client, ADA)
    first = await open_chat(client, GRACES)
    assert await open_chat(client, GRACES) == first  # the same one again
    await sign_in(other, ALAN)
    assert await open_chat(other, GRACES) != first
    own = await client.get(f"/listings/{ADAS}")
    assert errors(await own.action("contact")) == {"contact": "this is your own listing"}
    guest = Client(client.app)
    page = await guest.get(f"/listings/{GRACES}")
    assert redirected_to(await page.action("contact")) == "/signin?next=%2Flistings%2F2"


@pytest.mark.anyio
async def test_messages_typing_and_receipts(client: Client, other: Client) -> None:
    await sign_in(client, ADA)  # the buyer
    await sign_in(other, GRACE)  # the seller
    chat = await open_chat(client, GRACES)
    buyer, seller = await client.get(f"/chats/{chat}"), await other.get(f"/chats/{chat}")
    async with buyer.stream() as to_buyer, seller.stream() as to_seller:
        await to_buyer.next_event()
        await to_seller.next_event()
        assert (await buyer.action("typing")).status_code == 204
        heard = await to_seller.wait_for(lambda e: e.type == "datastar-patch-signals")
        assert heard.signals == {"_typing": "Ada Lovelace", "_typing_for": module.TYPING_SECONDS}

        sent = await buyer.action("send", {"text": "  Is it <i>still</i> available?  "})
        assert errors(sent) == {"text": ""}
        # The message (a re-render), and "no longer typing" (a signal), in either order.
        events = await to_seller.until(lambda e: "available?" in e.elements)
        if not any(e.type == "datastar-patch-signals" for e in events):
            events.append(await to_seller.wait_for(lambda e: e.type == "datastar-patch-signals"))
        [stopped] = [e for e in events if e.type == "datastar-patch-signals"]
        assert stopped.signals["_typing_for"] == 0
        shown_to_seller = next(e for e in events if "available?" in e.elements)
        assert "Is it &lt;i&gt;still&lt;/i&gt; available?" in shown_to_seller.elements
        assert 'data-init="@post(' in shown_to_seller.elements  # the seller's page says "seen"
        await to_buyer.wait_for(lambda e: "available?" in e.elements)

        assert (await seller.action("seen")).status_code == 204
        receipt = await to_buyer.wait_for(lambda e: 'id="receipt"' in e.elements)
        assert '<li id="receipt" class="receipt">Seen</li>' in receipt.elements
        # Nothing of Ada's own typing came back to Ada.
        assert all(e.type != "datastar-patch-signals" for e in await to_buyer.drain())


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "message"),
    [("   ", "is empty"), ("x" * (MAX_MESSAGE + 1), "must be at most 500 characters")],
)
async def test_bad_messages_are_refused(client: Client, text: str, message: str) -> None:
    await sign_in(client, ADA)
    chat = await open_chat(client, GRACES)
    page = await client.get(f"/chats/{chat}")
    assert errors(await page.action("send", {"text": text})) == {"text": message}
    stored = await market_of(client).chats.get(chat)
    assert stored is not None
    assert stored.messages == []


@pytest.mark.anyio
async def test_a_conversation_is_the_two_parties_only(
    client: Client, other: Client, third: Client
) -> None:
    await sign_in(client, ADA)
    await sign_in(other, GRACE)
    await sign_in(third, ALAN)
    chat = await open_chat(client, GRACES)
    await (await client.get(f"/chats/{chat}")).action("send", {"text": "between us"})
    # Alan cannot see it, act on it, or read it from its stream.
    assert (await third.http.get(f"/chats/{chat}")).status_code == 404
    own = await third.get("/chats")
    for name, signals in (("send", {"text": "hi"}), ("typing", {}), ("seen", {})):
        response = await third.http.post(
            f"/chats/{chat}/_action/{name}", json=signals, headers=own.headers
        )
        assert '"_error":{"status":404' in response.text, name
    async with third.stream(f"/chats/{chat}/_live", headers=own.headers) as stream:
        first = await stream.next_event()  # a 404, as for the page: no elements
        assert first.signals == {
            "_error": {"status": 404, "message": f"you have no conversation {chat}"}
        }
        assert "between us" not in json.dumps(first.data)
        assert all("between us" not in json.dumps(e.data) for e in await stream.drain())
    stored = await market_of(client).chats.get(chat)
    assert stored is not None
    assert [m.text for m in stored.messages] == ["between us"]
    assert stored.seen_seller == 0  # Alan's "seen" counted for nobody


@pytest.mark.anyio
async def test_what_one_user_sends_reaches_no_other_users_render(
    client: Client, other: Client, third: Client
) -> None:
    await sign_in(client, ADA)
    await sign_in(other, GRACE)
    await sign_in(third, ALAN)
    chat = await open_chat(client, GRACES)
    secret = f"secret-{uuid.uuid4().hex}"
    alans = [await third.get(path) for path in ("/", f"/listings/{GRACES}", "/chats", "/settings")]
    streams = [await page.stream().open() for page in alans]
    for stream in streams:
        await stream.next_event()
    graces = await other.get("/chats")
    async with graces.stream() as to_grace:
        await to_grace.next_event()
        buyer = await client.get(f"/chats/{chat}")
        await buyer.action("typing")
        await buyer.action("send", {"text": secret})
        # Grace's inbox shows it, with one unread ...
        shown_to_grace = await to_grace.wait_for(lambda e: secret in e.elements)
        assert '<span class="badge">1</span>' in shown_to_grace.elements
    # ... Alan's pages, open all along, never carried it, nor Ada's typing.
    for stream in streams:
        for event in await stream.drain(quiet=0.3):
            assert secret not in event.elements
            assert "Ada Lovelace" not in json.dumps(event.data)
        await stream.close()


# -- presence and sessions ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_presence_counts_each_visitor_once(client: Client, other: Client) -> None:
    page = await client.get(f"/listings/{ADAS}")
    async with page.stream() as mine, (await client.get(f"/listings/{ADAS}")).stream():
        # Two tabs of one visitor count once.
        first = await mine.next_event()
        assert shown(first.elements, "watching") == "1 person is looking at this"
        second = await other.get(f"/listings/{ADAS}")
        async with second.stream():
            await mine.wait_for(lambda e: "2 people are looking" in e.elements)
        await mine.wait_for(lambda e: "1 person is looking" in e.elements)


async def session_id(client: Client) -> str:
    """The id of the client's session: its settings page marks it "current"."""
    html = (await client.get("/settings")).html
    found = re.search(r'<li class="session current" id="session-([0-9a-f]{12})"', html)
    assert found is not None
    sessions = app_of(client).sessions
    assert sessions is not None
    [record] = [r for r in await sessions.list_user("1") if r.id.startswith(found[1])]
    return str(record.id)


@pytest.mark.anyio
async def test_settings_close_one_session_then_all_others(
    client: Client, other: Client, third: Client
) -> None:
    for browser in (client, other, third):
        await sign_in(browser, ADA)  # a laptop, a phone and a tablet
    laptop, phone, _tablet = [await session_id(c) for c in (client, other, third)]
    settings_page = await client.get("/settings")
    assert settings_page.html.count('<li class="session') == 3
    assert f"$session = '{phone}'" in settings_page.html  # a close button for each other one
    assert f"$session = '{laptop}'" not in settings_page.html

    on_phone = await other.get("/sell")
    async with settings_page.stream() as listed, on_phone.stream() as phone_tab:
        await listed.next_event()
        await phone_tab.next_event()
        # A made-up id, or another user's session, is not Ada's to close.
        refused = await settings_page.action("close_session", {"session": "f" * 64})
        assert '"status":404' in refused.text
        closed = await settings_page.action("close_session", {"session": phone})
        assert closed.status_code == 200
        # The phone's open tab is sent to sign in, and its stream ends.
        await phone_tab.ended.wait()
        events = await phone_tab.drain()
        assert any('window.location.href = "/signin"' in e.elements for e in events)
        await listed.wait_for(lambda e: e.elements.count('<li class="session') == 2)

        await settings_page.action("close_others")
        await listed.wait_for(lambda e: e.elements.count('<li class="session') == 1)
    assert (await client.http.get("/settings")).status_code == 200
    for gone in (other, third):
        assert (await gone.http.get("/settings")).status_code == 303


@pytest.mark.anyio
async def test_mounted_under_a_prefix(app: App, client: Client) -> None:
    # As in the gallery (`make run`): every link, photo, redirect and action carries it.
    browser = Client(Starlette(routes=[Mount("/classifieds", app=app)]))
    page = await browser.get("/classifieds/")
    assert page.live_url == "/classifieds/_live"
    photo = re.findall(r'<img src="(/classifieds/photos/\d+)"', page.html)[0]
    assert (await browser.http.get(photo)).headers["content-type"] == "image/png"
    assert 'href="/classifieds/listings/12"' in page.html
    guarded = await browser.http.get("/classifieds/sell")
    assert guarded.headers["location"] == "/classifieds/signin?next=%2Fclassifieds%2Fsell"
    sign_in_page = await browser.get(guarded.headers["location"])
    signed_in = await sign_in_page.action("signin", {"email": ADA, "password": DEMO_PASSWORD})
    assert redirected_to(signed_in) == "/classifieds/sell"
    listing = await browser.get(f"/classifieds/listings/{GRACES}")
    assert redirected_to(await listing.action("contact")) == "/classifieds/chats/1"


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


def test_the_seller_edits_and_viewers_see_it_at_once(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    seller, viewer = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (seller, viewer)]
    browser_sign_in(seller, server.url, ADA)
    goto_live(viewer, server.url + f"/listings/{ADAS}")
    expect(viewer.locator("#contact")).to_be_visible()  # not the viewer's listing
    goto_live(seller, server.url + f"/listings/{ADAS}")
    seller.click("#edit")
    seller.wait_for_url(server.url + f"/listings/{ADAS}/edit")
    goto_live(seller, server.url + f"/listings/{ADAS}/edit")
    expect(seller.locator("#title")).to_have_value("Road bike, 56 cm frame")
    expect(seller.locator("#price")).to_have_value("420")
    seller.fill("#price", "380")
    seller.fill("#title", "Road bike, 56 cm frame (reduced)")
    seller.click("#submit")
    seller.wait_for_url(server.url + f"/listings/{ADAS}")
    expect(seller.locator("#price")).to_have_text("$380")
    # The viewer's page, open all along, shows the change without a reload.
    expect(viewer.locator("#price")).to_have_text("$380")
    expect(viewer.locator("#title")).to_have_text("Road bike, 56 cm frame (reduced)")
    assert problems == [[], []]


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


# -- two processes on NATS ----------------------------------------------------------------------


@pytest.fixture
def pair(nats_server: str, tmp_path: Path) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Processes A and B of the example (``python -m examples.classifieds``), sharing one
    database file and the session's nats-server (under a subject prefix of their own)."""
    env = {
        "CLASSIFIEDS_DB": str(tmp_path / "market.db"),
        "LIVEPAGES_SUBJECT_PREFIX": f"market{uuid.uuid4().hex[:12]}",
    }
    key = f"classifieds-{uuid.uuid4().hex}"
    with app_processes(2, "examples.classifieds", nats_server, key, env=env) as (a, b):
        yield a, b


async def listing_of(client: Client, title: str) -> int:
    """The id of the (seeded) listing with this title, from the listings page."""
    html = (await client.get("/?q=" + title.split()[0])).html
    cards = re.findall(
        r'id="listing-(\d+)" href="[^"]*">.*?<div class="title">([^<]*)<', html, re.S
    )
    [found] = [int(n) for n, shown_title in cards if unescape(shown_title) == title]
    return found


@pytest.mark.anyio
async def test_two_processes_on_nats_share_chats_and_listings(
    pair: tuple[AppProcess, AppProcess],
) -> None:
    a, b = pair
    async with Client(a.url) as buyer, Client(b.url) as seller:
        await sign_in(buyer, ADA)  # Ada on process A
        await sign_in(seller, GRACE)  # Grace on process B
        table = await listing_of(buyer, "Oak dining table")  # Grace's
        chat = await open_chat(buyer, table)
        on_b = await seller.get(f"/chats/{chat}")
        secret = f"message-{uuid.uuid4().hex[:8]}"
        async with on_b.stream() as to_seller:
            await to_seller.next_event()
            on_a = await buyer.get(f"/chats/{chat}")
            await on_a.action("typing")  # an event, through NATS
            heard = await to_seller.wait_for(lambda e: e.type == "datastar-patch-signals")
            assert heard.signals["_typing"] == "Ada Lovelace"
            sent = await on_a.action("send", {"text": secret})  # a store write, on A
            assert errors(sent) == {"text": ""}
            # B re-renders Grace's page from the shared file when A's commit notice arrives.
            await to_seller.wait_for(lambda e: secret in e.elements)

        # A listing posted on B shows in a search left open on A.
        search = await buyer.get("/?q=armchair")
        async with search.stream() as results:
            assert titles((await results.next_event()).elements) == []
            sell = await seller.get("/sell")
            posted = await sell.action("post", {**LAMP, "title": "Blue armchair"})
            assert redirected_to(posted).startswith("/listings/")
            found = await results.wait_for(lambda e: "Blue armchair" in e.elements)
            assert titles(found.elements) == ["Blue armchair"]
