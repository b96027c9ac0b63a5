from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.classifieds.probe import Probe, read_probe
from livepages import App, Page
from livepages.testing import LiveServer

pytestmark = pytest.mark.anyio


def test_the_probe_output_gives_times_and_errors() -> None:
    lines = ["0.004000 200", "0.500000 404", "1.000000 error ReadTimeout", "", "x 200"]
    times, errors = read_probe(lines)
    assert times == [0.004]
    assert errors == ["404", "error ReadTimeout", "unreadable probe line 'x 200'"]


@given(st.lists(st.text()))
def test_any_output_gives_times_and_errors(lines: list[str]) -> None:
    times, errors = read_probe(lines)
    assert all(isinstance(t, float) for t in times)
    assert all(isinstance(e, str) for e in errors)


async def test_the_probe_times_a_page_until_stopped() -> None:
    app = App()

    @app.page("/signin")
    class SignIn(Page):
        async def render(self) -> str:
            return "<p>sign in</p>"

    with LiveServer(app) as server:
        probe = Probe([server.url + "/signin", server.url + "/nowhere"], timeout=5, every=0.1)
        await asyncio.sleep(1.5)
        times, errors = await probe.stop()
    assert times
    assert set(errors) == {"404"}
    assert probe.popen.returncode == 0
    assert await probe.stop() == (times, errors)  # twice is harmless
