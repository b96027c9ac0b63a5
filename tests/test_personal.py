"""Personal views: a page that shows each viewer's own name, rendered once per change."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from markupsafe import escape

from livepages import App, Page, Session, Settings, Tab, Templates, action
from livepages.broker.memory import MemoryBroker
from livepages.events import Event, on
from livepages.hooks import Rendered
from livepages.personal import PersonalView
from livepages.sessions.session import SessionManager
from livepages.testing import Client, LiveStream, LoadedPage

pytestmark = pytest.mark.anyio


@dataclass
class Profile:
    name: str = ""
    admin: bool = False
    tags: list[str] = field(default_factory=list)


@dataclass
class Entry:
    name: str
    admin: bool = False


@dataclass
class Changed(Event, subject="board"):
    pass


HEADER = """
<header>{% if not session.data.name %}<a href="/in">Sign in</a>
{% else %}Hello, <b id="name">{{ session.data.name }}</b>{% endif %}
{% if session.data.admin %}<em>admin</em>{% endif %}</header>
<p id="count">{{ count }}</p>
"""


def make_app(template: str = HEADER, **settings: Any) -> tuple[App, dict[str, int], list[str]]:
    """An app whose board greets each signed-in viewer; the counter is shared."""
    state = {"count": 0}
    renders: list[str] = []
    templates = Templates()
    app = App(settings=Settings(heartbeat=0, **settings), sessions=SessionManager(sign_in_url="/"))
    app.hooks.add(Rendered, lambda event: renders.append(event.page))

    @app.page("/")
    class Board(Page):
        def render(self, session: Session[Profile]) -> str:
            return templates.render_string(template, session=session, count=state["count"])

        @action
        async def enter(self, entry: Entry, session: Session[Profile]) -> None:
            await session.sign_in(entry.name, Profile(name=entry.name, admin=entry.admin))

        @action
        async def rename(self, entry: Entry, session: Session[Profile]) -> None:
            session.data.name = entry.name
            await session.save()

        @on(Changed)
        def changed(self) -> None:
            """Re-render."""

    async def change() -> None:
        state["count"] += 1
        await app.publish(Changed())

    app.state.change = change
    return app, state, renders


async def signed_in(client: Client, name: str, admin: bool = False) -> LoadedPage:
    page = await client.get("/")
    assert (await page.action("enter", {"name": name, "admin": admin})).is_success
    return await client.get("/")


async def shown(stream: LiveStream) -> str:
    return (await stream.next_event()).elements


async def test_two_signed_in_users_each_see_their_own_name_after_a_shared_change() -> None:
    app, _, renders = make_app()
    async with Client(app) as ada_client, Client(app) as bob_client:
        ada = await signed_in(ada_client, "Ada <3")
        bob = await signed_in(bob_client, "Bob", admin=True)
        async with ada.stream() as one, bob.stream() as two:
            assert "Ada &lt;3" in await shown(one)
            assert "Bob" in await shown(two)
            (view,) = app.live.views.values()  # one view for both
            assert isinstance(view, PersonalView)
            renders.clear()
            await app.state.change()
            first, second = await shown(one), await shown(two)
            assert '<b id="name">Ada &lt;3</b>' in first
            assert '<p id="count">1</p>' in first
            assert "<em>admin</em>" not in first
            assert '<b id="name">Bob</b>' in second
            assert "<em>admin</em>" in second
            assert "Ada" not in second
            assert "Bob" not in first
            # One render per group (admin or not), not per viewer.
            assert len(renders) == 2


async def test_the_same_output_as_a_render_per_viewer() -> None:
    shared, _, _ = make_app()
    own, _, _ = make_app(personal_holes=False)
    outputs = []
    for app in (shared, own):
        async with Client(app) as a, Client(app) as b, Client(app) as guest_client:
            pages = [await signed_in(a, "Ann & Co"), await signed_in(b, '"Zed"')]
            pages.append(await guest_client.get("/"))
            streams = [page.stream() for page in pages]
            for stream in streams:
                await stream.open()
            await app.state.change()
            got = []
            for stream in streams:
                await stream.next_event()
                got.append(await shown(stream))
                await stream.close()
            outputs.append(got)
        assert not isinstance(next(iter(own.live.views.values()), None), PersonalView)
    assert outputs[0] == outputs[1]
    assert "Sign in" in outputs[0][2]


async def test_a_change_to_one_users_data_reaches_only_that_users_streams() -> None:
    app, _, _ = make_app()
    async with Client(app) as ada_client, Client(app) as bob_client:
        ada = await signed_in(ada_client, "Ada")
        bob = await signed_in(bob_client, "Bob")
        other_tab = await ada_client.get("/")  # Ada's second tab
        async with ada.stream() as one, bob.stream() as two, other_tab.stream() as three:
            for stream in (one, two, three):
                await stream.next_event()
            assert (await ada.action("rename", {"name": "Ada L."})).is_success
            assert '<b id="name">Ada L.</b>' in await shown(one)
            assert '<b id="name">Ada L.</b>' in await shown(three)
            assert await two.drain() == []  # Bob's page did not change


async def test_an_unchanged_render_sends_nothing() -> None:
    app, _state, renders = make_app()
    async with Client(app) as client:
        page = await signed_in(client, "Ada")
        async with page.stream() as stream:
            await stream.next_event()
            renders.clear()
            await app.publish(Changed())  # nothing changed
            await asyncio.sleep(0.05)
            assert renders == ["Board"]
            assert await stream.drain() == []
            await app.state.change()
            assert '<p id="count">1</p>' in await shown(stream)


async def test_a_viewer_joining_during_a_change_gets_a_consistent_page() -> None:
    app, state, _ = make_app()
    async with Client(app) as ada_client, Client(app) as bob_client:
        ada = await signed_in(ada_client, "Ada")
        async with ada.stream() as one:
            await one.next_event()
            bob = await signed_in(bob_client, "Bob")
            state["count"] = 7
            publish = asyncio.create_task(app.publish(Changed()))
            async with bob.stream() as two:
                await publish
                events = [await shown(two)]
                events += [event.elements for event in await two.drain()]
                assert all('<b id="name">Bob</b>' in html for html in events)
                assert '<p id="count">7</p>' in events[-1]
            assert '<b id="name">Ada</b><' in await shown(one)


@pytest.mark.parametrize(
    ("template", "varies"),
    [
        ("<p>{{ session.data.name|upper }}</p>", "session.data.name"),
        ("<p>{{ session.data.name[:1] }}</p>", "session.data.name"),
        ("<p>{% if session.data.name == 'Ada' %}me{% endif %}{{ session.data.name }}</p>", None),
        ("<p>{{ session.data.name|length }}</p>", "session.data.name"),
        # escape(a ~ b) is escape(a) ~ escape(b): a hole still
        ("<p>{{ session.data.name ~ '!' }}</p>", None),
        ("<p>{{ session.data.name is none }}-{{ session.user_id }}</p>", None),
        ("<p>{{ session.data.nope|default('x') }} {{ session.data.name }}</p>", None),
    ],
)
async def test_whatever_a_render_does_with_a_value_each_viewer_sees_its_own(
    template: str, varies: str | None
) -> None:
    template += "<i>{{ count }}</i>"
    app, _, _ = make_app(template)
    own, _, _ = make_app(template, personal_holes=False)
    for which in (app, own):
        async with Client(which) as a, Client(which) as b:
            pages = [await signed_in(a, "Ada"), await signed_in(b, "Bobby")]
            async with pages[0].stream() as one, pages[1].stream() as two:
                await one.next_event(), await two.next_event()
                await which.state.change()
                got = (await shown(one), await shown(two))
        if which is app:
            shared = got
    assert shared == got
    assert shared[0] != shared[1]
    if varies is not None:
        learned = next(iter(app.live.page_state.values()))
        assert varies in {str(read) for read in learned.fixed}


async def test_tab_state_printed_in_a_page_is_filled_per_tab() -> None:
    app = App(settings=Settings(heartbeat=0))
    state = {"count": 0}

    @app.page("/")
    class Search(Page):
        def render(self, tab: Tab) -> str:
            query = Templates().render_string("<i>{{ q }}</i>", q=tab.state.get("q", "none"))
            return f"{query}<p>{state['count']}</p>"

        @action
        def search(self, tab: Tab, entry: Entry) -> None:
            tab.state["q"] = entry.name

        @on(Changed)
        def changed(self) -> None:
            """Re-render."""

    async with Client(app) as client:
        first, second = await client.get("/"), await client.get("/")
        async with first.stream() as one, second.stream() as two:
            assert "<i>none</i>" in await shown(one)
            await two.next_event()
            assert (await first.action("search", {"name": "red <shoes>"})).is_success
            assert "<i>red &lt;shoes&gt;</i>" in await shown(one)
            assert await two.drain() == []
            state["count"] = 3
            await app.publish(Changed())
            assert "<i>red &lt;shoes&gt;</i><p>3</p>" in await shown(one)
            assert "<i>none</i><p>3</p>" in await shown(two)
        assert isinstance(next(iter(app.live.views.values()), None), type(None))


async def test_a_use_that_a_stand_in_cannot_notice_is_caught_by_the_check() -> None:
    # C code reading text (``re``) is not an operation a stand-in sees: the shared
    # render would find no match for anyone; the check against a real render of the
    # group's first viewer makes the name a grouping value.
    app = App(settings=Settings(heartbeat=0), sessions=SessionManager(sign_in_url="/"))
    state = {"count": 0}

    @app.page("/")
    class Board(Page):
        def render(self, session: Session[Profile]) -> str:
            name = session.data.name
            badge = "A-team" if re.match("A", name) else "other"
            return f"<p>{escape(name)}: {badge}</p><i>{state['count']}</i>"

        @action
        async def enter(self, entry: Entry, session: Session[Profile]) -> None:
            await session.sign_in(entry.name, Profile(name=entry.name))

        @on(Changed)
        def changed(self) -> None:
            """Re-render."""

    async with Client(app) as a, Client(app) as b:
        ada, bob = await signed_in(a, "Ada"), await signed_in(b, "Bob")
        async with ada.stream() as one, bob.stream() as two:
            assert "<p>Ada: A-team</p>" in await shown(one)
            assert "<p>Bob: other</p>" in await shown(two)
            state["count"] = 1
            await app.publish(Changed())
            assert "<p>Ada: A-team</p><i>1</i>" in await shown(one)
            assert "<p>Bob: other</p><i>1</i>" in await shown(two)
    learned = next(iter(app.live.page_state.values()))
    assert "session.data.name" in {str(read) for read in learned.fixed}


async def test_a_value_that_splits_viewers_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    app, _, _ = make_app("<p>{{ session.data.name|upper }}</p><i>{{ count }}</i>")
    with caplog.at_level(logging.INFO, logger="livepages.personal"):
        async with Client(app) as a, Client(app) as b:
            pages = [await signed_in(a, "Ada"), await signed_in(b, "Bob")]
            async with pages[0].stream() as one, pages[1].stream() as two:
                await one.next_event(), await two.next_event()
                await app.state.change()
                assert "ADA" in await shown(one)
                assert "BOB" in await shown(two)
    said = [r.getMessage() for r in caplog.records if r.name == "livepages.personal"]
    assert said == [
        "Board varies by session.data.name: viewers with different values get different "
        "renders (print it, or move it out of the render, to share one)"
    ]


async def test_after_a_reconnect_every_viewer_gets_its_values_read_again() -> None:
    # Messages may have been lost while the broker was away: a tab's own refresh
    # among them. After the reconnect each viewer shows its tab's state as it is.
    broker = MemoryBroker()
    app = App(broker=broker, settings=Settings(heartbeat=0))

    @app.page("/")
    class Search(Page):
        def render(self, tab: Tab) -> str:
            return Templates().render_string("<i>{{ q }}</i>", q=tab.state.get("q", "none"))

    async with Client(app) as client:
        first, second = await client.get("/"), await client.get("/")
        async with first.stream() as one, second.stream() as two:
            assert "<i>none</i>" in await shown(one)
            assert "<i>none</i>" in await shown(two)
            tabs = [c.tab for c in app.live.connections if c.tab is not None]
            for tab, text in zip(tabs, ("red", "blue"), strict=True):
                tab.state["q"] = text  # changed where no refresh was heard
            broker.simulate_reconnect()
            got = {await shown(one), await shown(two)}
            assert got == {
                '<main id="lp-root"><i>red</i></main>',
                '<main id="lp-root"><i>blue</i></main>',
            }


async def test_a_tabs_own_list_changed_in_place_renders_its_group_again_alone() -> None:
    # A list in the tab's state cannot be compared: each tab is a group of its own,
    # rendered again after its own action (and only its own).
    app = App(settings=Settings(heartbeat=0))
    renders: list[str] = []
    app.hooks.add(Rendered, lambda event: renders.append(event.page))

    @app.page("/")
    class Basket(Page):
        def render(self, tab: Tab) -> str:
            items = "".join(f"<li>{escape(item)}</li>" for item in tab.state.get("items", []))
            return f"<ul>{items}</ul><p>{tab.state.get('count', 0)}</p>"

        @action
        def add(self, tab: Tab, entry: Entry) -> None:
            tab.state.setdefault("items", []).append(entry.name)
            tab.state["count"] = tab.state.get("count", 0) + 1

    async with Client(app) as client:
        first, second = await client.get("/"), await client.get("/")
        async with first.stream() as one, second.stream() as two:
            await one.next_event(), await two.next_event()
            renders.clear()
            assert (await first.action("add", {"name": "<apples>"})).is_success
            assert "<ul><li>&lt;apples&gt;</li></ul><p>1</p>" in await shown(one)
            assert (await first.action("add", {"name": "pears"})).is_success
            assert "<li>pears</li></ul><p>2</p>" in await shown(one)
            assert await two.drain() == []
            assert renders == ["Basket", "Basket"]  # the first tab's group, twice
