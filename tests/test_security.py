"""Secure by default, checked with real requests against a real app.

CSRF on every action (masked per-render tokens, Origin and Sec-Fetch-Site checks;
a refusal is a real 403, for Datastar too), guarded pages, the security headers on
every kind of response, and no secret in a URL or a log line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from markupsafe import escape
from starlette.responses import PlainTextResponse, Response

from livepages import App, Page, Settings, action, invoke
from livepages.sessions.session import Session, SessionManager
from livepages.testing import Client, LoadedPage

pytestmark = pytest.mark.anyio

SECRET = "a fixed secret for these tests, long enough"
NAME = "livepages_session"
Data = dict[str, Any]
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "SAMEORIGIN",
}
#: The app's CSP (``livepages.csp``): with a nonce when the response is a document.
CSP = re.compile(
    r"script-src (?:'nonce-[A-Za-z0-9_-]{22}' )?'strict-dynamic' 'unsafe-eval'; "
    r"connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
)


@dataclass
class Credentials:
    user: str


@dataclass
class Profile:
    name: str


def make_app(static: Path | None = None, manager: SessionManager | None = None) -> App:
    app = App(
        settings=Settings(secret_key=SECRET),
        static=static,
        sessions=manager or SessionManager(sign_in_url="/signin"),
    )
    counter = {"n": 0}

    @app.page("/")
    class Home(Page):
        def render(self, session: Session[Data]) -> str:
            button = escape(invoke(self.bump))
            return (
                f'<p id="n">{counter["n"]}</p><p id="who">{session.user_id or "guest"}</p>'
                f'<a href="/account">account</a><button data-on:click="{button}">+</button>'
            )

        @action
        async def bump(self) -> None:
            counter["n"] += 1

        @action(method="DELETE")
        async def reset(self) -> None:
            counter["n"] = 0

        @action
        async def sign_in(self, session: Session[Data], credentials: Credentials) -> None:
            await session.sign_in(credentials.user)

        @action(auth=True)
        async def members_only(self) -> None:
            counter["n"] += 100

        @action
        async def fail(self) -> None:
            raise RuntimeError("the action broke")

        @action
        async def framed(self) -> Response:
            return PlainTextResponse("framed", headers={"X-Frame-Options": "DENY"})

    @app.page("/account")
    class Account(Page):
        auth = True
        section: str = "profile"

        def render(self, session: Session[Data]) -> str:
            return f"<p>{session.user_id}: {self.section}</p>"

        @action
        async def rename(self, profile: Profile) -> None:
            counter["n"] += 1000

    @app.page("/broken")
    class Broken(Page):
        def render(self) -> str:
            raise RuntimeError("the render broke")

    @app.action
    async def ping() -> None:
        counter["n"] += 10

    return app


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Client(make_app()) as client:
        yield client


async def count(client: Client) -> str:
    page = await client.get("/")
    match = re.search(r'<p id="n">(\d+)</p>', page.html)
    assert match is not None
    return match.group(1)


async def sign_in(client: Client, user: str) -> None:
    page = await client.get("/")
    response = await page.action("sign_in", {"user": user})
    assert response.status_code == 200, response.text


def refused(response: httpx.Response, reason: str) -> None:
    """A CSRF refusal: a real 403 in plain text (not a Datastar patch), nothing set."""
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == reason
    assert "set-cookie" not in response.headers


DATASTAR = pytest.mark.parametrize("datastar", [True, False], ids=["datastar", "plain"])


def as_sent(page: LoadedPage, datastar: bool, **headers: str) -> dict[str, str]:
    """The headers of the page's action request, from Datastar or from a plain client."""
    sent = {k: v for k, v in page.headers.items() if datastar or k != "datastar-request"}
    sent.update(headers)
    return {k: v for k, v in sent.items() if v}


# -- CSRF ---------------------------------------------------------------------------


@DATASTAR
async def test_the_pages_own_token_is_accepted(client: Client, datastar: bool) -> None:
    page = await client.get("/")
    response = await client.http.post("/_action/bump", headers=as_sent(page, datastar))
    assert response.status_code == (200 if datastar else 204)
    assert await count(client) == "1"


@DATASTAR
async def test_a_missing_token_is_refused(client: Client, datastar: bool) -> None:
    page = await client.get("/")
    headers = as_sent(page, datastar, **{"X-CSRF-Token": ""})
    refused(
        await client.http.post("/_action/bump", headers=headers), "missing or invalid CSRF token"
    )
    assert await count(client) == "0"


