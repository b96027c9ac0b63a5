"""The sign-up example: over HTTP (httpx, in process) and in a real Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from examples.signup.app import FORM_FIELDS, create_app
from livepages import App, Settings
from livepages.testing import DatastarEvent, LiveServer, goto_live, parse_events, watch_console

if TYPE_CHECKING:
    from tests.fixtures.browser import NewContext

DATASTAR = {"datastar-request": "true"}
VALID = {"name": "Ada Lovelace", "email": "ada@example.org", "age": "36"}


class _Attributes(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.found: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if values.get("id") == self.element_id:
            self.found = values


def attributes(html: str, element_id: str) -> dict[str, str]:
    """The attributes (unescaped) of the element with this id in ``html``."""
    parser = _Attributes(element_id)
    parser.feed(html)
    assert parser.found is not None, f"no element #{element_id}"
    return parser.found


def only_event(response: httpx.Response) -> DatastarEvent:
    """The one event of a Datastar response."""
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    [event], rest = parse_events(response.text)
    assert rest == ""
    return event


def errors_patch(response: httpx.Response) -> dict[str, str]:
    """The ``errors`` signal patched by a Datastar response (its only event)."""
    event = only_event(response)
    assert event.type == "datastar-patch-signals"
    assert list(event.data) == ["signals"]
    [line] = event.data["signals"]
    signals = json.loads(line)
    assert list(signals) == ["errors"]
    errors: dict[str, str] = signals["errors"]
    return errors


def redirect_target(response: httpx.Response) -> str:
    """The URL a Datastar redirect (a script patch) sends the browser to."""
    event = only_event(response)
    assert event.type == "datastar-patch-elements"
    script = event.elements
    start = script.index("window.location.href = ") + len("window.location.href = ")
    target, _ = json.JSONDecoder().raw_decode(script[start:])
    assert isinstance(target, str)
    return target


@pytest.fixture
def app() -> App:
    return create_app()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(app) as c:
        yield c


def _client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def register(
    client: httpx.AsyncClient, form: dict[str, str], prefix: str = ""
) -> httpx.Response:
    return await client.post(f"{prefix}/_action/register", data=form, headers=DATASTAR)


# -- the page ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_page_renders_the_form_wired_to_the_action(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert "<title>Sign up</title>" in response.text
    form = attributes(response.text, "signup")
    assert "novalidate" in form
    submit = form["data-on:submit"]
    assert submit.startswith("@post('/_action/register', {")
    assert "'X-CSRF-Token': $_csrf" in submit
    assert "contentType: 'form'" in submit
    for field in FORM_FIELDS:
        assert attributes(response.text, field)["name"] == field
        assert attributes(response.text, f"{field}-error")["data-text"] == f"$errors.{field}"
    assert "0 members so far" in response.text


@pytest.mark.anyio
async def test_error_signals_start_empty_for_every_field(client: httpx.AsyncClient) -> None:
    form = attributes((await client.get("/")).text, "signup")
    initial = json.loads(form["data-signals__ifmissing"])
    assert initial == {"errors": dict.fromkeys(FORM_FIELDS, "")}


# -- validation: one message per field, "" for the fields that are fine --------------------


@pytest.mark.anyio
async def test_missing_fields_are_required(client: httpx.AsyncClient) -> None:
    response = await register(client, {"age": ""})
    assert errors_patch(response) == {"name": "is required", "email": "is required", "age": ""}


@pytest.mark.anyio
async def test_blank_text_is_required(client: httpx.AsyncClient) -> None:
    # livepages reports an empty required field; the form itself catches blank text.
    response = await register(client, {"name": "", "email": "", "age": ""})
    assert errors_patch(response) == {"name": "is required", "email": "is required", "age": ""}
    response = await register(client, {"name": "   ", "email": "ada@example.org", "age": ""})
    assert errors_patch(response) == {"name": "is required", "email": "", "age": ""}


@pytest.mark.anyio
async def test_email_needs_an_at_sign(client: httpx.AsyncClient) -> None:
    response = await register(client, {**VALID, "email": "ada.example.org"})
    assert errors_patch(response) == {"name": "", "email": "must contain @", "age": ""}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("age", "message"),
    [
        ("abc", "must be a whole number"),
        ("4.5", "must be a whole number"),
        ("12", "must be between 13 and 120"),
        ("121", "must be between 13 and 120"),
    ],
)
async def test_bad_age(client: httpx.AsyncClient, age: str, message: str) -> None:
    response = await register(client, {**VALID, "age": age})
    assert errors_patch(response) == {"name": "", "email": "", "age": message}


@pytest.mark.anyio
async def test_an_email_registers_once(client: httpx.AsyncClient) -> None:
    assert redirect_target(await register(client, VALID)) == "/welcome/1"
    again = {**VALID, "name": "Someone Else", "email": " ADA@example.org "}
    assert errors_patch(await register(client, again)) == {
        "name": "",
        "email": "is already registered",
        "age": "",
    }
    assert "1 member so far" in (await client.get("/")).text


@pytest.mark.anyio
async def test_invalid_input_adds_no_member(client: httpx.AsyncClient) -> None:
    await register(client, {**VALID, "email": "nope"})
    assert "0 members so far" in (await client.get("/")).text
    assert (await client.get("/welcome/1")).status_code == 404


# -- success ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_valid_sign_up_adds_a_member_and_redirects(client: httpx.AsyncClient) -> None:
    assert redirect_target(await register(client, VALID)) == "/welcome/1"
    second = {"name": "Grace Hopper", "email": "grace@example.org", "age": ""}
    assert redirect_target(await register(client, second)) == "/welcome/2"

    welcome = await client.get("/welcome/2")
    assert welcome.status_code == 200
    assert "Welcome, Grace Hopper!" in welcome.text
    assert "You are member number 2." in welcome.text
    assert '<a href="/">Sign up someone else</a>' in welcome.text
    home = (await client.get("/")).text
    assert "2 members so far" in home
    assert home.index("Ada Lovelace") < home.index("Grace Hopper")


@pytest.mark.anyio
async def test_names_are_escaped(client: httpx.AsyncClient) -> None:
    await register(client, {**VALID, "name": "<script>alert(1)</script>"})
    html = (await client.get("/welcome/1")).text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.anyio
async def test_a_plain_form_post_gets_a_303_or_a_422(client: httpx.AsyncClient) -> None:
    # Without Datastar (no JavaScript): a redirect is a 303, a bad form an error page.
    bad = await client.post("/_action/register", data={**VALID, "email": "nope"})
    assert bad.status_code == 422
    assert "must contain @" in bad.text
    good = await client.post("/_action/register", data=VALID)
    assert good.status_code == 303
    assert good.headers["location"] == "/welcome/1"


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "status"), [("/welcome/7", 404), ("/welcome/seven", 400)])
async def test_unknown_or_malformed_member(
    client: httpx.AsyncClient, path: str, status: int
) -> None:
    assert (await client.get(path)).status_code == status


@pytest.mark.anyio
async def test_apps_do_not_share_members() -> None:
    async with _client(create_app()) as first, _client(create_app()) as second:
        await register(first, VALID)
        assert "1 member so far" in (await first.get("/")).text
        assert "0 members so far" in (await second.get("/")).text


def test_module_app_is_what_make_run_serves() -> None:
    from examples.signup.app import app

    assert isinstance(app, App)


# -- mounted under a prefix inside another app ----------------------------------------------


@pytest.mark.anyio
async def test_mounted_under_a_prefix() -> None:
    parent = Starlette(routes=[Mount("/signup", app=create_app())])
    async with _client(parent) as client:
        html = (await client.get("/signup/")).text
        submit = attributes(html, "signup")["data-on:submit"]
        assert submit.startswith("@post('/signup/_action/register', {")
        assert attributes(html, "lp-live")["data-init"].startswith("@get('/signup/_live'")

        bad = await register(client, {**VALID, "email": "nope"}, prefix="/signup")
        assert errors_patch(bad)["email"] == "must contain @"
        good = await register(client, VALID, prefix="/signup")
        assert redirect_target(good) == "/signup/welcome/1"

        welcome = await client.get("/signup/welcome/1")
        assert welcome.status_code == 200
        assert '<a href="/signup/">Sign up someone else</a>' in welcome.text
        assert (await client.get("/welcome/1")).status_code == 404


# -- in a real browser ----------------------------------------------------------------------


@pytest.fixture
def server(datastar_js: Path) -> Iterator[LiveServer]:
    # Requested before browser_context by the test, so its pages close before this stops.
    with LiveServer(create_app(Settings(datastar_file=str(datastar_js)))) as live:
        yield live


def test_sign_up_in_a_browser(server: LiveServer, browser_context: NewContext) -> None:
    from playwright.sync_api import expect

    page = browser_context().new_page()
    problems = watch_console(page)
    # Datastar opening the live stream shows it has wired the page (the submit
    # handler included): a click before that would submit the form natively.
    goto_live(page, server.url + "/")
    name_error, email_error = page.locator("#name-error"), page.locator("#email-error")
    for message in (name_error, email_error, page.locator("#age-error")):
        expect(message).to_have_text("")

    page.fill("#name", "Ada Lovelace")
    page.fill("#email", "ada.example.org")
    page.fill("#age", "36")
    page.click("button[type=submit]")
    expect(email_error).to_have_text("must contain @")
    expect(name_error).to_have_text("")
    assert page.url == server.url + "/"

    page.fill("#email", "ada@example.org")
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/welcome/1")
    expect(page.locator("h1")).to_have_text("Welcome, Ada Lovelace!")
    expect(page.locator("#members li")).to_have_text(["Ada Lovelace"])
    assert problems == []
