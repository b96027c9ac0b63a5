"""An app with one of each problem ``livepages check`` finds, and two it is told to ignore.

Every line with a problem ends with a comment ``expect: <code>``; the test compares what
``livepages check`` reports with those comments, file and line. It imports only under
``livepages check``: outside it, the first bad registration raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from livepages import App, Event, Page, Tab, action, on

HERE = Path(__file__).parent
app = App(templates=HERE / "templates", static=HERE / "static")


class Database:
    """Not something livepages can inject."""


@dataclass
class Pinged(Event, subject="ping"):
    pass


@app.page("/items/{id}")
class Item(Page):
    id: int

    def render(self) -> str:
        html: str = self.template("item.html", label="an item")
        return html

    @action
    async def save(self) -> None:
        pass

    @action(name="save")
    async def store(self) -> None:  # expect: duplicate-route
        pass


@app.page("/items/new")
class NewItem(Page):  # expect: shadowed-route
    def render(self) -> str:
        return ""


@app.page("/items/{key}")
class ItemAgain(Page):  # expect: duplicate-route
    key: str

    def render(self) -> str:
        return ""


@app.page("/items/{id}/edit")  # livepages: ignore[page-definition]
class EditItem(Page):
    name: str  # no field for {id}: the comment above silences it

    def render(self) -> str:
        return ""


@app.page("/tags/{tags}")
class Tagged(Page):
    tags: list[str]  # expect: param-type

    def render(self) -> str:
        return ""


@app.page("/orders")
class Orders(Page):
    def render(self, db: Database) -> str:  # expect: injection
        return ""


@app.page("/cart")
class Cart(Page):
    def render(self) -> str:
        return ""

    @action
    async def pay(self, db: Database) -> None:  # expect: injection
        pass


@app.page("/ping")
class Ping(Page):
    def render(self) -> str:
        return ""

    @on(Pinged)
    async def pinged(self, event: Pinged, db: Database) -> None:  # expect: injection
        pass


@app.page("/settings")
class Settings(Page):  # expect: page-definition
    title_text: str = ""
    url_text: str = ""
    # no render()


@app.page("/account")
class Account(Page):
    def render(self, tab: Tab) -> str:
        return self.template("account.html", tab=tab)


@app.page("/")
class Home(Page):
    def render(self) -> str:
        html: str = self.template("home.html")
        html += self.template("missing.html")  # expect: missing-template
        return html

    @action
    async def delete(self) -> None:
        pass

    @action
    async def notify(self) -> None:  # expect: duplicate-route
        pass


@app.action
async def notify() -> None:
    pass


@app.action
async def export(db: Database) -> None:  # expect: injection
    pass
