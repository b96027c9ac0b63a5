"""The chat example: over HTTP (in process and on a real server) and in Chromium."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from examples.chat import app as chat
from examples.chat.app import MAX_NAME, MAX_TEXT, create_app
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

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext

DATASTAR = {"Datastar-Request": "true"}

NO_ERROR = {"status": 0, "message": ""}


async def send(
    client: httpx.AsyncClient, room: str, name: str, text: str, **headers: str
) -> httpx.Response:
    signals = {"room": room, "name": name, "text": text}
    return await client.post("/_action/send", json=signals, headers={**DATASTAR, **headers})


def patches(response: httpx.Response) -> list[tuple[str, dict[str, Any] | str]]:
    """What a Datastar response patches: ("signals", dict) or ("elements", script text)."""
    assert response.status_code == 200, response.text
    events, rest = parse_events(response.text)
    assert rest == ""
    found: list[tuple[str, dict[str, Any] | str]] = []
    for event in events:
        if event.type == "datastar-patch-signals":
            found.append(("signals", event.signals))
        else:
            found.append(("elements", event.elements))
    return found


def texts(html: str) -> list[str]:
    """The message texts on a rendered page, in order."""
    parts = unescape(html).split('<span class="text">')[1:]
    return [part.split("</span>", 1)[0] for part in parts]


async def history(client: Client, room: str) -> str:
    """The messages a new viewer of ``room`` gets: the first chunk of its list stream."""
    page = await client.get(f"/rooms/{room}")
    assert "<li id=" not in page.html  # the page holds only the list's container
    async with page.stream() as stream:
        chunk = await stream.wait_for(lambda event: event.option("selector") == "#messages")
    assert chunk.option("mode") == "inner"  # it replaces whatever the container held
    return chunk.elements


def appended(text: str) -> Any:
    def wanted(event: DatastarEvent) -> bool:
        return event.type == "datastar-patch-elements" and text in event.elements

    return wanted


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(create_app()) as c:
        yield c


# -- pages ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_lobby_links_the_rooms(client: Client) -> None:
    html = (await client.get("/")).html
    assert '<a href="/rooms/general">#general</a> <small>(0 messages)</small>' in html
    assert '<a href="/rooms/random">#random</a>' in html
    assert "@post(&#39;/_action/enter&#39;" in html


@pytest.mark.anyio
async def test_a_room_starts_empty(client: Client) -> None:
    page = await client.get("/rooms/general")
    assert page.status_code == 200
    html = unescape(page.html)
    assert "<title>#general</title>" in html
    assert '<ol id="messages" data-ignore-morph></ol>' in html
    assert texts(await history(client, "general")) == []
    assert "@post('/_action/send'" in html
    assert "@get('/rooms/general/_live'" in html


@pytest.mark.anyio
@pytest.mark.parametrize("room", ["Shouting", "under_score", "-dash", "x" * 33, "caf%C3%A9"])
async def test_bad_room_names_are_400(client: Client, room: str) -> None:
    response = await client.http.get(f"/rooms/{room}")
    assert response.status_code == 400
    assert "is not a room name (lowercase letters, digits and dashes" in unescape(response.text)
    # Its stream is refused with a 204, which stops Datastar from retrying.
    tab = (await client.get("/rooms/general")).tab
    assert tab
    refused = await client.http.get(f"/rooms/{room}/_live", headers={"X-LP-Tab": tab})
    assert refused.status_code == 204
    assert "is not a room name" in refused.headers["x-livepages-refused"]


@pytest.mark.anyio
@pytest.mark.parametrize("room", ["Shouting", "", "a.b"])
async def test_messages_to_bad_rooms_are_400(client: Client, room: str) -> None:
    [(kind, signals)] = patches(await send(client.http, room, "ada", "hi"))
    assert kind == "signals"
    assert isinstance(signals, dict)
    assert signals["_error"]["status"] == 400


# -- posting ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_message_is_kept_and_the_input_emptied(client: Client) -> None:
    response = await send(client.http, "general", "  Ada ", " hello ")
    # The text input empties, the name stays, and earlier errors clear.
    assert patches(response) == [
        ("signals", {"text": "", "images": [], "errors": {"images": ""}}),
        ("signals", {"_error": NO_ERROR, "errors": {"room": "", "name": "", "text": ""}}),
    ]
    assert await history(client, "general") == (
        '<li id="messages-1"><span class="author">Ada</span><span class="text">hello</span></li>'
    )
    assert "(1 message)" in (await client.get("/")).html


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "text", "errors"),
    [
        ("", "hi", {"name": "choose a name", "text": ""}),
        ("ada", "   ", {"name": "", "text": "is empty"}),
        ("", "", {"name": "choose a name", "text": "is empty"}),
        (
            "a" * (MAX_NAME + 1),
            "hi",
            {"name": f"must be at most {MAX_NAME} characters", "text": ""},
        ),
        (
            "ada",
            "b" * (MAX_TEXT + 1),
            {"name": "", "text": f"must be at most {MAX_TEXT} characters"},
        ),
    ],
)
async def test_bad_messages_are_refused(
    client: Client, name: str, text: str, errors: dict[str, str]
) -> None:
    expected = {"errors": {"room": "", **errors}}
    assert patches(await send(client.http, "general", name, text)) == [("signals", expected)]
    assert texts(await history(client, "general")) == []


@pytest.mark.anyio
async def test_malformed_signals_are_400(client: Client) -> None:
    response = await client.http.post("/_action/send", content=b"{not json")
    assert response.status_code == 400
    response = await client.http.post("/_action/send", json={"room": "general", "text": 5})
    assert response.status_code == 400


@pytest.mark.anyio
async def test_names_and_messages_are_escaped(client: Client) -> None:
    await send(client.http, "general", "<b>eve</b>", "<script>alert(1)</script>")
    html = await history(client, "general")
    assert "<script>alert" not in html
    assert "<b>eve" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.anyio
async def test_rooms_are_separate_and_open_on_first_message(client: Client) -> None:
    await send(client.http, "general", "ada", "in general")
    await send(client.http, "new-room", "ada", "in a new room")
    assert texts(await history(client, "general")) == ["in general"]
    assert texts(await history(client, "random")) == []
    assert texts(await history(client, "new-room")) == ["in a new room"]
    assert '<a href="/rooms/new-room">#new-room</a>' in (await client.get("/")).html


@pytest.mark.anyio
async def test_history_and_rooms_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chat, "HISTORY", 3)
    monkeypatch.setattr(chat, "MAX_ROOMS", 3)  # the two default rooms and one more
    async with Client(create_app()) as client:
        for n in range(5):
            await send(client.http, "extra", "ada", f"message {n}")
        assert texts(await history(client, "extra")) == [
            "message 2",
            "message 3",
            "message 4",
        ]
        refused = patches(await send(client.http, "one-too-many", "ada", "hi"))
        message = "too many rooms are open: try an existing one"
        assert refused == [("signals", {"errors": {"room": "", "name": "", "text": message}})]


@pytest.mark.anyio
async def test_the_lobby_sends_you_to_a_room(client: Client) -> None:
    [(kind, script)] = patches(
        await client.http.post("/_action/enter", json={"room": " Board-Games "}, headers=DATASTAR)
    )
    assert kind == "elements"
    assert "window.location.href = " in str(script)
    assert '"/rooms/board-games"' in str(script)
    refused = await client.http.post("/_action/enter", json={"room": "a b"}, headers=DATASTAR)
    [(_, signals)] = patches(refused)
    assert signals == {"errors": {"room": f"must be {chat.ROOM_RULE}"}}


def test_module_app_is_what_make_run_serves() -> None:
    assert isinstance(chat.app, App)


# -- live streams -----------------------------------------------------------------------


async def viewer(client: Client, path: str) -> tuple[LoadedPage, LiveStream]:
    """Load the page at ``path`` and open its live stream, as the browser does."""
    page = await client.get(path)
    stream = await page.stream().open()
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    return page, stream


@pytest.mark.anyio
async def test_new_messages_are_appended_not_re_rendered() -> None:
    with LiveServer(create_app()) as server:
        async with Client(server.url) as client:
            ada_page, ada = await viewer(client, "/rooms/general")
            _, bob = await viewer(client, "/rooms/general")
            _, elsewhere = await viewer(client, "/rooms/random")
            both_online = 'id="online-count">(2)'
            for stream in (ada, bob, elsewhere):
                first = await stream.next_event()
                assert first.data["elements"][0].startswith('<main id="lp-root">')
                # Then, in either order, the (empty) history from the room's source and,
                # in #general, the re-render of its "online" list once Bob is counted.
                loaded = False
                counted = stream is elsewhere or both_online in first.elements
                while not (loaded and counted):
                    event = await stream.next_event()
                    loaded = loaded or event.option("selector") == "#messages"
                    counted = counted or both_online in event.elements

            tab = {"X-LP-Tab": ada_page.tab}
            await send(client.http, "general", "ada", "one <i>", **tab)
            await send(client.http, "general", "ada", "two", **tab)
            for stream in (ada, bob):
                seen = await stream.until(appended(">two</span>"))
                # Nothing but the two appends: no full re-render for anyone, sender included.
                assert [(e.data.get("selector"), e.data.get("mode")) for e in seen] == [
                    (["#messages"], ["append"]),
                    (["#messages"], ["append"]),
                ]
                assert seen[0].data["elements"] == [
                    '<li id="messages-1"><span class="author">ada</span>'
                    '<span class="text">one &lt;i&gt;</span></li>'
                ]

            # The other room heard nothing of it: its next event is its own message.
            await send(client.http, "random", "bob", "elsewhere")
            assert ">elsewhere</span>" in (await elsewhere.next_event()).elements

            # Someone joining later gets the page without the messages, then the
            # history in one patch from the room's source.
            _, late = await viewer(client, "/rooms/general")
            assert texts((await late.next_event()).elements) == []
            chunk = await late.wait_for(lambda event: event.option("selector") == "#messages")
            assert chunk.option("mode") == "inner"
            assert texts(chunk.elements) == ["one <i>", "two"]


@pytest.mark.anyio
async def test_the_lobby_counts_messages_of_every_room() -> None:
    with LiveServer(create_app()) as server:
        async with Client(server.url) as client:
            _, lobby = await viewer(client, "/")
            await lobby.next_event()
            await send(client.http, "random", "ada", "hi")
            counted = await lobby.wait_for(lambda e: "(1 message)" in e.elements)
            expected = '<a href="/rooms/random">#random</a> <small>(1 message)</small>'
            assert expected in counted.elements


def online(event: DatastarEvent) -> list[str] | None:
    """The names a render of a room lists as online, or None for another event."""
    if 'id="online"' not in event.elements:
        return None
    listed = event.elements.split('<ul id="online">', 1)[1].split("</ul>", 1)[0]
    return [unescape(name) for name in re.findall(r"<li>([^<]*)</li>", listed)]


@pytest.mark.anyio
async def test_each_room_shows_who_is_online() -> None:
    with LiveServer(create_app()) as server:
        async with Client(server.url) as ada, Client(server.url) as bob:
            ada_page = await ada.get("/rooms/general")
            signals = 'datastar={"name": "Ada <3"}'  # what a reconnecting stream sends
            ada_stream = await ada.stream(ada_page.live_url or "", signals, ada_page.headers).open()
            await ada_stream.wait_for(lambda event: online(event) == ["Ada <3"])

            bob_page, bob_stream = await viewer(bob, "/rooms/general")
            await bob_stream.wait_for(lambda event: online(event) == ["Ada <3", "guest"])
            rename, headers = "/_action/rename", bob_page.headers  # an app-wide action
            renamed = await bob.http.post(rename, json={"name": " Bob "}, headers=headers)
            assert renamed.status_code == 204, renamed.text
            await ada_stream.wait_for(lambda event: online(event) == ["Ada <3", "Bob"])

            too_long = await bob.http.post(
                rename, json={"name": "b" * (MAX_NAME + 1)}, headers=headers
            )
            [(_, errors)] = patches(too_long)
            assert errors == {"errors": {"name": f"must be at most {MAX_NAME} characters"}}

            await bob_stream.close()
            await ada_stream.wait_for(lambda event: online(event) == ["Ada <3"])


# -- images ------------------------------------------------------------------------------


def png(width: int = 2, height: int = 2) -> bytes:
    """A real (grey) PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.anyio
