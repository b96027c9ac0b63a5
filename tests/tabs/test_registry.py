"""Tab ids: signed, bound to the session they were issued to, one spelling each."""

from __future__ import annotations

import base64
import re
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import App, Page, Session, SessionManager, Settings, Tab
from livepages.errors import BadRequest
from livepages.tabs import TabRegistry
from livepages.testing import Client, LoadedPage

KEY = secrets.token_bytes(32)
anyio = pytest.mark.anyio
ALICE = "a" * 64
MALLORY = "b" * 64


def registry() -> TabRegistry:
    return TabRegistry([KEY], grace=60)


def test_a_tab_id_verifies_only_with_the_session_it_was_issued_to() -> None:
    tabs = registry()
    mine = tabs.issue(ALICE)
    assert tabs.verify(mine, ALICE) == mine
    for other in (MALLORY, None, ""):
        with pytest.raises(BadRequest):
            tabs.verify(mine, other)
    sessionless = tabs.issue(None)
    assert tabs.verify(sessionless, None) == sessionless
    with pytest.raises(BadRequest):
        tabs.verify(sessionless, ALICE)


def test_only_the_canonical_spelling_verifies() -> None:
    tabs = registry()
    # Find an id whose base64url text holds "-" or "_": a lenient decoder reads
    # "+" and "/" as the same bytes, which would make it a second tab.
    tab_id = next(t for t in iter(lambda: tabs.issue(ALICE), None) if re.search("[-_]", t))
    assert tabs.verify(tab_id, ALICE) == tab_id
    respelled = tab_id.replace("-", "+").replace("_", "/")
    assert base64.b64decode(respelled) == base64.urlsafe_b64decode(tab_id)
    for bad in (respelled, tab_id + "=", " " + tab_id[1:], tab_id.lower(), tab_id[:-1] + "\n"):
        if bad != tab_id:
            with pytest.raises(BadRequest):
                tabs.verify(bad, ALICE)


def test_a_rotated_key_still_verifies_and_an_unknown_one_does_not() -> None:
    old = TabRegistry([KEY], grace=60).issue(ALICE)
    assert TabRegistry([secrets.token_bytes(32), KEY], grace=60).verify(old, ALICE) == old
    with pytest.raises(BadRequest):
        TabRegistry([secrets.token_bytes(32)], grace=60).verify(old, ALICE)


@given(st.text(max_size=64), st.one_of(st.none(), st.text(max_size=70)))
def test_any_text_is_a_tab_id_or_a_400(text: str, session: str | None) -> None:
    try:
        verified = registry().verify(text, session)
    except BadRequest as exc:
        status = exc.status_code
    else:
        assert verified == text
        status = 200
    assert status in (200, 400)


@given(st.binary(min_size=24, max_size=24))
def test_no_random_id_verifies(blob: bytes) -> None:
    with pytest.raises(BadRequest):
        registry().verify(base64.urlsafe_b64encode(blob).decode(), ALICE)


# -- one visitor's tab id in another visitor's request ----------------------------------


def secret_app() -> App:
    """A page whose render shows the visitor's private tab state."""
    app = App(settings=Settings(secret_key="k" * 32), sessions=SessionManager())

    @app.page("/inbox")
    class Inbox(Page):
        def render(self, tab: Tab, session: Session[dict[str, str]]) -> str:
            draft = tab.state.get("draft", "")
            return f'<p id="who">{session.id}</p><p id="draft">{draft}</p>'

    return app


async def open_inbox(app: App, draft: str) -> tuple[Client, LoadedPage]:
    client = Client(app)
    await client.__aenter__()
    page = await client.get("/inbox")
    app.live.tabs.get(page.tab).state["draft"] = draft
    return client, page


@anyio
async def test_another_sessions_tab_id_is_refused_on_a_stream() -> None:
    app = secret_app()
    victim, victims_page = await open_inbox(app, "my private draft")
    mallory, mallorys_page = await open_inbox(app, "")
    try:
        # Mallory connects first, with the victim's tab id and her own cookie.
        async with mallorys_page.stream({"X-LP-Tab": victims_page.tab}) as stolen:
            event = await stolen.next_event()
            assert "window.location.reload()" in event.elements
            assert "my private draft" not in event.elements
            # The victim then sees her own render, not one made for Mallory.
            async with victims_page.stream() as own:
                mine = (await own.next_event()).elements
                assert "my private draft" in mine
                assert mallorys_page.html.split('id="who">')[1][:64] not in mine
    finally:
        await victim.__aexit__(None, None, None)
        await mallory.__aexit__(None, None, None)


@anyio
async def test_another_sessions_tab_id_cannot_reach_tab_state_in_an_action() -> None:
    app = secret_app()

    @app.action
    async def peek(tab: Tab) -> None:
        raise AssertionError(f"reached {tab.state}")

    victim, victims_page = await open_inbox(app, "my private draft")
    mallory, mallorys_page = await open_inbox(app, "")
    try:
        response = await mallory.http.post(
            "/_action/peek",
            headers={
                "X-LP-Tab": victims_page.tab,
                "X-CSRF-Token": mallorys_page.csrf,
                "Datastar-Request": "true",
            },
        )
        assert response.status_code == 200
        assert '"status":400' in response.text
        assert "my private draft" not in response.text
    finally:
        await victim.__aexit__(None, None, None)
        await mallory.__aexit__(None, None, None)