@DATASTAR
@pytest.mark.parametrize("token", ["x", "A" * 86, "A" * 85 + "_", "%00"])
async def test_a_malformed_token_is_refused(client: Client, datastar: bool, token: str) -> None:
    page = await client.get("/")
    headers = as_sent(page, datastar, **{"X-CSRF-Token": token})
    refused(
        await client.http.post("/_action/bump", headers=headers), "missing or invalid CSRF token"
    )


@DATASTAR
async def test_a_token_from_another_session_is_refused(client: Client, datastar: bool) -> None:
    mine = await client.get("/")
    # Another browser on the same app; not entered, since leaving a Client shuts the
    # app down (and closes its session store) while ``client`` still uses it.
    attacker = Client(client.app)
    theirs = await attacker.get("/")
    await attacker.http.aclose()
    assert theirs.csrf != mine.csrf
    headers = as_sent(mine, datastar, **{"X-CSRF-Token": theirs.csrf})
    refused(
        await client.http.post("/_action/bump", headers=headers), "missing or invalid CSRF token"
    )
    assert await count(client) == "0"


async def test_a_token_from_the_session_before_sign_in_is_refused(client: Client) -> None:
    before = await client.get("/")
    await sign_in(client, "alice")
    refused(await before.action("bump"), "missing or invalid CSRF token")


@DATASTAR
async def test_a_token_from_an_older_render_of_the_session_is_accepted(
    client: Client, datastar: bool
) -> None:
    first = await client.get("/")
    second = await client.get("/")
    assert first.csrf != second.csrf  # masked afresh on every render (BREACH)
    for page in (first, second, first):
        response = await client.http.post("/_action/bump", headers=as_sent(page, datastar))
        assert response.status_code == (200 if datastar else 204)
    assert await count(client) == "3"


CROSS_SITE = pytest.mark.parametrize(
    "origin_headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "https://testserver"},  # another scheme is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
    ],
    ids=["origin", "suffix", "scheme", "null", "fetch-site", "same-site", "fetch-and-origin"],
)


@DATASTAR
@CROSS_SITE
async def test_a_cross_site_action_is_refused_even_with_a_valid_token(
    client: Client, datastar: bool, origin_headers: dict[str, str]
) -> None:
    page = await client.get("/")
    headers = as_sent(page, datastar, **origin_headers)
    refused(await client.http.post("/_action/bump", headers=headers), "cross-site request refused")
    assert await count(client) == "0"