async def test_a_message_carries_uploaded_images(client: Client) -> None:
    tab = (await client.get("/rooms/general")).tab
    headers = {"X-LP-Tab": tab}
    image = png()
    start = {"name": "dot.png", "size": len(image), "type": "image/png"}
    upload = (await client.http.post("/_upload", json=start, headers=headers)).json()["id"]
    sent = await client.http.patch(
        f"/_upload/{upload}", content=image, headers={**headers, "Upload-Offset": "0"}
    )
    assert sent.status_code == 204
    signals = {"room": "general", "name": "Ada", "text": "", "images": [upload]}
    response = await client.http.post(
        "/_action/send", json=signals, headers={**DATASTAR, **headers}
    )
    assert patches(response)[0] == ("signals", {"text": "", "images": [], "errors": {"images": ""}})
    html = await history(client, "general")
    assert '<img class="image" src="../images/1" alt="image 1">' in html
    served = await client.http.get("/images/1")
    assert served.content == image
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert (await client.http.get("/images/2")).status_code == 404


@pytest.mark.anyio
async def test_only_images_are_accepted(client: Client) -> None:
    tab = (await client.get("/rooms/general")).tab
    for name, kind in (("page.svg", "image/svg+xml"), ("notes.txt", "text/plain")):
        start = {"name": name, "size": 10, "type": kind}
        refused = await client.http.post("/_upload", json=start, headers={"X-LP-Tab": tab})
        assert refused.status_code == 415
    start = {"name": "big.png", "size": 3 * 1024 * 1024, "type": "image/png"}
    refused = await client.http.post("/_upload", json=start, headers={"X-LP-Tab": tab})
    assert refused.status_code == 413


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the tests, so pages close before the server stops.
    with LiveServer(create_app(Settings(datastar_file=str(datastar_js)))) as live:
        yield live


