"""Presence across processes, in Chromium: two chat processes on one nats-server.

Each browser context talks to its own process (``tests.chat_app``, the chat example
configured by the environment), as a load balancer may route two visitors. Every
run gets its own subject prefix, hence its own presence bucket on the shared server.
A short ``LIVEPAGES_PRESENCE_TTL`` keeps the crash test quick. The test prints what it
measures (``pytest -s``): how long a member takes to leave the other process's page
after its page closes, after its process is killed (SIGKILL) and after it is stopped
(SIGTERM).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from livepages.testing import goto_live, watch_console
from tests.fixtures.cluster import AppProcess, app_processes

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.fixtures.browser import NewContext

#: Seconds: a process that dies without a word loses its members within this.
TTL = 2.0
#: Sooner than this, only a deleted key can take a member off a page: an unheard one
#: goes after 5/6 of the TTL, and its last heartbeat was at most 1/3 of it before.
AT_ONCE = TTL / 2


@pytest.fixture
def pair(nats_server: str, datastar_js: Path) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Processes A and B of the chat app, on the session's nats-server."""
    env = {
        "LIVEPAGES_PRESENCE_TTL": str(TTL),
        "LIVEPAGES_SUBJECT_PREFIX": f"chat{uuid.uuid4().hex[:12]}",
        "LIVEPAGES_DATASTAR_FILE": str(datastar_js),
    }
    key = f"presence-{uuid.uuid4().hex}"
    with app_processes(2, "tests.chat_app", nats_server, key, env=env) as (a, b):
        yield a, b


def enter(page: Page, url: str, name: str) -> None:
    """Open the room at ``url`` and choose ``name`` (the input's change event renames)."""
    goto_live(page, url)
    page.fill("#name", name)
    page.press("#name", "Tab")


def test_visitors_on_two_processes_see_each_other_come_and_go(
    pair: tuple[AppProcess, AppProcess], browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    a, b = pair
    room = "/rooms/presence"
    ada, bob = browser_context().new_page(), browser_context().new_page()
    problems = watch_console(ada)
    enter(ada, a.url + room, "Ada")
    enter(bob, b.url + room, "Bob")
    for page in (ada, bob):
        expect(page.locator("#online li")).to_have_text(["Ada", "Bob"])

    # Bob closes his page: his process deletes his key, A hears it at once.
    closed = time.monotonic()
    bob.close()
    expect(ada.locator("#online li")).to_have_text(["Ada"], timeout=TTL * 1000)
    left = time.monotonic() - closed
    print(f"\na closed page's member left the other process's page after {left:.2f} s")
    assert left < AT_ONCE

    # Bob again, then his process crashes: nobody deletes his key, so only the TTL
    # takes him off Ada's page.
    bob = browser_context().new_page()
    enter(bob, b.url + room, "Bob")
    expect(ada.locator("#online li")).to_have_text(["Ada", "Bob"])
    killed = time.monotonic()
    b.kill()
    expect(ada.locator("#online li")).to_have_text(["Ada"], timeout=TTL * 1000)
    gone = time.monotonic() - killed
    print(f"\na SIGKILLed process's member left the other's page after {gone:.2f} s")
    assert gone <= TTL
    expect(ada.locator("#online-count")).to_have_text("(1)")

    # B again, and it stops as a deployment stops it (SIGTERM): it withdraws Bob first.
    bob.close()  # its page would otherwise reconnect to the new B on its own
    b.start()
    bob = browser_context().new_page()
    enter(bob, b.url + room, "Bob")
    expect(ada.locator("#online li")).to_have_text(["Ada", "Bob"])
    stopped = time.monotonic()
    b.stop()
    expect(ada.locator("#online li")).to_have_text(["Ada"], timeout=TTL * 1000)
    withdrawn = time.monotonic() - stopped
    print(f"a SIGTERMed process's member left the other's page after {withdrawn:.2f} s")
    assert withdrawn < AT_ONCE
    assert problems == []
