"""Tests for livepages.assets: hashed URLs, cache headers, compression, traversal."""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import random
import socket
from pathlib import Path

import brotli
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message

from livepages.assets import Assets, UnknownAsset
from livepages.testing import LiveServer

pytestmark = pytest.mark.anyio

SECRET = b"SECRET-TOKEN-do-not-serve"
CSS = b"body { color: rebeccapurple }\n"
# Compressible and over the 1 KiB threshold.
JS = "".join(f"export const value{i} = {i} * 2;\n" for i in range(200)).encode()
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
LICENSE = b"MIT\n"
SPACED = b"p {}\n"
TARGZ = gzip.compress(b"tar", mtime=0)
IMMUTABLE = "public, max-age=31536000, immutable"

MODES = [pytest.param(False, id="production"), pytest.param(True, id="dev")]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.fixture
def static(tmp_path: Path) -> Path:
    """A static folder beside a secret file, with every awkward kind of entry."""
    (tmp_path / "pyproject.toml").write_bytes(SECRET)
    root = tmp_path / "static"
    (root / "img").mkdir(parents=True)
    (root / "app.css").write_bytes(CSS)
    (root / "app.js").write_bytes(JS)
    (root / "img" / "logo.svg").write_bytes(SVG)
    (root / "data.json").write_bytes(b'{"a": 1}')
    (root / "blob.bin").write_bytes(bytes(4096))  # compressible, but not a text type
    (root / "noise.txt").write_bytes(random.Random(0).randbytes(4096))  # incompressible
    (root / "LICENSE").write_bytes(LICENSE)
    (root / "font.woff2").write_bytes(b"wOF2")
    (root / "archive.tar.gz").write_bytes(TARGZ)  # not a variant
    (root / "my file.css").write_bytes(SPACED)
    (root / ".env").write_bytes(SECRET)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.css").write_bytes(SECRET)
    (root / "link.txt").symlink_to("../pyproject.toml")  # leaves the folder
    (root / "updir").symlink_to("..")  # a folder link that leaves
    (root / "inner.css").symlink_to("app.css")  # a link that stays inside
    (root / "img" / "back").symlink_to("..")  # a loop
    os.mkfifo(root / "pipe.txt")  # reading it would hang
    return root


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def mounted(assets: Assets) -> Starlette:
    return Starlette(routes=[Mount(assets.prefix, app=assets)])


async def call(
    app: ASGIApp,
    path: str,
    *,
    method: str = "GET",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict[bytes, bytes], bytes]:
    """Call an ASGI app with an already-decoded path, as a server would (no client
    normalises it first), and collect the response."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1234),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


def raw_get(port: int, target: bytes) -> tuple[int, bytes]:
    """Send a request line exactly as given over a socket: no client cleans it up."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    status = int(response.split(b" ", 2)[1])
    return status, response


# -- URLs -----------------------------------------------------------------------


@pytest.mark.parametrize("dev", MODES)
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("app.css", f"/_static/app.{digest(CSS)}.css"),
        ("img/logo.svg", f"/_static/img/logo.{digest(SVG)}.svg"),
        ("LICENSE", f"/_static/LICENSE.{digest(LICENSE)}"),
        ("archive.tar.gz", f"/_static/archive.tar.{digest(TARGZ)}.gz"),
        ("my file.css", f"/_static/my%20file.{digest(SPACED)}.css"),
        ("inner.css", f"/_static/inner.{digest(CSS)}.css"),
    ],
)
def test_url_inserts_the_content_hash_before_the_last_suffix(
    static: Path, dev: bool, name: str, expected: str
) -> None:
    assert Assets(static, dev=dev).url(name) == expected


def test_url_uses_the_prefix(static: Path) -> None:
    assert Assets(static, prefix="/assets/").url("app.css").startswith("/assets/app.")


@pytest.mark.parametrize("dev", MODES)
@pytest.mark.parametrize(
    "name",
    [
        "ap.css",
        "/app.css",
        "../pyproject.toml",
        ".env",
        ".hidden/x.css",
        "link.txt",
        "updir/pyproject.toml",
        "pipe.txt",
        "img",
        "",
        f"app.{digest(CSS)}.css",
    ],
)
def test_url_of_an_unknown_file_fails_loudly(static: Path, dev: bool, name: str) -> None:
    assets = Assets(static, dev=dev)
    with pytest.raises(UnknownAsset) as caught:
        assets.url(name)
    assert isinstance(caught.value, LookupError)
    assert caught.value.name == name
    assert repr(name) in str(caught.value)


