"""Unexpected errors: logged once with the request line; described in the page in debug."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import pytest

from livepages import App, Event, Page, Settings, action, on
from livepages.reports import GENERIC_MESSAGE, Reporter, describe
from livepages.testing import Client, LiveServer


@dataclass
class Broke(Event, subject="broke"):
    pass


def make_app(debug: bool = False) -> App:
    app = App(settings=Settings(secret_key="k", debug=debug))
    state = {"fail": False}

    @app.page("/boom")
    @on(Broke)
    class Boom(Page):
        def render(self) -> str:
            if state["fail"]:
                raise RuntimeError("the render broke")
            return "<p>fine</p>"

        @action
        async def act(self) -> None:
            raise ValueError("the action broke")

        @action
        async def break_render(self) -> None:
            state["fail"] = True
            await app.publish(Broke())

    @app.page("/fails")
    class Fails(Page):
        live = False

        def render(self) -> str:
            raise KeyError("missing")

    return app


def raise_here() -> None:
    raise ZeroDivisionError("no")


def test_describe_names_the_type_the_message_and_the_apps_own_frame() -> None:
    try:
        raise_here()
    except ZeroDivisionError as exc:
        text = describe(exc)
    assert text.startswith("ZeroDivisionError: no (test_reports.py:")
    assert text.endswith("in raise_here)")
    assert Reporter(debug=False).message(ValueError("x")) == GENERIC_MESSAGE
    assert Reporter(debug=True).message(ValueError("x")) == "ValueError: x"


def errors_logged(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR
        and (text in r.getMessage() or (r.exc_info and text in str(r.exc_info[1])))
    ]


def test_each_unhandled_error_is_logged_once_with_its_request_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = LiveServer(make_app())  # configures uvicorn's logging
    # uvicorn's loggers do not propagate to the root logger: listen to them directly.
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO), server:
            exercise(server)
    finally:
        server_log.removeHandler(caplog.handler)
    [render] = errors_logged(caplog, "missing")
    assert render.getMessage() == "unhandled error on GET /fails"
    [failed] = errors_logged(caplog, "the action broke")
    assert failed.getMessage() == "unhandled error on POST /boom/_action/act"


def exercise(server: LiveServer) -> None:
    """A page whose render fails, and a Datastar action that fails."""
    page = httpx.get(server.url + "/fails")
    assert page.status_code == 500
    assert "Traceback" not in page.text
    action = httpx.post(server.url + "/boom/_action/act", headers={"Datastar-Request": "true"})
    assert action.status_code == 200
    assert GENERIC_MESSAGE in action.text


@pytest.mark.anyio
async def test_in_debug_a_failing_action_and_live_render_say_what_failed() -> None:
    async with Client(make_app(debug=True)) as client:
        page = await client.get("/boom")
        response = await page.action("act")
        message = response.text.split('"message":"')[1].split('"')[0]
        assert message.startswith("ValueError: the action broke (test_reports.py:")
        assert message.endswith("in act)")
        async with page.stream() as stream:
            await stream.next_event()
            await page.action("break_render")
            event = await stream.next_event()
            assert event.signals["_error"]["message"].startswith(
                "RuntimeError: the render broke (test_reports.py:"
            )


@pytest.mark.anyio
async def test_in_production_the_page_is_told_only_that_something_failed() -> None:
    async with Client(make_app()) as client:
        page = await client.get("/boom")
        response = await page.action("act")
        assert f'"message":"{GENERIC_MESSAGE}"' in response.text
        async with page.stream() as stream:
            await stream.next_event()
            await page.action("break_render")
            event = await stream.next_event()
            assert event.signals["_error"]["message"] == "This page failed to update."