@pytest.mark.parametrize(
    "origin_headers",
    [
        {"Origin": "http://testserver"},
        {"Origin": "http://testserver:80"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://testserver"},
        {"Sec-Fetch-Site": "same-origin"},
    ],
)
async def test_a_same_origin_action_is_accepted(
    client: Client, origin_headers: dict[str, str]
) -> None:
    page = await client.get("/")
    assert (await page.action("bump", headers=origin_headers)).status_code == 200


async def test_trusted_origins_may_send_actions() -> None:
    manager = SessionManager(trusted_origins=["https://admin.example"])
    async with Client(make_app(manager=manager)) as client:
        page = await client.get("/")
        headers = {"Origin": "https://admin.example", "Sec-Fetch-Site": "same-site"}
        assert (await page.action("bump", headers=headers)).status_code == 200
        other = {"Origin": "https://other.example"}
        refused(await page.action("bump", headers=other), "cross-site request refused")


def sessionless_app(**settings: Any) -> tuple[App, list[str]]:
    """An app without sessions: a todo list any visitor can add to."""
    app = App(settings=Settings(secret_key=SECRET, **settings))
    todos: list[str] = []

    @app.page("/todos")
    class Todos(Page):
        def render(self) -> str:
            return f"<p>{len(todos)}</p>"

        @action
        async def add(self) -> None:
            todos.append("x")

    @app.action
    async def clear() -> None:
        todos.clear()

    return app, todos


SITES_ELSEWHERE = [
    {"Origin": "https://evil.example"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://sub.testserver"},
]


@pytest.mark.parametrize("headers", SITES_ELSEWHERE)
async def test_a_cross_site_action_is_refused_without_sessions(headers: dict[str, str]) -> None:
    app, todos = sessionless_app()
    async with Client(app) as client:
        page = await client.get("/todos")
        refused(await page.action("add", headers=headers), "cross-site request refused")
        post = client.http.post("/_action/clear", headers=headers)
        refused(await post, "cross-site request refused")
        assert todos == []
        same_origin = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
        assert (await page.action("add", headers=same_origin)).status_code == 200
        assert (await page.action("add")).status_code == 200  # not a browser: no headers
        assert todos == ["x", "x"]


async def test_trusted_origins_are_a_setting_and_checked_at_start_up() -> None:
    app, _ = sessionless_app(trusted_origins=("https://admin.example",))
    async with Client(app) as client:
        page = await client.get("/todos")
        trusted = {"Origin": "https://admin.example", "Sec-Fetch-Site": "cross-site"}
        refused(await page.action("add", headers=trusted), "cross-site request refused")
        trusted["Sec-Fetch-Site"] = "same-site"
        assert (await page.action("add", headers=trusted)).status_code == 200
    with pytest.raises(ValueError, match="scheme://host"):
        sessionless_app(trusted_origins=("admin.example",))


async def test_every_kind_of_action_is_checked(client: Client) -> None:
    page = await client.get("/")
    no_token = {"X-CSRF-Token": ""}
    for call in (
        client.http.post("/_action/ping", headers=as_sent(page, True, **no_token)),
        client.http.delete("/_action/reset", headers=as_sent(page, True, **no_token)),
        client.http.post("/account/_action/rename", json={"name": "x"}),
    ):
        refused(await call, "missing or invalid CSRF token")
    assert (await client.http.post("/_action/ping", headers=as_sent(page, True))).status_code == 200
    assert await count(client) == "10"


async def test_an_action_without_any_session_is_refused(client: Client) -> None:
    refused(await client.http.post("/_action/bump"), "missing or invalid CSRF token")


# -- guarded pages -----------------------------------------------------------------


async def test_a_guarded_page_sends_guests_to_sign_in(client: Client) -> None:
    response = await client.http.get("/account", params={"section": "billing"})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Faccount%3Fsection%3Dbilling"
    assert "<p>" not in response.text


async def test_a_guarded_pages_stream_is_refused_for_guests(client: Client) -> None:
    guest = await client.get("/")
    stream = client.stream("/account/_live", headers={"X-LP-Tab": guest.tab})
    async with stream:
        assert stream.status == 204  # Datastar stops retrying a No Content stream
        assert stream.headers["x-livepages-refused"] == "sign in first"
        assert stream.events.empty()


@DATASTAR
async def test_a_guarded_pages_actions_refuse_guests(client: Client, datastar: bool) -> None:
    guest = await client.get("/")  # a guest with a valid token: only the guard says no
    headers = as_sent(guest, datastar)
    response = await client.http.post(
        "/account/_action/rename", json={"name": "x"}, headers=headers
    )
    if datastar:  # Datastar reads only 200s: the refusal is the _error signal
        assert response.status_code == 200
        assert response.text == (
            "event: datastar-patch-signals\n"
            'data: signals {"_error":{"status":403,"message":"sign in first"}}\n\n'
        )
    else:
        assert response.status_code == 403
    assert await count(client) == "0"


async def test_a_signed_in_user_gets_the_guarded_page(client: Client) -> None:
    await sign_in(client, "alice")
    page = await client.get("/account?section=billing")
    assert page.status_code == 200
    assert "<p>alice: billing</p>" in page.html
    async with page.stream() as stream:
        assert stream.status == 200
        assert "<p>alice: billing</p>" in (await stream.next_event()).elements
    assert (await page.action("rename", {"name": "A"})).status_code == 200
    assert await count(client) == "1000"


async def test_an_auth_action_refuses_guests(client: Client) -> None:
    guest = await client.get("/")
    plain = await client.http.post("/_action/members_only", headers=as_sent(guest, False))
    assert plain.status_code == 403
    await sign_in(client, "alice")
    member = await client.get("/")
    assert (await member.action("members_only")).status_code == 200
    assert await count(client) == "100"


async def test_guards_without_sessions_refuse_rather_than_open() -> None:
    app = App(settings=Settings(secret_key=SECRET))

    @app.page("/")
    class Home(Page):
        live = False

        def render(self) -> str:
            return "home"

        @action(auth=True)
        async def members_only(self) -> None:
            raise AssertionError("must not run")

    async with Client(app) as client:
        response = await client.http.post("/_action/members_only")
        assert response.status_code == 403


# -- security headers ---------------------------------------------------------------

Request = Callable[[Client], Awaitable[httpx.Response]]


async def page_get(client: Client) -> httpx.Response:
    return await client.http.get("/")


async def action_post(client: Client) -> httpx.Response:
    return await (await client.get("/")).action("bump")


async def guard_redirect(client: Client) -> httpx.Response:
    return await client.http.get("/account")


async def csrf_refusal(client: Client) -> httpx.Response:
    return await client.http.post("/_action/bump", headers={"datastar-request": "true"})


async def not_found(client: Client) -> httpx.Response:
    return await client.http.get("/nowhere")


async def server_error(client: Client) -> httpx.Response:
    return await client.http.get("/broken")


async def datastar_error(client: Client) -> httpx.Response:
    return await (await client.get("/")).action("fail")


async def static_file(client: Client) -> httpx.Response:
    app = client.app
    assert isinstance(app, App)
    return await client.http.get(app.asset("app.css"))


@pytest.mark.parametrize(
    "request_",
    [
        page_get,
        action_post,
        guard_redirect,
        csrf_refusal,
        not_found,
        server_error,
        datastar_error,
        static_file,
    ],
)
async def test_security_headers_on_every_response(request_: Request, tmp_path: Path) -> None:
    (tmp_path / "app.css").write_text("body { color: red }")
    async with Client(make_app(static=tmp_path)) as client:
        response = await request_(client)
        assert response.status_code in (200, 204, 303, 403, 404, 500)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get_list(name) == [value], name
        [policy] = response.headers.get_list("content-security-policy")
        assert CSP.fullmatch(policy), policy
        if response.headers.get("content-type", "").startswith("text/html"):
            assert "'nonce-" in policy  # a document: its script has the nonce


async def test_security_headers_on_live_streams(client: Client) -> None:
    page = await client.get("/")
    async with page.stream() as stream:
        assert stream.status == 200
        for name, value in SECURITY_HEADERS.items():
            assert stream.headers[name] == value
        assert CSP.fullmatch(stream.headers["content-security-policy"])
    async with client.stream("/account/_live", headers={"X-LP-Tab": page.tab}) as refusal:
        assert refusal.status == 204
        for name, value in SECURITY_HEADERS.items():
            assert refusal.headers[name] == value
        assert CSP.fullmatch(refusal.headers["content-security-policy"])


async def test_a_header_the_app_sets_itself_is_kept(client: Client) -> None:
    response = await (await client.get("/")).action("framed")
    assert response.headers.get_list("x-frame-options") == ["DENY"]
    assert response.headers["x-content-type-options"] == "nosniff"


# -- no secrets in URLs or logs ------------------------------------------------------

URL_ATTRIBUTE = re.compile(r'\b(?:src|href|action|data-init|data-on:[a-z]+)="([^"]*)"')


async def test_no_secret_travels_in_a_url(client: Client) -> None:
    page = await client.get("/")
    cookie = client.http.cookies[NAME]
    secrets_ = [page.csrf, page.tab, cookie]
    assert all(secrets_)
    # The token and the tab id are in the page's signals, and only there.
    signals = re.search(r'<body data-signals="([^"]*)"', page.html)
    assert signals is not None
    assert page.csrf in unescape(signals.group(1))
    outside = page.html.replace(signals.group(0), "")
    for secret in secrets_:
        assert secret not in outside
    # Every URL of the document, Datastar expressions included, names them by signal.
    values = [unescape(v) for v in URL_ATTRIBUTE.findall(page.html)]
    assert any("@get('/_live'" in v for v in values)
    assert any("@post('/_action/bump'" in v for v in values)
    for value in values:
        assert "'X-CSRF-Token': $_csrf" in value or "@post" not in value
        assert "?" not in value
    # The stream and the actions carry them in headers, never in the query.
    async with page.stream() as stream:
        assert stream.scope["query_string"] == b""
        assert dict(stream.scope["headers"])[b"x-lp-tab"] == page.tab.encode()
    response = await page.action("bump")
    assert response.request.url.query == b""
    assert response.request.headers["x-csrf-token"] == page.csrf


async def test_the_error_log_holds_no_cookie_or_token(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    page = await client.get("/")
    cookie = client.http.cookies[NAME]
    with caplog.at_level(logging.DEBUG):
        failed = await page.action("fail")
        broken = await client.http.get("/broken")
    assert '"status":500' in failed.text
    assert broken.status_code == 500
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "unhandled error on POST /_action/fail",
        "unhandled error on GET /broken",
    ]
    assert "the action broke" in caplog.text  # the traceback is logged...
    for secret in (cookie, page.csrf, page.tab):
        assert secret not in caplog.text  # ...but no secret of the request
    for secret in (cookie, page.csrf, page.tab, "the action broke"):
        assert secret not in failed.text
        assert secret not in broken.text