def test_unknown_name_suggests_a_close_match(static: Path) -> None:
    with pytest.raises(UnknownAsset, match=r"did you mean 'app\.css'"):
        Assets(static).url("ap.css")


def test_dev_url_follows_the_content(static: Path) -> None:
    assets = Assets(static, dev=True)
    before = assets.url("app.css")
    edited = b"body { color: teal; margin: 0 }\n"
    (static / "app.css").write_bytes(edited)
    after = assets.url("app.css")
    assert after == f"/_static/app.{digest(edited)}.css"
    assert after != before
    (static / "new.css").write_bytes(b"new")
    assert assets.url("new.css") == f"/_static/new.{digest(b'new')}.css"
    (static / "new.css").unlink()
    with pytest.raises(UnknownAsset):
        assets.url("new.css")


# -- serving ----------------------------------------------------------------------


async def test_hashed_url_is_cached_forever_under_mount(static: Path) -> None:
    assets = Assets(static)
    async with client(mounted(assets)) as http:
        response = await http.get(assets.url("app.css"), headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.content == CSS
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["etag"] == f'"{digest(CSS)}"'
    assert response.headers["content-type"] == "text/css; charset=utf-8"
    assert response.headers["content-length"] == str(len(CSS))
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize("dev", MODES)
async def test_plain_name_is_served_but_revalidated(static: Path, dev: bool) -> None:
    assets = Assets(static, dev=dev)
    async with client(mounted(assets)) as http:
        response = await http.get("/_static/app.css")
    assert response.status_code == 200
    assert response.content == CSS
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"] == f'"{digest(CSS)}"'


async def test_nested_mount_and_custom_prefix(static: Path) -> None:
    assets = Assets(static, prefix="/assets")
    app = Starlette(routes=[Mount("/site", routes=[Mount("/assets", app=assets)])])
    async with client(app) as http:
        response = await http.get("/site" + assets.url("img/logo.svg"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"


async def test_served_at_the_root_without_mount(static: Path) -> None:
    assets = Assets(static, prefix="")
    async with client(assets) as http:
        response = await http.get(assets.url("app.css"))
    assert response.content == CSS


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("img/logo.svg", "image/svg+xml"),
        ("data.json", "application/json"),
        ("blob.bin", "application/octet-stream"),
        ("LICENSE", "application/octet-stream"),
        ("font.woff2", "font/woff2"),
        ("archive.tar.gz", "application/gzip"),
        ("noise.txt", "text/plain; charset=utf-8"),
    ],
)
async def test_content_type(static: Path, name: str, content_type: str) -> None:
    assets = Assets(static)
    async with client(mounted(assets)) as http:
        response = await http.get(assets.url(name), headers={"accept-encoding": "identity"})
    assert response.headers["content-type"] == content_type
    assert response.content == (static / name).read_bytes()


async def test_a_stale_hash_is_never_served_new_content(static: Path) -> None:
    old = Assets(static)
    old_url = old.url("app.css")
    (static / "app.css").write_bytes(b"body { color: teal }\n")
    async with client(mounted(old)) as http:
        # The running app keeps serving what it hashed at start-up...
        assert (await http.get(old_url)).content == CSS
        assert (await http.get("/_static/app.0123456789abcdef.css")).status_code == 404
    new = Assets(static)  # ...and after a restart the old URL is gone.
    async with client(mounted(new)) as http:
        gone = await http.get(old_url)
        fresh = await http.get(new.url("app.css"))
    assert gone.status_code == 404
    assert gone.headers["cache-control"] == "no-store"
    assert fresh.content == b"body { color: teal }\n"


@pytest.mark.parametrize("dev", MODES)
async def test_head_sends_headers_only(static: Path, dev: bool) -> None:
    assets = Assets(static, dev=dev)
    async with client(mounted(assets)) as http:
        response = await http.head(assets.url("app.js"), headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.content == b""
    if not dev:
        assert response.headers["content-encoding"] == "gzip"
    assert int(response.headers["content-length"]) > 0


@pytest.mark.parametrize("dev", MODES)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_other_methods_are_refused(static: Path, dev: bool, method: str) -> None:
    assets = Assets(static, dev=dev)
    async with client(mounted(assets)) as http:
        response = await http.request(method, assets.url("app.css"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


# -- conditional requests -------------------------------------------------------------


@pytest.mark.parametrize("dev", MODES)
@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        ('"{tag}"', 304),
        ('W/"{tag}"', 304),
        ('"0000000000000000", "{tag}"', 304),
        ("*", 304),
        ('"0000000000000000"', 200),
        ("{tag}", 200),  # unquoted: not an entity tag
    ],
)
async def test_if_none_match(static: Path, dev: bool, if_none_match: str, status: int) -> None:
    assets = Assets(static, dev=dev)
    headers = {"if-none-match": if_none_match.format(tag=digest(CSS))}
    async with client(mounted(assets)) as http:
        response = await http.get(assets.url("app.css"), headers=headers)
    assert response.status_code == status
    if status == 304:
        assert response.content == b""
        assert response.headers["etag"] == f'"{digest(CSS)}"'
        assert response.headers["cache-control"] == ("no-cache" if dev else IMMUTABLE)
        assert response.headers["vary"] == "Accept-Encoding"


async def test_each_encoding_has_its_own_etag(static: Path) -> None:
    assets = Assets(static)
    url = assets.url("app.js")
    async with client(mounted(assets)) as http:
        br = await http.get(url, headers={"accept-encoding": "br"})
        assert br.headers["etag"] == f'"{digest(JS)}-br"'
        same = {"accept-encoding": "br", "if-none-match": br.headers["etag"]}
        assert (await http.get(url, headers=same)).status_code == 304
        other = {"accept-encoding": "gzip", "if-none-match": br.headers["etag"]}
        assert (await http.get(url, headers=other)).status_code == 200


# -- compression --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        (None, None),
        ("", None),
        ("identity", None),
        ("gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("br", "br"),
        ("gzip, deflate, br, zstd", "br"),
        ("BR", "br"),
        ("*", "br"),
        ("br;q=0, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("gzip;q=0.5, br;q=0.8", "br"),
        ("gzip ; q=0.5", "gzip"),
        ("gzip;q=0", None),
        ("gzip;q=0.000", None),
        ("*;q=0", None),
        ("*;q=0, gzip", "gzip"),
        ("br, identity;q=0.5", "br"),
        ("deflate, zstd", None),
        ("gzip;q=nan", None),  # malformed q-values refuse rather than guess
        ("gzip;q=2", None),
        ("gzip;q=0.5555", None),
    ],
)
async def test_negotiation_follows_accept_encoding(
    static: Path, accept_encoding: str | None, coding: str | None
) -> None:
    assets = Assets(static)
    scope_headers = (
        [] if accept_encoding is None else [(b"accept-encoding", accept_encoding.encode())]
    )
    status, headers, body = await call(
        assets, "/" + assets.url("app.js").split("/", 2)[2], headers=scope_headers
    )
    assert status == 200
    assert headers.get(b"content-encoding") == (coding.encode() if coding else None)
    assert int(headers[b"content-length"]) == len(body)
    decoded = {None: lambda b: b, "gzip": gzip.decompress, "br": brotli.decompress}[coding](body)
    assert decoded == JS
    if coding:
        assert len(body) < len(JS)


async def test_repeated_accept_encoding_fields_are_joined(static: Path) -> None:
    assets = Assets(static)
    headers = [(b"accept-encoding", b"identity;q=0.1"), (b"accept-encoding", b"gzip")]
    _, response_headers, _ = await call(assets, "/app.js", headers=headers)
    assert response_headers[b"content-encoding"] == b"gzip"


@pytest.mark.parametrize(
    "name",
    [
        "app.css",  # under 1 KiB
        "blob.bin",  # not a compressible type
        "noise.txt",  # compressible type, but compression would not shrink it
    ],
)
async def test_no_variant_when_compression_does_not_pay(static: Path, name: str) -> None:
    assets = Assets(static)
    _, headers, body = await call(assets, f"/{name}", headers=[(b"accept-encoding", b"br, gzip")])
    assert b"content-encoding" not in headers
    assert body == (static / name).read_bytes()


async def test_dev_mode_does_not_compress(static: Path) -> None:
    assets = Assets(static, dev=True)
    _, headers, body = await call(assets, "/app.js", headers=[(b"accept-encoding", b"br, gzip")])
    assert b"content-encoding" not in headers
    assert body == JS


@pytest.mark.parametrize("dev", MODES)
async def test_precompressed_files_are_not_files_of_their_own(static: Path, dev: bool) -> None:
    (static / "app.css.gz").write_bytes(gzip.compress(CSS, mtime=0))
    assets = Assets(static, dev=dev)
    with pytest.raises(UnknownAsset):
        assets.url("app.css.gz")
    status, _, _ = await call(assets, "/app.css.gz")
    assert status == 404
    # A .gz with nothing beside it is an ordinary file.
    assert (await call(assets, "/archive.tar.gz"))[0] == 200


async def test_precompressed_files_are_used(static: Path) -> None:
    # Small files are not compressed on the fly, so these must come from disk;
    # padding makes the variants smaller than the original.
    content = b"/*" + b" " * 600 + b"*/ body { margin: 0 }\n"
    (static / "site.css").write_bytes(content)
    (static / "site.css.gz").write_bytes(gzip.compress(content, mtime=0))
    (static / "site.css.br").write_bytes(brotli.compress(content))
    assets = Assets(static)
    url = assets.url("site.css")
    async with client(mounted(assets)) as http:
        for coding in ("gzip", "br"):
            response = await http.get(url, headers={"accept-encoding": coding})
            assert response.headers["content-encoding"] == coding
            assert response.content == content  # httpx decoded it
        # The variants are not files of their own.
        assert (await http.get("/_static/site.css.gz")).status_code == 404
        with pytest.raises(UnknownAsset):
            assets.url("site.css.br")
    _, _, raw = await call(assets, "/site.css", headers=[(b"accept-encoding", b"br")])
    assert raw == (static / "site.css.br").read_bytes()


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(gzip.compress(b"old content", mtime=0), id="out-of-date"),
        pytest.param(gzip.compress(JS, mtime=0)[:-20], id="truncated"),
        pytest.param(b"not gzip at all", id="garbage"),
        pytest.param(gzip.compress(JS + b"extra", mtime=0), id="longer"),
    ],
)
async def test_precompressed_file_that_does_not_match_is_ignored(
    static: Path, variant: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    (static / "app.js.gz").write_bytes(variant)
    with caplog.at_level(logging.WARNING, logger="livepages.assets"):
        assets = Assets(static)
    assert "app.js.gz" in caplog.text
    _, headers, body = await call(assets, "/app.js", headers=[(b"accept-encoding", b"gzip")])
    # The variant compressed at start-up replaces it.
    assert headers[b"content-encoding"] == b"gzip"
    assert gzip.decompress(body) == JS


async def test_broken_brotli_variant_is_ignored(static: Path) -> None:
    (static / "app.js.br").write_bytes(b"\xff\xff not brotli")
    assets = Assets(static)
    _, headers, body = await call(assets, "/app.js", headers=[(b"accept-encoding", b"br")])
    assert headers[b"content-encoding"] == b"br"  # compressed at start-up instead
    assert brotli.decompress(body) == JS


# -- large files, streamed from disk ----------------------------------------------------


@pytest.fixture
def large(static: Path) -> bytes:
    content = "".join(f"line {i}: {'x' * (i % 50)}\n" for i in range(5000)).encode()
    (static / "large.txt").write_bytes(content)
    return content


@pytest.mark.parametrize("dev", MODES)
async def test_large_file_is_streamed(static: Path, large: bytes, dev: bool) -> None:
    assets = Assets(static, dev=dev, cache_limit=4096)
    async with client(mounted(assets)) as http:
        response = await http.get(assets.url("large.txt"), headers={"accept-encoding": "br"})
        head = await http.head(assets.url("large.txt"))
    assert response.status_code == 200
    assert response.content == large
    assert response.headers["content-length"] == str(len(large))
    assert response.headers["etag"] == f'"{digest(large)}"'
    assert "content-encoding" not in response.headers  # too big to compress in memory
    assert head.content == b""
    assert head.headers["content-length"] == str(len(large))


async def test_large_file_uses_a_precompressed_variant(static: Path, large: bytes) -> None:
    packed = gzip.compress(large, mtime=0)
    (static / "large.txt.gz").write_bytes(packed)
    assets = Assets(static, cache_limit=4096)
    _, headers, body = await call(assets, "/large.txt", headers=[(b"accept-encoding", b"gzip")])
    assert headers[b"content-encoding"] == b"gzip"
    assert headers[b"content-length"] == str(len(packed)).encode()
    assert body == packed


async def test_large_file_changed_after_start_up_is_refused(static: Path, large: bytes) -> None:
    assets = Assets(static, cache_limit=4096)
    url = assets.url("large.txt")
    (static / "large.txt").write_bytes(large.replace(b"line", b"LINE"))
    async with client(mounted(assets)) as http:
        assert (await http.get(url)).status_code == 404
        (static / "large.txt").unlink()
        assert (await http.get(url)).status_code == 404


# -- dev mode ----------------------------------------------------------------------------


async def test_dev_serves_the_current_content(static: Path) -> None:
    assets = Assets(static, dev=True)
    old_url = assets.url("app.css")
    async with client(mounted(assets)) as http:
        (static / "app.css").write_bytes(b"h1 {}\n")
        new = await http.get(assets.url("app.css"))
        # Any hash is accepted in dev: a page rendered before the edit still gets
        # the current file, never a cached one.
        old = await http.get(old_url)
        (static / "late.css").write_bytes(b"late")
        late = await http.get(assets.url("late.css"))
        (static / "late.css").unlink()
        deleted = await http.get("/_static/late.css")
    assert new.content == old.content == b"h1 {}\n"
    assert new.headers["cache-control"] == "no-cache"
    assert new.headers["etag"] == '"' + digest(b"h1 {}\n") + '"'
    assert late.content == b"late"
    assert deleted.status_code == 404


# -- extra files -------------------------------------------------------------------------


@pytest.mark.parametrize("dev", MODES)
async def test_extra_files_are_served_hashed(tmp_path: Path, static: Path, dev: bool) -> None:
    outside = tmp_path / "vendor" / "datastar-core.js"
    outside.parent.mkdir()
    outside.write_bytes(JS)
    (outside.parent / "datastar-core.js.br").write_bytes(brotli.compress(JS))
    for assets, name in (
        (Assets(static, dev=dev, files={"datastar.js": outside}), "datastar.js"),
        (Assets(dev=dev, files={"vendor/datastar.js": str(outside)}), "vendor/datastar.js"),
    ):
        url = assets.url(name)
        assert digest(JS) in url
        async with client(mounted(assets)) as http:
            response = await http.get(url, headers={"accept-encoding": "br"})
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["cache-control"] == ("no-cache" if dev else IMMUTABLE)
        assert response.content == JS
        assert response.headers.get("content-encoding") == (None if dev else "br")


def test_extra_file_name_clashing_with_the_folder_is_an_error(tmp_path: Path, static: Path) -> None:
    with pytest.raises(ValueError, match=r"app\.css"):
        Assets(static, files={"app.css": static / "app.js"})


@pytest.mark.parametrize(
    "name", ["", "../x.js", ".x.js", "a/.x/y.js", "/abs.js", "a\\b.js", "a//b.js", "a\x00.js"]
)
def test_extra_file_with_an_unsafe_name_is_an_error(static: Path, name: str) -> None:
    with pytest.raises(ValueError, match="not a valid static file name"):
        Assets(files={name: static / "app.js"})


def test_extra_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"x\.js"):
        Assets(files={"x.js": tmp_path / "missing.js"})
    with pytest.raises(FileNotFoundError):
        Assets(files={"x.js": tmp_path})


