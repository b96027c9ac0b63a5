"""Presence in pages, in one process: who joins, who leaves, names, renders, events.

Driven in process with ``livepages.testing.Client``; each ``Client`` is one browser
(its own cookies). Without sessions a member is a tab; with sessions it is the
session, or the signed-in user.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.requests import Request

from livepages import (
    App,
    Member,
    Members,
    Page,
    PresenceChange,
    PresenceEvent,
    Session,
    Settings,
    action,
)
from livepages.presence import GUEST
from livepages.testing import Client, DatastarEvent, LiveStream

pytestmark = pytest.mark.anyio

SECRET = "presence-tests"


@dataclass
class Nick:
    """Signals: the name a visitor typed."""

    name: str = ""


@dataclass
class Profile:
    """Session data: the name a visitor chose."""

    name: str = ""


def make_app(*, sessions: bool = False, secret: str = SECRET) -> App:
    app = App(settings=Settings(secret_key=secret), sessions=sessions or None)

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str
        presence = "room.{room}"

        def render(self, online: Members) -> str:
            names = ",".join(member.name for member in online)
            return f'<p id="online">{names}</p><p id="topic">{online.topic}</p>'

        def presence_name(self, nick: Nick) -> str:
            return nick.name  # the name signal the stream's request carries

        @action
        async def rename(self, nick: Nick, request: Request) -> None:
            await app.presence.rename(request, nick.name)

    @app.page("/quiet/{room}")
    class Quiet(Page):
        """Counted on the same topic as Room, but its render shows nobody."""

        room: str
        presence = "room.{room}"

        def render(self) -> str:
            return "<p>quiet</p>"

    @app.page("/plain")
    class Plain(Page):
        def render(self) -> str:
            return "<p>plain</p>"

    if sessions:

        @app.page("/profiles/{room}")
        class Profiles(Page):
            room: str
            presence = "room.{room}"

            def render(self, online: Members) -> str:
                return f'<p id="online">{",".join(m.name for m in online)}</p>'

            def presence_name(self, session: Session[Profile]) -> str:
                return session.data.name

            @action
            async def sign_in(self, nick: Nick, session: Session[Profile]) -> None:
                await session.sign_in(nick.name)

    return app


def online(event: DatastarEvent) -> list[str] | None:
    """The names a render of Room lists, or None for another event."""
    match = re.search(r'<p id="online">([^<]*)</p>', event.elements)
    if match is None:
        return None
    return match.group(1).split(",") if match.group(1) else []


async def until_online(stream: LiveStream, names: list[str]) -> None:
    await stream.wait_for(lambda event: online(event) == names)


async def enter(client: Client, path: str, name: str = "") -> LiveStream:
    """Load ``path`` and open its stream, the ``name`` signal in its query as Datastar's."""
    page = await client.get(path)
    query = "datastar=" + json.dumps({"name": name}) if name else ""
    return await client.stream(page.live_url or "", query, page.headers).open()


async def test_visitors_see_each_other_join_and_leave() -> None:
    app = make_app()
    async with Client(app) as ada, Client(app) as bob:
        ada_stream = await enter(ada, "/rooms/lobby", "Ada")
        await until_online(ada_stream, ["Ada"])
        bob_stream = await enter(bob, "/rooms/lobby", "Bob")
        await until_online(bob_stream, ["Ada", "Bob"])  # Bob's first render lists him too
        await until_online(ada_stream, ["Ada", "Bob"])
        await bob_stream.close()
        await until_online(ada_stream, ["Ada"])
        assert [m.name for m in app.presence.members("room.lobby")] == ["Ada"]


async def test_only_the_topics_views_re_render() -> None:
    app = make_app()
    async with Client(app) as ada, Client(app) as bob:
        elsewhere = await enter(ada, "/rooms/kitchen", "Ada")
        await until_online(elsewhere, ["Ada"])
        await enter(bob, "/rooms/lobby", "Bob")
        assert await elsewhere.drain() == []
        assert [m.name for m in app.presence.members("room.kitchen")] == ["Ada"]


