"""An app whose module raises while it is imported: ``livepages check`` reports the line."""

from __future__ import annotations

from dataclasses import dataclass

from livepages import App, Event, Page, on

app = App()


@dataclass
class Pinged(Event, subject="ping.{room}"):
    room: str


@app.page("/")
class Home(Page):
    def render(self) -> str:
        return ""

    @on(Pinged, lobby="room")  # expect: import-error
    async def pinged(self) -> None:
        pass