# -- construction ------------------------------------------------------------------------


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must start with '/'"):
        Assets(tmp_path, prefix="static")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Assets(tmp_path / "missing")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        Assets(tmp_path / "file")


def test_empty_assets_serve_nothing() -> None:
    assets = Assets()
    with pytest.raises(UnknownAsset, match=r"Assets\(files=\.\.\.\)"):
        assets.url("app.css")


async def test_websocket_is_closed(static: Path) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await Assets(static)({"type": "websocket", "path": "/app.css"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1000}]
    with pytest.raises(RuntimeError, match="HTTP only"):
        await Assets(static)({"type": "lifespan"}, receive, send)


# -- path traversal ------------------------------------------------------------------------

# Paths as the app receives them: the server has decoded percent-escapes once.
DECODED_ATTACKS = [
    "/_static/../pyproject.toml",
    "/_static/..",
    "/_static/../",
    "/_static/img/../../pyproject.toml",
    "/_static/img/../app.css",  # resolves inside, but dot segments are never valid
    "/_static/./app.css",
    "/_static/%2e%2e/pyproject.toml",  # was double-encoded: a literal name, not decoded again
    "/_static/%2E%2E%2Fpyproject.toml",
    "/_static/..\\pyproject.toml",
    "/_static/\\..\\pyproject.toml",
    "/_static//etc/passwd",
    "/_static/" + str(Path(__file__).resolve()),
    "/_static/app.css\x00",
    "/_static/\x00../pyproject.toml",
    "/_static/.env",
    "/_static/.hidden/x.css",
    "/_static/link.txt",
    "/_static/updir/pyproject.toml",
    "/_static/updir/static/app.css",
    "/_static/pipe.txt",
    "/_static/img",
    "/_static/img/",
    "/_static/",
    "/_static/app.css/",
    "/_static/app.css.",
]


