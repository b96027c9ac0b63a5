"""Decoding outside bytes: msgspec's two ways of failing, and events from the broker."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import SSE, App, Page
from livepages.decoding import DECODE_ERRORS
from livepages.events import Event, on
from livepages.testing import Client

pytestmark = pytest.mark.anyio

MALFORMED: tuple[type[Exception], ...] = (*DECODE_ERRORS, msgspec.ValidationError)


@dataclass
class Said(Event, subject="said.{room}"):
    room: str
    text: str


def test_invalid_utf8_in_a_string_is_not_a_decode_error_but_is_caught() -> None:
    # Why DECODE_ERRORS exists: msgspec raises UnicodeDecodeError here, in JSON and msgpack.
    with pytest.raises(UnicodeDecodeError):
        msgspec.json.decode(b'{"a": "\xff"}')
    with pytest.raises(DECODE_ERRORS):
        msgspec.msgpack.decode(b"\x81\xa5\x00\x00\x00\x00\x80")


@given(st.binary())
def test_any_bytes_decode_to_an_event_or_a_caught_error(data: bytes) -> None:
    with contextlib.suppress(*MALFORMED):
        assert isinstance(Said.decode(data), Said)


async def test_a_malformed_event_on_a_subject_is_dropped_and_the_next_one_arrives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str

        def render(self) -> str:
            return '<ul id="said"></ul>'

        @on(Said, room="room")
        async def said(self, event: Said, sse: SSE) -> None:
            await sse.patch_elements(f"<li>{event.text}</li>", selector="#said", mode="append")

    async with Client(app) as client:
        page = await client.get("/rooms/a")
        async with page.stream() as stream:
            await stream.next_event()
            with caplog.at_level(logging.WARNING, logger="livepages.live"):
                for garbage in (b"\xff\xfe", b'{"room": "a", "text": "\xff"}', b'{"room": 1}'):
                    await app.broker.publish("said.a", garbage)
            await app.publish(Said(room="a", text="hello"))
            event = await stream.wait_for(lambda e: "hello" in e.elements)
    assert event.elements == "<li>hello</li>"
    assert caplog.text.count("ignoring a malformed Said on said.a") == 3