async def test_a_page_without_members_in_its_render_counts_but_does_not_re_render() -> None:
    app = make_app()
    async with Client(app) as ada, Client(app) as bob:
        quiet = await enter(ada, "/quiet/lobby")
        await quiet.next_event()  # its first render
        watcher = await enter(bob, "/rooms/lobby", "Bob")
        await until_online(watcher, ["Bob", GUEST])  # Ada is on the topic, from Quiet
        assert await quiet.drain() == []


async def test_several_streams_of_one_member_count_once() -> None:
    app = make_app(sessions=True)  # the member is the session: both tabs are one
    events: list[PresenceEvent] = []
    app.presence.listen(events.append)
    async with Client(app) as ada, Client(app) as bob:
        first = await enter(ada, "/rooms/lobby", "Ada")
        second = await enter(ada, "/rooms/lobby", "Ada")
        watcher = await enter(bob, "/rooms/lobby", "Bob")
        await until_online(watcher, ["Ada", "Bob"])
        await first.close()
        assert await watcher.drain() == []  # Ada is still there, in her second tab
        await second.close()
        await until_online(watcher, ["Bob"])
    ada_events = [(e.change, e.member.name) for e in events if e.member.name == "Ada"]
    assert ada_events == [(PresenceChange.JOINED, "Ada"), (PresenceChange.LEFT, "Ada")]


async def test_without_sessions_each_tab_is_a_member() -> None:
    app = make_app()
    async with Client(app) as ada:
        await enter(ada, "/rooms/lobby", "Ada")
        stream = await enter(ada, "/rooms/lobby", "Ada")
        await until_online(stream, ["Ada", "Ada"])
        ids = [m.id for m in app.presence.members("room.lobby")]
        assert len(set(ids)) == 2
        assert all(id.startswith("t") for id in ids)


async def test_listeners_get_typed_events() -> None:
    app = make_app()
    events: list[PresenceEvent] = []

    @app.presence.listen
    def heard(event: PresenceEvent) -> None:
        events.append(event)

    async with Client(app) as ada:
        stream = await enter(ada, "/rooms/lobby", "Ada")
        await until_online(stream, ["Ada"])
        [member] = app.presence.members("room.lobby")
        await stream.close()
    assert events == [
        PresenceEvent("room.lobby", member, PresenceChange.JOINED),
        PresenceEvent("room.lobby", member, PresenceChange.LEFT),
    ]
    app.presence.unlisten(heard)
    assert isinstance(member, Member)
    assert member.user_id is None


async def test_a_failing_listener_is_logged_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app()
    heard: list[PresenceEvent] = []

    @app.presence.listen
    def broken(event: PresenceEvent) -> None:
        raise RuntimeError("listener broke")

    app.presence.listen(heard.append)
    async with Client(app) as ada:
        stream = await enter(ada, "/rooms/lobby", "Ada")
        await until_online(stream, ["Ada"])
    assert [e.change for e in heard] == [PresenceChange.JOINED, PresenceChange.LEFT]
    assert "a PresenceEvent hook failed" in caplog.text


async def test_a_visitor_renamed_by_an_action_is_renamed_for_everyone() -> None:
    app = make_app()
    async with Client(app) as ada, Client(app) as bob:
        ada_page = await ada.get("/rooms/lobby")
        ada_stream = await ada.stream(
            ada_page.live_url or "", 'datastar={"name":"Ada"}', ada_page.headers
        ).open()
        watcher = await enter(bob, "/rooms/lobby", "Bob")
        await until_online(watcher, ["Ada", "Bob"])
        response = await ada_page.action("rename", {"name": "  Ada   Lovelace "})
        assert response.status_code == 200
        await until_online(watcher, ["Ada Lovelace", "Bob"])
        await until_online(ada_stream, ["Ada Lovelace", "Bob"])


async def test_renaming_needs_to_know_who_asks() -> None:
    app = make_app()
    async with Client(app) as ada:
        page = await ada.get("/rooms/lobby")
        headers = {"X-LP-Tab": ""}
        refused = await page.action("rename", {"name": "x"}, headers=headers)
        assert refused.status_code == 200  # a Datastar answer carrying the error
        assert '"status":400' in refused.text


