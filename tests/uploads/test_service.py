"""The upload endpoint over HTTP: start, append, resume, cancel, limits, and actions."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from livepages import App, NotFound, Page, ServiceUnavailable, Settings, Uploaded, action
from livepages.testing import PageWiring
from livepages.uploads import UploadFolder, UploadLimits
from livepages.uploads.wire import OFFSET_HEADER, NewUpload
from tests.fixtures.servers import tab_of

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
received: list[tuple[str, str, bytes]] = []


def make_app(folder: Path, **settings: object) -> App:
    app = App(settings=Settings(secret_key="uploads", upload_folder=str(folder), **settings))  # type: ignore[arg-type]

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "home"

        @action
        async def one(self, photo: Uploaded) -> None:
            received.append((photo.name, photo.content_type, photo.read_bytes()))

        @action
        async def many(self, photos: list[Uploaded]) -> None:
            for photo in photos:
                received.append((photo.name, photo.content_type, photo.read_bytes()))

    return app


class Visitor:
    """One page of the app: its tab id, and the requests its upload script makes."""

    def __init__(self, client: httpx.AsyncClient, tab: str) -> None:
        self.client = client
        self.headers = {"X-LP-Tab": tab}

    async def start(self, name: str, size: int, kind: str = "") -> httpx.Response:
        body = {"name": name, "size": size, "type": kind}
        return await self.client.post("/_upload", json=body, headers=self.headers)

    async def new(self, name: str, size: int, kind: str = "") -> str:
        response = await self.start(name, size, kind)
        assert response.status_code == 201, response.text
        upload: str = response.json()["id"]
        return upload

    async def append(self, upload: str, offset: int, data: bytes) -> httpx.Response:
        headers = {**self.headers, OFFSET_HEADER: str(offset)}
        return await self.client.patch(f"/_upload/{upload}", content=data, headers=headers)

    async def offset(self, upload: str) -> httpx.Response:
        return await self.client.head(f"/_upload/{upload}", headers=self.headers)

    async def cancel(self, upload: str) -> httpx.Response:
        return await self.client.delete(f"/_upload/{upload}", headers=self.headers)

    async def call(self, name: str, signals: dict[str, object]) -> httpx.Response:
        headers = {**self.headers, "datastar-request": "true"}
        return await self.client.post(f"/_action/{name}", json=signals, headers=headers)


@pytest.fixture
async def visitor(tmp_path: Path) -> AsyncIterator[Visitor]:
    received.clear()
    app = make_app(
        tmp_path / "uploads", max_upload_size=4096, max_files=2, upload_accept=("image/*", ".txt")
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        tab = tab_of((await client.get("/")).text)
        yield Visitor(client, tab)


def signals_of(response: httpx.Response) -> dict[str, object]:
    line = next(x for x in response.text.splitlines() if x.startswith("data: signals "))
    value: dict[str, object] = json.loads(line.removeprefix("data: signals "))
    return value


async def test_an_upload_in_chunks_reaches_the_action(visitor: Visitor) -> None:
    upload = await visitor.new("cat.png", len(PNG), "image/png")
    first = await visitor.append(upload, 0, PNG[:100])
    assert first.status_code == 204
    assert first.headers[OFFSET_HEADER] == "100"
    assert (await visitor.offset(upload)).headers[OFFSET_HEADER] == "100"
    rest = await visitor.append(upload, 100, PNG[100:])
    assert rest.headers[OFFSET_HEADER] == str(len(PNG))
    answer = await visitor.call("many", {"photos": [upload]})
    assert answer.status_code == 200
    assert received == [("cat.png", "image/png", PNG)]


async def test_a_single_upload_parameter(visitor: Visitor) -> None:
    upload = await visitor.new("a.txt", 3, "text/plain")
    await visitor.append(upload, 0, b"abc")
    answer = await visitor.call("one", {"photo": upload})
    assert signals_of(answer)["_error"] == {"status": 0, "message": ""}
    assert received == [("a.txt", "text/plain", b"abc")]
    missing = await visitor.call("one", {})
    assert signals_of(missing)["errors"] == {"photo": "is required"}


async def test_a_wrong_offset_is_409_with_the_right_one(visitor: Visitor) -> None:
    upload = await visitor.new("a.txt", 10, "text/plain")
    await visitor.append(upload, 0, b"abcd")
    for wrong in (0, 2, 8):
        refused = await visitor.append(upload, wrong, b"xy")
        assert refused.status_code == 409
        assert refused.headers[OFFSET_HEADER] == "4"
    assert (await visitor.append(upload, 4, b"efghij")).headers[OFFSET_HEADER] == "10"


async def test_an_unfinished_upload_is_not_given_to_the_action(visitor: Visitor) -> None:
    upload = await visitor.new("a.txt", 10, "text/plain")
    await visitor.append(upload, 0, b"abcd")
    answer = await visitor.call("many", {"photos": [upload]})
    assert signals_of(answer)["errors"] == {"photos": "is still uploading"}
    assert received == []


async def test_a_cancelled_upload_is_gone(visitor: Visitor, tmp_path: Path) -> None:
    upload = await visitor.new("a.txt", 10, "text/plain")
    await visitor.append(upload, 0, b"abcd")
    assert (await visitor.cancel(upload)).status_code == 204
    assert (await visitor.offset(upload)).status_code == 404
    assert (await visitor.append(upload, 4, b"ef")).status_code == 404
    assert list((tmp_path / "uploads").glob("*/*")) == []
    answer = await visitor.call("many", {"photos": [upload]})
    assert signals_of(answer)["errors"] == {"photos": "was not uploaded: choose the file again"}


async def test_too_large_is_413_with_a_message(visitor: Visitor) -> None:
    refused = await visitor.start("huge.png", 5000, "image/png")
    assert refused.status_code == 413
    assert refused.text == "huge.png is 4.88 KiB: files of up to 4 KiB only"
    # A file that sends more than it declared is refused too, past its size.
    upload = await visitor.new("a.txt", 4, "text/plain")
    over = await visitor.append(upload, 0, b"abcdef")
    assert over.status_code == 413
    assert "larger than it said" in over.text
    assert (await visitor.offset(upload)).headers[OFFSET_HEADER] == "0"


async def test_too_many_files_is_400_with_a_message(visitor: Visitor) -> None:
    await visitor.new("a.txt", 1, "text/plain")
    await visitor.new("b.txt", 1, "text/plain")
    refused = await visitor.start("c.txt", 1, "text/plain")
    assert refused.status_code == 400
    assert refused.text == "at most 2 files at a time"


async def test_a_saved_upload_no_longer_counts(visitor: Visitor, tmp_path: Path) -> None:
    first = await visitor.new("a.txt", 1, "text/plain")
    await visitor.append(first, 0, b"a")
    await visitor.new("b.txt", 1, "text/plain")
    done = visitor_folder(tmp_path).finished(tab_dir(tmp_path), first)
    assert done is not None
    done.save(tmp_path / "kept.txt")
    assert (tmp_path / "kept.txt").read_bytes() == b"a"
    assert (await visitor.start("c.txt", 1, "text/plain")).status_code == 201


def tab_dir(tmp_path: Path) -> str:
    (tab,) = (tmp_path / "uploads").iterdir()
    return tab.name


def visitor_folder(tmp_path: Path) -> UploadFolder:
    return UploadFolder(tmp_path / "uploads", UploadLimits(max_size=4096, max_files=2))


async def test_a_type_not_accepted_is_415(visitor: Visitor) -> None:
    refused = await visitor.start("doc.pdf", 10, "application/pdf")
    assert refused.status_code == 415
    assert refused.text == "doc.pdf is not a file of an accepted type (image/*, .txt)"


async def test_bytes_that_are_not_the_declared_type_are_415(visitor: Visitor) -> None:
    upload = await visitor.new("fake.png", 100, "image/png")
    refused = await visitor.append(upload, 0, b"MZ" + bytes(98))
    assert refused.status_code == 415
    assert refused.text == "the content of fake.png is not image/png"
    assert (await visitor.offset(upload)).status_code == 404
    # A PDF that says it is an image: its bytes show a type that is not accepted.
    upload = await visitor.new("doc.gif", 20, "image/gif")
    assert (await visitor.append(upload, 0, b"%PDF-1.7" + bytes(12))).status_code == 415


async def test_uploads_belong_to_their_tab(visitor: Visitor) -> None:
    upload = await visitor.new("a.txt", 2, "text/plain")
    other_tab = tab_of((await visitor.client.get("/")).text)
    other = Visitor(visitor.client, other_tab)
    assert (await other.offset(upload)).status_code == 404
    assert (await other.append(upload, 0, b"ab")).status_code == 404
    assert (await other.cancel(upload)).status_code == 404
    await visitor.append(upload, 0, b"ab")
    answer = await other.call("many", {"photos": [upload]})
    assert signals_of(answer)["errors"] == {"photos": "was not uploaded: choose the file again"}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/_upload/not-an-id", {}),
        ("/_upload/AAAAAAAAAAAAAAAAAAAAAA", {OFFSET_HEADER: "-1"}),
        ("/_upload/AAAAAAAAAAAAAAAAAAAAAA", {}),
    ],
)
async def test_malformed_requests_are_400(
    visitor: Visitor, path: str, headers: dict[str, str]
) -> None:
    response = await visitor.client.patch(
        path, content=b"x", headers={**visitor.headers, **headers}
    )
    assert response.status_code == 400


async def test_requests_without_a_tab_or_from_another_site_are_refused(visitor: Visitor) -> None:
    body = {"name": "a.txt", "size": 1, "type": "text/plain"}
    assert (await visitor.client.post("/_upload", json=body)).status_code == 400
    cross = {**visitor.headers, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert (await visitor.client.post("/_upload", json=body, headers=cross)).status_code == 403
    assert (
        await visitor.client.post("/_upload", content=b"{", headers=visitor.headers)
    ).status_code == 400


async def test_the_script_is_served_immutable_under_its_version(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        url = f"/_upload.js?v={app.uploads.script_version}"
        response = await client.get(url)
        assert response.headers["content-type"].startswith("text/javascript")
        assert "immutable" in response.headers["cache-control"]
        assert "lp-upload" in response.text
        assert (await client.get("/_upload.js")).headers["cache-control"] == "no-cache"
        assert url in str(app.uploads.attributes("photos"))


def test_attributes_refuse_names_that_are_not_plain_signals(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    for bad in ("_local", "a-b", "", "x'y", "a.b"):
        with pytest.raises(ValueError, match="cannot name an upload signal"):
            app.uploads.attributes(bad)


def test_uploads_idle_past_their_ttl_are_swept(tmp_path: Path) -> None:
    folder = UploadFolder(tmp_path, UploadLimits(max_size=10, max_files=5, ttl=60))
    tab = "T" * 32
    old = folder.create(tab, NewUpload("old.txt", 3))
    fresh = folder.create(tab, NewUpload("fresh.txt", 3))
    an_hour_ago = time.time() - 3600
    for path in (tmp_path / tab).glob(f"{old}.*"):
        os.utime(path, (an_hour_ago, an_hour_ago))
    folder.sweep()
    assert sorted(p.name for p in (tmp_path / tab).iterdir()) == [f"{fresh}.data", f"{fresh}.json"]
    with pytest.raises(NotFound):
        folder.offset(tab, old)
    folder.cancel(tab, fresh)
    folder.sweep()
    assert list(tmp_path.iterdir()) == []  # the empty tab folder goes too


def test_the_default_ttl_is_an_hour() -> None:
    assert Settings().upload_ttl == 3600.0
    assert UploadLimits.from_settings(Settings()).ttl == 3600.0


async def test_a_form_action_carries_the_ids_as_fields(visitor: Visitor) -> None:
    upload = await visitor.new("a.txt", 2, "text/plain")
    await visitor.append(upload, 0, b"hi")
    answer = await visitor.client.post(
        "/_action/many", data={"photos": upload}, headers=visitor.headers
    )
    assert answer.status_code == 204
    assert received == [("a.txt", "text/plain", b"hi")]


async def test_a_second_writer_is_409_while_the_first_writes(
    visitor: Visitor, tmp_path: Path
) -> None:
    upload = await visitor.new("a.txt", 4, "text/plain")
    await visitor.append(upload, 0, b"ab")
    (data,) = (tmp_path / "uploads").glob(f"*/{upload}.data")
    with data.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a request still writing, in this or another process
        busy = await visitor.append(upload, 2, b"cd")
    assert busy.status_code == 409
    assert busy.headers[OFFSET_HEADER] == "2"
    assert (await visitor.append(upload, 2, b"cd")).status_code == 204


async def test_a_stalled_chunk_is_408_and_keeps_what_arrived(tmp_path: Path) -> None:
    app = make_app(tmp_path / "uploads", read_timeout=0.2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        visitor = Visitor(client, tab_of((await client.get("/")).text))
        upload = await visitor.new("a.txt", 10, "text/plain")

        async def stalls() -> AsyncIterator[bytes]:
            yield b"abc"
            await anyio.sleep(30)  # never sends the rest
            yield b"defghij"

        headers = {**visitor.headers, OFFSET_HEADER: "0"}
        stalled = await client.patch(f"/_upload/{upload}", content=stalls(), headers=headers)
        assert stalled.status_code == 408
        assert (await visitor.offset(upload)).headers[OFFSET_HEADER] == "3"


def test_the_chunk_size_reaches_the_page(tmp_path: Path) -> None:
    assert Settings().upload_chunk_size == 1024 * 1024
    assert 'data-lp-chunk="1048576"' in make_app(tmp_path).uploads.attributes("photos")
    small = make_app(tmp_path, upload_chunk_size=1000)
    assert 'data-lp-chunk="1000"' in small.uploads.attributes("photos")


def test_the_default_folder_must_be_private(tmp_path: Path) -> None:
    limits = UploadLimits(max_size=10, max_files=5)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # made first by someone else, who may read what lands in it
    with pytest.raises(ServiceUnavailable):
        UploadFolder(shared, limits, private=True).create("T" * 32, NewUpload("a", 1))
    shared.chmod(0o700)
    assert UploadFolder(shared, limits, private=True).create("T" * 32, NewUpload("a", 1))


async def test_with_sessions_an_upload_needs_the_csrf_token(tmp_path: Path) -> None:
    app = App(sessions=True, settings=Settings(secret_key="uploads", upload_folder=str(tmp_path)))

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "home"

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        wiring = PageWiring.read((await client.get("/")).text)
        body = {"name": "a.txt", "size": 1}
        headers = {"X-LP-Tab": wiring.tab}
        assert (await client.post("/_upload", json=body, headers=headers)).status_code == 403
        headers["X-CSRF-Token"] = wiring.csrf
        assert (await client.post("/_upload", json=body, headers=headers)).status_code == 201


async def test_under_a_mount_the_script_and_endpoint_carry_the_prefix(tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.page("/gallery")
    class Gallery(Page):
        def render(self) -> str:
            return f"<input type=file {app.uploads.attributes('photos')}>"

    outer = Starlette(routes=[Mount("/sub", app=app)])
    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        document = (await client.get("/sub/gallery")).text
        script = f"/sub/_upload.js?v={app.uploads.script_version}"
        assert f"src: &#39;{script}&#39;" in document
        assert (await client.get(script)).status_code == 200
        headers = {"X-LP-Tab": PageWiring.read(document).tab}
        started = await client.post("/sub/_upload", json={"name": "a", "size": 1}, headers=headers)
        assert started.status_code == 201
