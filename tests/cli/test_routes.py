"""``livepages routes``: the examples' routes as a table; the table's rows, in process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from livepages import App, Page, Settings, action
from livepages.checks.table import RouteKind, apps_in, route_table

ROOT = Path(__file__).resolve().parents[2]


def routes(spec: str) -> list[list[str]]:
    """The rows ``livepages routes`` prints for ``spec``, split on runs of spaces."""
    result = subprocess.run(
        [sys.executable, "-m", "livepages", "routes", spec],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    table = result.stdout.split("\n\n")[0]
    return [line.split() for line in table.splitlines()]


def test_the_examples_routes_are_listed_with_their_mount_prefixes() -> None:
    rows = routes("examples.index:create_app")
    assert rows[0] == ["METHOD", "PATH", "KIND", "TARGET", "NOTE"]
    for row in [
        ["GET", "/", "route", "examples.index.create_app.<locals>.index"],
        ["*", "/chat", "mount", "livepages", "app"],
        ["POST", "/chat/_action/send", "action", "send", "app-wide"],
        ["GET", "/chat/rooms/{room}", "page", "ChatRoom", "live"],
        ["GET", "/chat/rooms/{room}/_live", "stream", "ChatRoom"],
        ["POST", "/chat/_action/enter", "action", "Lobby.enter", "page"],
        ["GET", "/counter/", "page", "CounterPage", "live"],
        ["POST", "/counter/_action/increment", "action", "CounterPage.increment", "page"],
        ["DELETE", "/todolist/_action/delete", "action", "TodoList.delete", "page"],
        ["GET", "/notes/", "page", "SignIn", "not", "live"],
        ["GET", "/signup/welcome/{id}", "page", "Welcome", "live"],
        ["*", "/sdk", "mount", "Starlette"],
        ["POST", "/sdk/echo", "route", "examples.sdk_demo.echo"],
    ]:
        assert row in rows, row
    # A page that is not live has no stream.
    assert not any(row[1] == "/notes/_live" for row in rows)
    # A page's rows come together: its document, its stream, its actions.
    paths = [row[1] for row in rows]
    at = paths.index("/game_of_life/")
    assert paths[at + 1 : at + 6] == [
        "/game_of_life/_live",
        "/game_of_life/_action/clear",
        "/game_of_life/_action/paint",
        "/game_of_life/_action/pause",
        "/game_of_life/_action/randomize",
    ]


def test_one_example_alone_and_where_datastar_comes_from() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "livepages", "routes", "examples.counter.app:app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    rows = [line.split() for line in lines]
    assert ["GET", "/", "page", "CounterPage", "live"] in rows
    # Every app has the upload endpoint (docs/uploads.md).
    assert ["POST", "/_upload", "upload", "new", "upload"] in rows
    assert "Datastar loads from https://cdn.jsdelivr.net/" in result.stdout


def test_static_files_the_local_datastar_file_websockets_and_plain_routes(
    tmp_path: Path,
) -> None:
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app.css").write_text("body {}")
    (tmp_path / "datastar.js").write_text("// a build")
    settings = Settings(datastar_file=str(tmp_path / "datastar.js"))

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def echo(websocket: WebSocket) -> None:
        await websocket.close()

    shop = App(static=tmp_path / "static", settings=settings, routes=[Route("/health", health)])

    @shop.page("/products/{id}")
    class Product(Page):
        id: int
        live = False

        def render(self) -> str:
            return ""

        @action(method="PUT")
        async def rename(self) -> None:
            pass

    outer = Starlette(routes=[WebSocketRoute("/ws", echo), Mount("/shop", app=shop)])
    rows = {(e.kind, e.path): e for e in route_table(outer)}
    assert rows[RouteKind.WEBSOCKET, "/ws"].target.endswith("echo")
    assert rows[RouteKind.MOUNT, "/shop"].target == "livepages app"
    assert rows[RouteKind.ROUTE, "/shop/health"].methods == ("GET",)
    static = rows[RouteKind.STATIC, "/shop/_static/{path}"]
    assert static.note == str((tmp_path / "static").resolve())
    [datastar] = [e for e in rows.values() if e.kind is RouteKind.DATASTAR]
    assert datastar.path.startswith("/shop/_static/datastar.")
    assert datastar.path.endswith(".js")
    assert datastar.note == settings.datastar_file
    assert rows[RouteKind.PAGE, "/shop/products/{id}"].note == "not live"
    assert (RouteKind.STREAM, "/shop/products/{id}/_live") not in rows
    assert rows[RouteKind.ACTION, "/shop/products/{id}/_action/rename"].methods == ("PUT",)
    assert apps_in(outer) == [("/shop", shop)]
