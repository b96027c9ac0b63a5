"""Every example works in Chromium under the Content-Security-Policy livepages sends.

The examples are served as ``examples.index`` serves them, with the real
Datastar bundle. Each one is used as a person would (a click, a form, a
redirect after an action, a stream that morphs), and the page's console must
show no error: a script, an expression or a connection the policy refused would
be logged there, and a ``securitypolicyviolation`` listener records any other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from tests.fixtures.browser import NewContext

from examples.index import create_app, mounted
from livepages import Settings
from livepages.testing import LiveServer, goto_live, watch_console

if TYPE_CHECKING:
    from playwright.sync_api import Page

TIMEOUT = 5_000  # ms
#: Collects what the policy refused, whatever the console says about it.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture(scope="module")
def settings(datastar_js: Path) -> Settings:
    return Settings(datastar_file=str(datastar_js), secret_key="csp examples")


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings)) as live:
        yield live


def counter(page: Page, base: str) -> None:
    from playwright.sync_api import expect

    goto_live(page, base + "/counter/")
    before = int(page.text_content("#count") or "0")
    page.click("#increment")
    expect(page.locator("#count")).to_have_text(str(before + 1), timeout=TIMEOUT)


def todolist(page: Page, base: str) -> None:
    from playwright.sync_api import expect

    goto_live(page, base + "/todolist/")
    page.fill("#title", "under a policy")
    page.press("#title", "Enter")
    expect(page.locator("#todos .title")).to_have_text(["under a policy"], timeout=TIMEOUT)
    page.fill("#search", "policy")  # the reflected query: history, then a new stream
    page.wait_for_url(re.compile(r"\?q=policy$"), timeout=TIMEOUT)


def chat(page: Page, base: str) -> None:
    goto_live(page, base + "/chat/")
    page.fill("#room", "csp")
    with page.expect_navigation(timeout=TIMEOUT):  # a redirect: a script the server patched in
        page.press("#room", "Enter")
    assert page.url.endswith("/chat/rooms/csp")


def game_of_life(page: Page, base: str) -> None:
    from playwright.sync_api import expect

    goto_live(page, base + "/game_of_life/")
    page.click("#pause")
    expect(page.locator("#pause")).to_have_text(re.compile("Resume|Pause"), timeout=TIMEOUT)


def signup(page: Page, base: str) -> None:
    goto_live(page, base + "/signup/")
    page.fill("#name", "Ada")
    page.fill("#email", "ada@example.com")
    with page.expect_navigation(timeout=TIMEOUT):
        page.click("#signup button[type=submit]")
    assert "/signup/welcome/" in page.url


def notes(page: Page, base: str) -> None:
    page.goto(base + "/notes/")  # not a live page; Datastar runs before "load"
    page.fill("#username", "ada")
    with page.expect_navigation(timeout=TIMEOUT):
        page.click("#sign-in button[type=submit]")
    assert page.url.endswith("/notes/notes")


def feed(page: Page, base: str) -> None:
    from playwright.sync_api import expect

    goto_live(page, base + "/feed/")  # the first chunk of the long list, then a like
    first = page.locator("#posts > article").first
    expect(first).to_be_visible(timeout=TIMEOUT)
    first.locator(".like").click()
    expect(first.locator(".like")).to_contain_text("1", timeout=TIMEOUT)


def classifieds(page: Page, base: str) -> None:
    from playwright.sync_api import expect

    goto_live(page, base + "/classifieds/")  # a search, mirrored in the URL
    page.fill("#q", "bike")
    expect(page).to_have_url(base + "/classifieds/?q=bike", timeout=TIMEOUT)
    expect(page.locator(".card .title")).to_have_count(2, timeout=TIMEOUT)


USES: dict[str, Callable[[Page, str], None]] = {
    "/counter": counter,
    "/todolist": todolist,
    "/chat": chat,
    "/game_of_life": game_of_life,
    "/signup": signup,
    "/notes": notes,
    "/feed": feed,
    "/classifieds": classifieds,
}


def test_every_livepages_example_is_used(settings: Settings) -> None:
    from livepages import App

    livepages_examples = {e.prefix for e, app in mounted(settings) if isinstance(app, App)}
    assert livepages_examples == set(USES)


@pytest.mark.parametrize("prefix", list(USES))
def test_the_example_works_under_the_policy(
    prefix: str, server: LiveServer, browser_context: NewContext
) -> None:
    policies = [httpx.get(server.url + prefix + "/").headers["content-security-policy"]]
    policies.append(httpx.get(server.url + prefix + "/").headers["content-security-policy"])
    nonces = [re.search(r"'nonce-([^']+)'", policy) for policy in policies]
    assert all(nonces)
    assert len({n.group(1) for n in nonces if n}) == 2  # fresh on every response
    assert all("'unsafe-eval'" in policy for policy in policies)
    page = browser_context().new_page()
    page.add_init_script(RECORD_VIOLATIONS)
    problems = watch_console(page)
    USES[prefix](page, server.url)
    assert page.evaluate("window.__violations") == []
    assert problems == []