def test_two_people_chat(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import Page, expect

    ada, bob = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (ada, bob)]
    for page in (ada, bob):
        goto_live(page, server.url + "/rooms/general")

    def say(page: Page, name: str, text: str) -> None:
        page.fill("#name", name)
        page.fill("#text", text)
        page.press("#text", "Enter")

    say(ada, "Ada", "hello <b>Bob</b>")
    messages = bob.locator("#messages li")
    expect(messages).to_have_count(1, timeout=2000)
    expect(messages.locator(".author")).to_have_text("Ada")
    expect(messages.locator(".text")).to_have_text("hello <b>Bob</b>")  # shown, not parsed
    expect(ada.locator("#text")).to_have_value("")
    expect(ada.locator("#name")).to_have_value("Ada")

    say(bob, "Bob", "hi Ada")
    expect(ada.locator("#messages li .text")).to_have_text(["hello <b>Bob</b>", "hi Ada"])
    expect(bob.locator("#messages li .author")).to_have_text(["Ada", "Bob"])
    expect(bob.locator(".empty")).to_be_hidden()

    say(bob, "", "who am I?")
    expect(bob.locator("#name-error")).to_have_text("choose a name")
    # Bob's rename re-rendered the room (who is online) around the messages, kept.
    expect(ada.locator("#online li")).to_have_text(["Ada", "guest"])
    expect(ada.locator("#messages li")).to_have_count(2)

    # Someone joining later gets the history from the room's source.
    carol = browser_context().new_page()
    problems.append(watch_console(carol))
    goto_live(carol, server.url + "/rooms/general")
    expect(carol.locator("#messages li .text")).to_have_text(["hello <b>Bob</b>", "hi Ada"])
    expect(carol.locator(".empty")).to_be_hidden()
    assert problems == [[], [], []]


