"""Registration errors name what is at fault; under ``collecting()`` they are recorded."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from livepages import App, Page, action
from livepages.registration import Kind, RegistrationError, collecting


class Database:
    """Nothing livepages can inject."""


def test_an_uninjectable_parameter_names_its_function() -> None:
    app = App()

    class Orders(Page):
        def render(self, db: Database) -> str:
            return ""

    with pytest.raises(RegistrationError, match="parameter 'db'") as caught:
        app.page("/orders")(Orders)
    assert caught.value.kind is Kind.INJECTION
    assert caught.value.target is Orders.render
    assert isinstance(caught.value, TypeError)  # as before: a TypeError at registration


def test_a_parameter_without_a_converter_names_its_class_and_field() -> None:
    app = App()

    class Tagged(Page):
        tags: list[str]

        def render(self) -> str:
            return ""

    with pytest.raises(
        RegistrationError, match="Tagged: parameter 'tags': no URL converter"
    ) as caught:
        app.page("/tags/{tags}")(Tagged)
    error = caught.value
    assert (error.kind, error.target, error.member) == (Kind.PARAMETER, Tagged, "tags")


def test_collecting_records_failures_and_registers_the_rest() -> None:
    app = App()

    async def export(db: Database) -> None:
        pass

    with collecting() as rejected:

        @app.page("/broken")
        class Broken(Page):
            def render(self, db: Database) -> str:
                return ""

        @app.page("no-slash")
        class Pathless(Page):
            def render(self) -> str:
                return ""

        app.action(export)

        @app.page("/")
        class Home(Page):
            def render(self, request: Request) -> str:
                return ""

            @action
            async def save(self) -> None:
                pass

    assert [(r.kind, r.target) for r in rejected] == [
        (Kind.INJECTION, Broken.render),
        (Kind.DEFINITION, Pathless),  # a ValueError, recorded with what was registered
        (Kind.INJECTION, export),
    ]
    assert isinstance(rejected[1].error, ValueError)
    assert [plan.cls for plan in app.pages] == [Home]
    assert "export" not in app.dispatcher.actions
    # Outside the block, registration raises again.
    with pytest.raises(RegistrationError):
        app.action(export)
