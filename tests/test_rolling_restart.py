"""A rolling restart under a real browser: the page moves to another process, whole.

Two app processes (``tests.scaling_app``) on one nats-server, behind a small proxy
that sends each connection to the first process that accepts it. Chromium signs in,
half-fills a search box (the query lives in ``tab.state``), then process A is stopped
as a deploy would stop it. The page's stream reconnects through the proxy to B, which
renders it afresh: same page (no reload), same session, same tab state, and the next
keystroke's action lands on B.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from livepages.testing import Client, goto_live, watch_console
from tests.fixtures.browser import NewContext
from tests.fixtures.cluster import app_processes
from tests.fixtures.proxy import proxy

#: How long a page may take to notice its process went and reconnect to the next.
MOVE = 10_000


async def signed_in_cookies(url: str, user: str) -> list[dict[str, Any]]:
    """The session cookie of ``user``, signed in through ``url``, for the browser."""
    async with Client(url) as client:
        page = await client.get("/notes")
        assert (await page.action("sign_in", {"user": user})).status_code == 200
        return [
            {"name": cookie.name, "value": cookie.value or "", "url": url}
            for cookie in client.http.cookies.jar
        ]


def test_a_page_moves_to_another_process_with_its_session_and_tab_state(
    nats_server: str, datastar_js: Any, browser_context: NewContext
) -> None:
    from playwright.sync_api import expect

    key = f"rolling-{uuid.uuid4().hex}"
    env = {"LIVEPAGES_DATASTAR_FILE": str(datastar_js)}
    with (
        app_processes(2, "tests.scaling_app", nats_server, key, ready_path="/notes", env=env) as (
            a,
            b,
        ),
        proxy([a.port, b.port]) as front,
    ):
        context = browser_context()
        # (on a thread of its own: Playwright's sync API runs a loop in this one)
        with ThreadPoolExecutor(1) as aside:
            cookies = aside.submit(asyncio.run, signed_in_cookies(front.url, "ada")).result()
        context.add_cookies(cookies)  # type: ignore[arg-type]
        page = context.new_page()
        problems = watch_console(page)
        goto_live(page, front.url + "/filter")
        a_pid, b_pid = str(a.process.pid), str(b.process.pid)  # type: ignore[union-attr]
        expect(page.locator("#served")).to_have_text(a_pid)
        expect(page.locator("#who")).to_have_text("ada")
        page.locator("#search").press_sequentially("red sh")
        expect(page.locator("#query")).to_have_text("red sh")  # stored through A
        page.evaluate("window.stillTheSamePage = true")

        a.stop()  # a deploy stops A; its streams end and the page reconnects to B

        expect(page.locator("#served")).to_have_text(b_pid, timeout=MOVE)
        expect(page.locator("#query")).to_have_text("red sh")
        expect(page.locator("#who")).to_have_text("ada")
        expect(page.locator("#search")).to_have_value("red sh")
        page.locator("#search").press_sequentially("oes")
        expect(page.locator("#query")).to_have_text("red shoes")  # stored through B
        assert page.evaluate("window.stillTheSamePage") is True
        assert front.served[b.port] > 0
        assert problems == []
