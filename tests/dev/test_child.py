"""The dev server of an app process, in process: boot ids, the overlay, messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import App, Page
from livepages.dev.child import Changed, DevServer, Show, decode_message
from livepages.dev.mode import BOOT_ENV
from livepages.dev.overlay import WAIT_PATH, Problem
from livepages.protocol import BUILD_HEADER
from livepages.testing import Client


@given(st.binary())
def test_decoding_arbitrary_bytes_gives_a_message_or_a_value_error(data: bytes) -> None:
    try:
        message = decode_message(data)
    except ValueError:
        return
    assert isinstance(message, Changed | Show)


def test_messages_decode() -> None:
    assert decode_message(b'{"type": "changed", "paths": ["/a"]}') == Changed(paths=["/a"])
    shown = decode_message(b'{"type": "show", "problem": {"title": "t"}}')
    assert shown == Show(problem=Problem(title="t"))


def _app() -> App:
    app = App()

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<p>home</p>"

    return app


async def _get(server: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


@pytest.mark.anyio
async def test_a_page_of_an_earlier_process_is_told_to_reload(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(BOOT_ENV, "now")  # the boot id is the app's build id
    async with Client(DevServer("now", _app())) as client:
        page = await client.get("/")
        assert page.status_code == 200  # pages are the app's
        async with page.stream({BUILD_HEADER: "before"}) as stream:
            assert 'id="lp-reload"' in (await stream.next_event()).elements
        async with page.stream({BUILD_HEADER: "now"}) as stream:
            assert "<p>home</p>" in (await stream.next_event()).elements


@pytest.mark.anyio
async def test_while_the_app_cannot_run_pages_get_the_overlay() -> None:
    server = DevServer(
        "now", None, Problem(title="SyntaxError: invalid syntax", file="a.py", line=3)
    )
    response = await _get(server, "/anything")
    assert response.status_code == 500
    assert "SyntaxError: invalid syntax" in response.text
    assert "a.py:3" in response.text
    assert WAIT_PATH in response.text  # it reloads itself once the app is back


@pytest.mark.anyio
async def test_the_wait_stream_says_reload_once_another_process_serves() -> None:
    server = DevServer("now", _app())
    response = await _get(server, WAIT_PATH + "?boot=before")
    assert b"event: reload" in response.content