async def test_a_page_without_a_name_method_names_guests_guest() -> None:
    app = make_app()
    async with Client(app) as ada, Client(app) as bob:
        await enter(ada, "/quiet/lobby")
        watcher = await enter(bob, "/rooms/lobby")  # no name signal: Room says ""
        await until_online(watcher, [GUEST, GUEST])


async def test_session_members_are_named_by_the_session_and_users_by_their_id() -> None:
    app = make_app(sessions=True)
    async with Client(app) as ada, Client(app) as bob:
        watcher = await enter(bob, "/profiles/lobby")
        await until_online(watcher, [GUEST])
        page = await ada.get("/profiles/lobby")
        assert (await page.action("sign_in", {"name": "ada"})).status_code == 200
        await enter(ada, "/quiet/lobby")  # Quiet has no presence_name: the user id names her
        await until_online(watcher, ["ada", GUEST])
        [user] = [m for m in app.presence.members("room.lobby") if m.user_id]
        assert user.user_id == "ada"
        assert user.id.startswith("u")
        assert "ada" not in user.id


async def test_member_ids_are_keyed_hashes_shared_by_apps_with_one_secret() -> None:
    ids: list[set[str]] = []
    for secret in (SECRET, SECRET, "another secret"):
        app = make_app(sessions=True, secret=secret)
        async with Client(app) as client:
            client.http.cookies.clear()
            page = await client.get("/profiles/lobby")
            assert (await page.action("sign_in", {"name": "grace"})).status_code == 200
            await enter(client, "/quiet/lobby")
            ids.append({m.id for m in app.presence.members("room.lobby")})
    assert ids[0] == ids[1]
    assert ids[0] != ids[2]


async def test_field_values_are_escaped_in_topics() -> None:
    app = make_app()
    async with Client(app) as ada:
        stream = await enter(ada, "/rooms/a.b", "Ada")
        event = await stream.wait_for(lambda e: online(e) == ["Ada"])
        assert '<p id="topic">room.a%2Eb</p>' in event.elements
        assert app.presence.members("room.a.b").members == ()


async def test_a_failing_name_method_gives_the_default_name_and_is_reported() -> None:
    app = make_app()
    reported: list[BaseException] = []
    app.on_error(lambda request, exc: reported.append(exc))

    @app.page("/broken/{room}")
    class Broken(Page):
        room: str
        presence = "room.{room}"

        def render(self, online: Members) -> str:
            return f'<p id="online">{",".join(m.name for m in online)}</p>'

        def presence_name(self) -> Any:
            return 42

    async with Client(app) as ada:
        stream = await enter(ada, "/broken/lobby")
        await until_online(stream, [GUEST])
    assert [str(exc) for exc in reported] == ["presence_name() returned 42, not a str"]


async def test_pages_are_checked_at_registration() -> None:
    app = make_app()
    with pytest.raises(TypeError, match="takes Members but the page has no presence topic"):

        @app.page("/nobody")
        class Nobody(Page):
            def render(self, online: Members) -> str:
                return ""

    with pytest.raises(TypeError, match=r"\{nope\} is not a field of the page"):

        @app.page("/unknown/{room}")
        class Unknown(Page):
            room: str
            presence = "room.{nope}"

            def render(self) -> str:
                return ""

    with pytest.raises(TypeError, match="without a conversion or spec"):

        @app.page("/spec/{room}")
        class Spec(Page):
            room: str
            presence = "room.{room!r}"

            def render(self) -> str:
                return ""

    with pytest.raises(TypeError, match="is not live: it has no streams to count present"):

        @app.page("/static/{room}")
        class Static(Page):
            room: str
            presence = "room.{room}"
            live = False

            def render(self) -> str:
                return ""

    with pytest.raises(TypeError, match="must be a non-empty str"):

        @app.page("/empty")
        class Empty(Page):
            presence = ""

            def render(self) -> str:
                return ""


async def test_members_of_a_topic_nobody_is_on_are_empty() -> None:
    app = make_app()
    async with Client(app):
        members = app.presence.members("room.nowhere")
        assert (members.topic, list(members), len(members)) == ("room.nowhere", [], 0)
