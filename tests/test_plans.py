"""Page plans: worked out once at registration, typed, with the live scope decided."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.requests import Request

from livepages import TAB, USER, App, Event, Page, Session, SessionManager, Tab, action, on
from livepages.plans import Hook, LiveScope


@dataclass
class Moved(Event, subject="moved.{who}"):
    who: str


def register(app: App, cls: type[Page]) -> None:
    app.page("/" + cls.__name__.lower())(cls)


def test_the_live_scope_follows_what_the_render_and_bindings_ask_for() -> None:
    app = App(sessions=SessionManager())

    class Shared(Page):
        def render(self) -> str:
            return ""

    class PerSession(Page):
        def render(self, session: Session[dict[str, str]]) -> str:
            return ""

    class PerUser(Page):
        def render(self) -> str:
            return ""

        @on(Moved, who=USER)
        async def moved(self, event: Moved) -> None: ...

    class PerTab(Page):
        def render(self, tab: Tab) -> str:
            return ""

    class PerRequest(Page):
        def render(self, request: Request) -> str:
            return ""

    @on(Moved, who=TAB)
    class PerTabBinding(Page):
        def render(self) -> str:
            return ""

    expected = {
        Shared: LiveScope.SHARED,
        PerSession: LiveScope.SESSION,
        PerUser: LiveScope.SESSION,
        PerTab: LiveScope.TAB,
        PerRequest: LiveScope.TAB,
        PerTabBinding: LiveScope.TAB,
    }
    for cls in expected:
        register(app, cls)
    assert {cls: app.plan_of(cls).scope for cls in expected} == expected


def test_hooks_and_actions_are_planned_by_name() -> None:
    app = App()

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return ""

        def opened(self, tab: Tab) -> None: ...

        @action
        async def save(self) -> None: ...

    plan = app.plan_of(Home)
    assert set(plan.hooks) == {Hook.OPENED}
    assert set(plan.actions) == {"save"}
    assert plan.cls is Home
    assert plan.spec.path == "/"


def test_a_page_without_render_fails_when_registered() -> None:
    class Nothing(Page):
        pass

    with pytest.raises(TypeError, match="needs a render"):
        App().page("/")(Nothing)