def test_an_image_goes_to_everyone_in_the_room(
    server: LiveServer, browser_context: NewContext
) -> None:
    from playwright.sync_api import FilePayload, expect

    ada, bob = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (ada, bob)]
    for page in (ada, bob):
        goto_live(page, server.url + "/rooms/general")
    fake: FilePayload = {"name": "fake.png", "mimeType": "image/png", "buffer": b"not a png!!!!"}
    ada.set_input_files("#images", files=[fake])
    expect(ada.locator("#images-error")).to_have_text("the content of fake.png is not image/png")
    dot: FilePayload = {"name": "dot.png", "mimeType": "image/png", "buffer": png(8, 8)}
    ada.set_input_files("#images", files=[dot])
    expect(ada.locator("#images")).to_have_attribute("data-lp-state", "done")
    expect(ada.locator("#images-error")).to_have_text("")
    ada.fill("#name", "Ada")
    ada.press("#text", "Enter")  # no text: a message of images needs none
    image = bob.locator("#messages li img")
    expect(image).to_have_count(1)
    expect(bob.locator("#messages li .author")).to_have_text("Ada")
    bob.wait_for_function("document.querySelector('#messages li img').naturalWidth === 8")
    # The refused upload's 415 is the only complaint.
    assert [len(p) for p in problems] == [1, 0]


def test_people_see_each_other_online(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    ada, bob = browser_context().new_page(), browser_context().new_page()
    problems = [watch_console(page) for page in (ada, bob)]
    goto_live(ada, server.url + "/rooms/general")
    ada.fill("#name", "Ada")
    ada.press("#name", "Tab")  # the change event renames her
    expect(ada.locator("#online li")).to_have_text(["Ada"])
    goto_live(bob, server.url + "/rooms/general")
    expect(bob.locator("#online li")).to_have_text(["Ada", "guest"])
    bob.fill("#name", "Bob")
    bob.press("#name", "Tab")
    expect(ada.locator("#online li")).to_have_text(["Ada", "Bob"])
    bob.close()
    expect(ada.locator("#online li")).to_have_text(["Ada"])
    expect(ada.locator("#online-count")).to_have_text("(1)")
    assert problems == [[], []]
