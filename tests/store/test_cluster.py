"""Two app processes on one NATS and one SQLite file: each one's writes re-render the
other's views, only those that read what changed, and the records outlive a restart."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from livepages.testing import Client
from tests.fixtures.cluster import AppProcess, app_processes

pytestmark = pytest.mark.anyio

#: What "at once" means across processes.
CROSSING = 1.0


@pytest.fixture(scope="module")
def pair(
    nats_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AppProcess, AppProcess]]:
    """Processes A and B of ``tests.store_app`` on the session's nats-server."""
    database = tmp_path_factory.mktemp("store") / "store.db"
    key = f"store-{uuid.uuid4().hex}"
    env = {"STORE_APP_DB": str(database)}
    with app_processes(2, "tests.store_app", nats_server, key, ready_path="/list", env=env) as (
        a,
        b,
    ):
        yield a, b


async def renders(client: Client, process: AppProcess, url: str) -> int:
    """How many renders of ``url`` ``process`` made so far."""
    counts: dict[str, int] = (await client.http.get(process.url + "/renders")).json()
    return counts.get(url, 0)


async def test_a_write_on_a_re_renders_the_views_on_b_that_read_it(
    pair: tuple[AppProcess, AppProcess],
) -> None:
    a, b = pair
    mark = uuid.uuid4().hex[:8]
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        read_x, read_y = await on_b.get("/todos/1"), await on_b.get("/todos/2")
        async with read_x.stream() as x, read_y.stream() as y:
            await x.next_event()
            await y.next_event()  # both first renders: B indexed what they read
            y_renders = await renders(on_b, b, "/todos/2")
            writer = await on_a.get("/todos/1")
            assert (await writer.action("save", {"title": f"x {mark}"})).status_code == 200
            patch = await x.wait_for(lambda event: mark in event.elements, wait=CROSSING)
            assert f'<p id="title">x {mark}</p>' in patch.elements
            assert await y.drain() == []
            assert await renders(on_b, b, "/todos/2") == y_renders  # not even rendered


async def test_a_write_on_b_re_renders_a_list_on_a(pair: tuple[AppProcess, AppProcess]) -> None:
    a, b = pair
    title = f"from B {uuid.uuid4().hex[:8]}"
    async with Client(a.url) as on_a, Client(b.url) as on_b:
        page = await on_a.get("/list")
        async with page.stream() as stream:
            await stream.next_event()
            writer = await on_b.get("/list")
            assert (await writer.action("add", {"title": title})).status_code == 200
            patch = await stream.wait_for(lambda event: title in event.elements, wait=CROSSING)
    assert f"<li>{title}</li>" in patch.elements


async def test_records_outlive_a_restart(pair: tuple[AppProcess, AppProcess]) -> None:
    a, _ = pair
    title = f"kept {uuid.uuid4().hex[:8]}"
    async with Client(a.url) as on_a:
        page = await on_a.get("/list")
        assert (await page.action("add", {"title": title})).status_code == 200
    a.stop()
    a.start()
    async with Client(a.url) as on_a:
        assert f"<li>{title}</li>" in (await on_a.get("/list")).html