@pytest.mark.parametrize("dev", MODES)
@pytest.mark.parametrize("path", DECODED_ATTACKS)
async def test_traversal_is_refused_after_decoding(static: Path, dev: bool, path: str) -> None:
    app = mounted(Assets(static, dev=dev))
    status, _, body = await call(app, path)
    assert status == 404
    assert SECRET not in body


@pytest.mark.parametrize("dev", MODES)
async def test_traversal_is_refused_through_httpx(static: Path, dev: bool) -> None:
    # httpx removes literal dot segments itself, but passes encoded ones on.
    app = mounted(Assets(static, dev=dev))
    async with client(app) as http:
        for url in [
            "/_static/%2e%2e/pyproject.toml",
            "/_static/..%2fpyproject.toml",
            "/_static/%2e%2e%2f.env",
        ]:
            response = await http.get(url)
            assert response.status_code == 404, url
            assert SECRET not in response.content


# Request targets as they go over the wire, undecoded.
RAW_ATTACKS = [
    b"/_static/../pyproject.toml",
    b"/_static/%2e%2e/pyproject.toml",
    b"/_static/%2E%2E/pyproject.toml",
    b"/_static/.%2e/pyproject.toml",
    b"/_static/..%2fpyproject.toml",
    b"/_static/..%2Fpyproject.toml",
    b"/_static/%2e%2e%2fpyproject.toml",
    b"/_static/%252e%252e/pyproject.toml",
    b"/_static/%252e%252e%252fpyproject.toml",
    b"/_static/..%5cpyproject.toml",
    b"/_static/%5c..%5cpyproject.toml",
    b"/_static/%2fetc%2fpasswd",
    b"/_static//etc/passwd",
    b"/_static/app.css%00",
    b"/_static/%00/../pyproject.toml",
    b"/_static/.env",
    b"/_static/%2eenv",
    b"/_static/.hidden/x.css",
    b"/_static/link.txt",
    b"/_static/updir/pyproject.toml",
    b"/_static/img/back/../../pyproject.toml",
]


@pytest.mark.parametrize("dev", MODES)
def test_traversal_is_refused_over_a_real_server(static: Path, dev: bool) -> None:
    assets = Assets(static, dev=dev)
    with LiveServer(mounted(assets)) as server:
        # The harness works: a good request over the same path gets the file.
        status, response = raw_get(server.port, assets.url("app.css").encode())
        assert status == 200
        assert response.endswith(CSS)
        for target in RAW_ATTACKS:
            status, response = raw_get(server.port, target)
            assert status == 404, target
            assert SECRET not in response, target


# -- a small cross-check on the scan ---------------------------------------------------------


def test_production_serves_exactly_the_visible_files(static: Path) -> None:
    names = set(Assets(static)._urls)
    assert names == {
        "app.css",
        "app.js",
        "img/logo.svg",
        "data.json",
        "blob.bin",
        "noise.txt",
        "LICENSE",
        "font.woff2",
        "archive.tar.gz",
        "my file.css",
        "inner.css",
    }
