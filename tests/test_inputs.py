"""Forms and uploads: decoding into dataclasses field by field, under size limits."""

from __future__ import annotations

import asyncio
import itertools
import logging
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message

from livepages import App, Page, Settings, Signals, ValidationError, action
from livepages.datastar import patch_signals
from livepages.inputs import decode_fields, is_form, read_form, read_input, read_query
from tests.test_server import free_port, wait_until_serving


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


DATASTAR = {"datastar-request": "true"}


@dataclass
class Profile:
    name: str
    age: int
    height: float = 1.7
    admin: bool = False
    nickname: str | None = None
    tags: list[str] = field(default_factory=list)


class Upload(msgspec.Struct):
    title: str
    file: UploadFile


@dataclass
class MaybeUpload:
    title: str
    file: UploadFile | None = None


@dataclass
class Password:
    password: str
    repeat: str

    def __post_init__(self) -> None:
        if self.password != self.repeat:
            raise ValidationError({"repeat": "does not match"})


@dataclass
class Signup:
    email: str
    age: int
    password: str
    repeat: str

    def __post_init__(self) -> None:
        if self.password != self.repeat:
            raise ValidationError({"repeat": "does not match"})
        if self.age < 18 and "@" not in self.email:  # a rule over fields that may fail
            raise ValidationError({"email": "needed under 18"})


calls: list[Any] = []


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    calls.clear()


LIMITS = Settings(max_form_size=200, max_upload_size=1000, max_files=2, max_fields=8)
app = App(settings=LIMITS)


@app.page("/forms")
class Forms(Page):
    async def render(self) -> str:
        return ""

    @action
    async def profile(self, profile: Profile) -> None:
        calls.append(profile)

    @action
    async def upload(self, upload: Upload) -> None:
        calls.append((upload.title, upload.file.filename, await upload.file.read()))

    @action
    async def maybe(self, upload: MaybeUpload) -> None:
        calls.append((upload.title, upload.file))

    @action
    async def password(self, change: Password) -> None:
        calls.append(change)

    @action
    async def signup(self, form: Signup) -> None:
        calls.append(form)

    @action
    async def raw(self, form: FormData) -> None:
        calls.append(sorted(form.multi_items()))

    @action
    async def loose(self, signals: Annotated[dict[str, Any], Signals]) -> None:
        calls.append(signals)


@pytest.fixture
async def c() -> AsyncIterator[httpx.AsyncClient]:
    async with client(app) as c:
        yield c


def encoded(**options: Any) -> tuple[bytes, dict[str, str]]:
    """A request body as httpx encodes it (urlencoded or multipart), and its content type."""
    request = httpx.Request("POST", "http://testserver/", **options)
    return request.read(), {"content-type": request.headers["content-type"]}


async def chunked(body: bytes) -> AsyncIterator[bytes]:
    """Stream ``body`` in pieces, so the request has no Content-Length."""
    for start in range(0, len(body), 64):
        yield body[start : start + 64]


# -- decoding ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_urlencoded_form_decodes_into_a_dataclass(c: httpx.AsyncClient) -> None:
    form = {"name": "Ada", "age": "36", "height": "1.65", "admin": "true", "tags": ["a", "b"]}
    response = await c.post("/forms/_action/profile", data=form)
    assert response.status_code == 204
    assert calls == [Profile("Ada", 36, 1.65, True, None, ["a", "b"])]


@pytest.mark.anyio
async def test_empty_inputs_count_as_absent(c: httpx.AsyncClient) -> None:
    form = {"name": "Ada", "age": "3", "height": "", "nickname": ""}
    response = await c.post("/forms/_action/profile", data=form)
    assert response.status_code == 204
    # An empty optional input takes its default (nickname: str | None becomes None).
    assert calls == [Profile("Ada", 3)]


@pytest.mark.anyio
async def test_an_empty_required_text_field_is_required(c: httpx.AsyncClient) -> None:
    form = {"name": "", "age": "3"}
    response = await c.post(
        "/forms/_action/profile", data=form, headers={"datastar-request": "true"}
    )
    assert '"name":"is required"' in response.text
    assert calls == []


@pytest.mark.anyio
async def test_checkbox_and_single_choice_values(c: httpx.AsyncClient) -> None:
    # A checked checkbox without value="..." sends "on"; one chosen option is not a list.
    form = {"name": "Ada", "age": "36", "admin": "on", "tags": "solo"}
    response = await c.post("/forms/_action/profile", data=form)
    assert response.status_code == 204
    assert calls == [Profile("Ada", 36, admin=True, tags=["solo"])]


@pytest.mark.anyio
async def test_multipart_with_an_upload_decodes_into_a_struct(c: httpx.AsyncClient) -> None:
    files = {"file": ("notes.txt", b"hello\x00bytes", "text/plain")}
    response = await c.post("/forms/_action/upload", data={"title": "t"}, files=files)
    assert response.status_code == 204
    assert calls == [("t", "notes.txt", b"hello\x00bytes")]


@pytest.mark.anyio
async def test_an_optional_upload_may_be_left_out(c: httpx.AsyncClient) -> None:
    body, headers = encoded(data={"title": "t"}, files={"other": ("x", b"")})
    response = await c.post("/forms/_action/maybe", content=body, headers=headers)
    assert response.status_code == 204
    assert calls == [("t", None)]


@pytest.mark.anyio
async def test_raw_form_data_injection(c: httpx.AsyncClient) -> None:
    response = await c.post("/forms/_action/raw", data={"b": ["2", "3"], "a": "1"})
    assert response.status_code == 204
    assert calls == [[("a", "1"), ("b", "2"), ("b", "3")]]


@pytest.mark.anyio
async def test_a_form_into_a_signals_dict(c: httpx.AsyncClient) -> None:
    response = await c.post("/forms/_action/loose", data={"a": "1", "b": ["x", "y"]})
    assert response.status_code == 204
    assert calls == [{"a": "1", "b": ["x", "y"]}]


# -- per-field messages ------------------------------------------------------------------

ALL_PROFILE_FIELDS = dict.fromkeys(["name", "age", "height", "admin", "nickname", "tags"], "")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("form", "errors"),
    [
        ({"name": "x"}, {"age": "is required"}),
        ({"age": "3"}, {"name": "is required"}),
        ({"name": "x", "age": "3.5"}, {"age": "must be a whole number"}),
        ({"name": "x", "age": "3", "height": "tall"}, {"height": "must be a number"}),
        ({"name": "x", "age": "3", "admin": "maybe"}, {"admin": "must be true or false"}),
        ({"unrelated": "x"}, {"name": "is required", "age": "is required"}),
    ],
)
async def test_per_field_messages_patch_the_errors_signal(
    c: httpx.AsyncClient, form: dict[str, str], errors: dict[str, str]
) -> None:
    response = await c.post("/forms/_action/profile", data=form, headers=DATASTAR)
    assert response.status_code == 200
    assert response.content == patch_signals({"errors": {**ALL_PROFILE_FIELDS, **errors}})
    assert calls == []


@pytest.mark.anyio
@pytest.mark.parametrize("as_form", [True, False], ids=["form", "json"])
async def test_validation_error_from_post_init(c: httpx.AsyncClient, as_form: bool) -> None:
    values = {"password": "a", "repeat": "b"}
    url = "/forms/_action/password"
    if as_form:
        response = await c.post(url, data=values, headers=DATASTAR)
    else:
        response = await c.post(url, json=values, headers=DATASTAR)
    assert response.content == patch_signals(
        {"errors": {"password": "", "repeat": "does not match"}}
    )
    assert calls == []


@pytest.mark.anyio
async def test_text_for_an_upload_field_is_an_error(c: httpx.AsyncClient) -> None:
    body, headers = encoded(data={"title": "t", "file": "not a file"}, files={"x": ("x", b"")})
    response = await c.post("/forms/_action/upload", content=body, headers=headers | DATASTAR)
    assert response.content == patch_signals({"errors": {"title": "", "file": "must be a file"}})


@pytest.mark.anyio
async def test_invalid_form_without_datastar_is_422(c: httpx.AsyncClient) -> None:
    response = await c.post("/forms/_action/profile", data={"name": "x", "age": "old"})
    assert response.status_code == 422
    assert "age: must be a whole number" in response.text


# -- limits and malformed bodies ---------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_oversized_form_is_413(c: httpx.AsyncClient, streamed: bool) -> None:
    body, headers = encoded(data={"name": "x" * 300, "age": "1"})
    response = await c.post(
        "/forms/_action/profile", content=chunked(body) if streamed else body, headers=headers
    )
    assert ("content-length" in response.request.headers) is not streamed
    assert response.status_code == 413
    assert "larger than 200 bytes" in response.text
    assert calls == []


@pytest.mark.anyio
@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_oversized_upload_is_413(c: httpx.AsyncClient, streamed: bool) -> None:
    body, headers = encoded(data={"title": "t"}, files={"file": ("big.bin", b"x" * 2000)})
    response = await c.post(
        "/forms/_action/upload", content=chunked(body) if streamed else body, headers=headers
    )
    assert ("content-length" in response.request.headers) is not streamed
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.text
    assert calls == []


@pytest.mark.anyio
async def test_upload_under_the_upload_limit_but_over_the_form_limit(c: httpx.AsyncClient) -> None:
    files = {"file": ("ok.bin", b"x" * 500)}
    response = await c.post("/forms/_action/upload", data={"title": "t"}, files=files)
    assert response.status_code == 204
    assert calls == [("t", "ok.bin", b"x" * 500)]


@pytest.mark.anyio
async def test_oversized_form_from_datastar_patches_the_error(c: httpx.AsyncClient) -> None:
    body, headers = encoded(data={"name": "x" * 300})
    response = await c.post("/forms/_action/profile", content=body, headers=headers | DATASTAR)
    assert response.status_code == 200
    assert response.content == patch_signals(
        {"_error": {"status": 413, "message": "request body is larger than 200 bytes"}}
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"garbage", "multipart/form-data; boundary=zzz", "Invalid multipart data"),
        (
            b"--zzz\r\nnonsense\r\n\r\n1\r\n--zzz--\r\n",
            "multipart/form-data; boundary=zzz",
            "Invalid multipart data",
        ),
        (b"x", "multipart/form-data", "Missing boundary in multipart"),
        (
            b"--zzz\r\nContent-Disposition: form-data\r\n\r\n1\r\n--zzz--\r\n",
            "multipart/form-data; boundary=zzz",
            'The Content-Disposition header field "name" must be provided',
        ),
    ],
    ids=["garbage", "bad-header", "no-boundary", "no-name"],
)
async def test_malformed_multipart_is_400(
    c: httpx.AsyncClient, body: bytes, content_type: str, message: str
) -> None:
    response = await c.post(
        "/forms/_action/upload", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert f"malformed form: {message}" in response.text.replace("&#34;", '"')
    assert calls == []


@pytest.mark.anyio
async def test_too_many_files_or_fields_is_400(c: httpx.AsyncClient) -> None:
    files = [("file", (f"{i}.txt", b"x")) for i in range(3)]
    response = await c.post("/forms/_action/upload", data={"title": "t"}, files=files)
    assert response.status_code == 400
    assert "Too many files. Maximum number of files is 2." in response.text
    fields = {f"f{i}": "1" for i in range(9)}
    response = await c.post("/forms/_action/profile", data=fields)
    assert response.status_code == 400
    assert "Too many fields. Maximum number of fields is 8." in response.text


# -- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "form"),
    [
        ("application/x-www-form-urlencoded", True),
        ("Application/X-WWW-Form-Urlencoded; charset=utf-8", True),
        ("multipart/form-data; boundary=x", True),
        ("application/json", False),
        ("", False),
    ],
)
def test_is_form(content_type: str, form: bool) -> None:
    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", content_type.encode())],
    }
    assert is_form(Request(scope)) is form


def test_decode_fields_collects_every_error() -> None:
    with pytest.raises(ValidationError) as info:
        decode_fields({"age": "x", "height": "y"}, Profile, lax=True)
    assert info.value.errors == {
        "name": "is required",
        "age": "must be a whole number",
        "height": "must be a number",
    }


def test_decode_fields_strict_refuses_text_for_numbers() -> None:
    assert decode_fields({"name": "a", "age": 3}, Profile, lax=False) == Profile("a", 3)
    with pytest.raises(ValidationError):
        decode_fields({"name": "a", "age": "3"}, Profile, lax=False)


def test_decode_fields_needs_a_dataclass_or_struct() -> None:
    with pytest.raises(TypeError, match="cannot decode fields into"):
        decode_fields({}, int, lax=True)


async def stalled_form(pause: float) -> AsyncIterator[bytes]:
    yield b"name=Ada&age="
    await asyncio.sleep(pause)
    yield b"3"


@pytest.mark.anyio
async def test_a_form_that_stalls_is_a_408() -> None:
    app = App(settings=Settings(read_timeout=0.05))

    @app.page("/stall")
    class Stall(Page):
        def render(self) -> str:
            return ""

        @action
        async def send(self, profile: Profile) -> None:
            calls.append(profile)

    headers = {"content-type": "application/x-www-form-urlencoded"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        stalled = await client.post(
            "/stall/_action/send", content=stalled_form(1.0), headers=headers
        )
        prompt = await client.post("/stall/_action/send", content=stalled_form(0), headers=headers)
    assert stalled.status_code == 408
    assert prompt.status_code == 204
    assert calls == [Profile("Ada", 3)]


# -- input that does not decode: a 400, never a 500 --------------------------------------

DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name": "\xff", "age": 3}', "not UTF-8"),
        (b'{"name": "Ada", "age": 3, "extra": ' + DEEP + b"}", "nested deeper than 64 levels"),
    ],
    ids=["bad-byte", "deep"],
)
async def test_json_sent_to_a_form_action_that_does_not_decode_is_400(
    c: httpx.AsyncClient, body: bytes, message: str
) -> None:
    response = await c.post("/forms/_action/profile", content=body)
    assert response.status_code == 400
    assert message in response.text
    response = await c.post("/forms/_action/profile", content=body, headers=DATASTAR)
    assert b'"_error":{"status":400' in response.content
    assert calls == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [b"name=%FF&age=3", b"name=\xff&age=3", b"name=Ada&age=3&%FF=1", b"name=Ada&age=%C3"],
    ids=["escaped", "raw", "name", "cut-off"],
)
@pytest.mark.parametrize("action", ["profile", "raw", "loose"])
async def test_an_urlencoded_form_that_is_not_utf_8_is_400(
    c: httpx.AsyncClient, body: bytes, action: str
) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    response = await c.post(f"/forms/_action/{action}", content=body, headers=headers)
    assert response.status_code == 400
    assert "malformed form: text is not valid UTF-8" in response.text
    assert calls == []


@pytest.mark.anyio
async def test_an_urlencoded_form_in_utf_8_decodes(c: httpx.AsyncClient) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    body = b"name=Zo%C3%AB+%F0%9F%98%80&age=3"
    response = await c.post("/forms/_action/profile", content=body, headers=headers)
    assert response.status_code == 204
    assert calls == [Profile("Zoë 😀", 3)]


def multipart(disposition: bytes, value: bytes, charset: str = "") -> tuple[bytes, dict[str, str]]:
    """A multipart body with a title part, then one part with this disposition and value."""
    body = (
        b'--zzz\r\nContent-Disposition: form-data; name="title"\r\n\r\nt\r\n'
        b"--zzz\r\nContent-Disposition: form-data; "
        + disposition
        + b"\r\n\r\n"
        + value
        + b"\r\n--zzz--\r\n"
    )
    content_type = "multipart/form-data; boundary=zzz" + charset
    return body, {"content-type": content_type}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("disposition", "value", "message"),
    [
        (b'name="note"', b"caf\xe9", "field 'note' is not valid utf-8"),
        (b'name="n\xffte"', b"x", "the name of a part is not valid utf-8"),
        (b'name="file"; filename="\xff.txt"', b"x", "the filename of a part is not valid utf-8"),
    ],
    ids=["value", "name", "filename"],
)
async def test_a_multipart_form_that_is_not_utf_8_is_400(
    c: httpx.AsyncClient, disposition: bytes, value: bytes, message: str
) -> None:
    body, headers = multipart(disposition, value)
    response = await c.post("/forms/_action/upload", content=body, headers=headers)
    assert response.status_code == 400
    assert f"malformed form: {message}" in response.text.replace("&#39;", "'")
    assert calls == []


@pytest.mark.anyio
async def test_multipart_files_are_bytes_and_a_declared_charset_is_honoured(
    c: httpx.AsyncClient,
) -> None:
    body, headers = multipart(b'name="file"; filename="caf\xc3\xa9.bin"', b"\xff\xfe\x00")
    response = await c.post("/forms/_action/upload", content=body, headers=headers)
    assert response.status_code == 204
    assert calls == [("t", "café.bin", b"\xff\xfe\x00")]
    body, headers = multipart(b'name="note"', b"caf\xe9", charset="; charset=latin-1")
    response = await c.post("/forms/_action/raw", content=body, headers=headers)
    assert response.status_code == 204
    assert calls[-1] == [("note", "café"), ("title", "t")]


# -- time limits ---------------------------------------------------------------------------


async def trickled_form(pause: float) -> AsyncIterator[bytes]:
    """A form body that never ends: a byte every ``pause`` seconds."""
    yield b"name=Ada&age=3&note="
    while True:
        await asyncio.sleep(pause)
        yield b"x"


@pytest.mark.anyio
async def test_a_form_that_trickles_past_the_total_is_a_408() -> None:
    app = App(settings=Settings(read_timeout=1.0, body_timeout=0.2))

    @app.page("/slow")
    class Slow(Page):
        def render(self) -> str:
            return ""

        @action
        async def send(self, profile: Profile) -> None:
            calls.append(profile)

    headers = {"content-type": "application/x-www-form-urlencoded"}
    async with client(app) as c:
        response = await c.post("/slow/_action/send", content=trickled_form(0.01), headers=headers)
    assert response.status_code == 408
    assert "the request body took longer than 0.2 s" in response.text
    assert calls == []


SERVER = textwrap.dedent(
    """
    import logging
    import sys
    from dataclasses import dataclass
    from livepages import App, Page, Settings, action
    from livepages.server import run

    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("livepages").setLevel(logging.DEBUG)

    @dataclass
    class Note:
        text: str

    app = App(settings=Settings(read_timeout=1.0, body_timeout=2.0))

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "home"

        @action
        async def note(self, note: Note) -> None:
            pass

    run(app, port=int(sys.argv[1]), log_level="warning")
    """
)
NOTE_HEADERS = (
    b"POST /_action/note HTTP/1.1\r\nHost: localhost\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
)


@dataclass
class Served:
    """A real uvicorn process serving an app with a 1 s gap and a 2 s total for bodies."""

    port: int
    log: Path  # its stderr: livepages logs at debug, uvicorn at warning

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("served")
    script, log = folder / "serve.py", folder / "stderr.log"
    script.write_text(SERVER)
    port = free_port()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, str(script), str(port)], stderr=stderr, text=True
        )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/", process)
        yield Served(port, log)
    finally:
        process.kill()
        process.wait()


def read_answer(sock: socket.socket, until: bytes) -> bytes:
    """What the server sends, until ``until`` arrives or the connection ends (the head
    and the body may come in separate pieces)."""
    sock.settimeout(5)
    answer = b""
    while until not in answer:
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        if not piece:
            break
        answer += piece
    return answer


def test_a_trickled_body_ends_in_408_within_the_total_deadline(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(NOTE_HEADERS + b"{")
        started = time.monotonic()
        # A byte every 0.5 s: each gap is well within the 1 s allowed between pieces.
        while not select.select([sock], [], [], 0.5)[0]:
            assert time.monotonic() - started < 10, "the server never answered"
            sock.sendall(b" ")
        elapsed = time.monotonic() - started
        answer = read_answer(sock, b"the request body took")
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"the request body took longer than 2.0 s" in answer
    # Not before the 2 s total; without it the server would wait for as long as bytes come
    # (the loop above gives up at 10 s), so an answer at all proves the deadline.
    assert elapsed > 1.5
    assert "Traceback" not in served.log.read_text()


# -- a client that leaves mid-body -------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("content_type", "start"),
    [
        ("application/json", b'{"name": "Ad'),
        ("application/x-www-form-urlencoded", b"name=Ad"),
        ("multipart/form-data; boundary=zzz", b'--zzz\r\nContent-Disposition: form-data; name="t'),
    ],
    ids=["json", "urlencoded", "multipart"],
)
async def test_a_client_that_leaves_mid_body_is_a_quiet_debug_line(
    caplog: pytest.LogCaptureFixture, content_type: str, start: bytes
) -> None:
    hooked: list[BaseException] = []
    quiet = App()
    quiet.on_error(lambda request, exc: hooked.append(exc))

    @quiet.page("/leave")
    class Leave(Page):
        def render(self) -> str:
            return ""

        @action
        async def send(self, profile: Profile) -> None:
            calls.append(profile)

    messages: list[Message] = [
        {"type": "http.request", "body": start, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/leave/_action/send",
        "query_string": b"",
        "headers": [(b"content-type", content_type.encode()), (b"host", b"testserver")],
    }
    with caplog.at_level(logging.DEBUG, logger="livepages"):
        await quiet(scope, receive, send)
    assert hooked == []
    assert calls == []
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert "client disconnected during POST /leave/_action/send" in caplog.text
    assert sent[0]["status"] == 499


def test_a_real_server_logs_a_client_that_leaves_mid_body_at_debug_only(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(NOTE_HEADERS + b'{"text": "half')
    started = time.monotonic()
    while "client disconnected during POST /_action/note" not in served.log.read_text():
        assert time.monotonic() - started < 10, served.log.read_text()
        time.sleep(0.05)
    log = served.log.read_text()
    assert "DEBUG livepages: client disconnected during POST /_action/note" in log
    assert "ERROR" not in log
    assert "Traceback" not in log


# -- fuzzing -------------------------------------------------------------------------------

properties = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONTENT_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=zzz",
        "multipart/form-data; boundary=zzz; charset=latin-1",
        "multipart/form-data; boundary=zzz; charset=idna",
        "multipart/form-data; boundary=zzz; charset=nonsense",
        "multipart/form-data",
    ]
)
INTO = st.sampled_from([Profile, Upload, MaybeUpload, dict[str, Any], FormData])


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    """Multipart bodies built from random parts: names, filenames, headers and values."""
    parts = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        name = draw(st.sampled_from([b"title", b"file", b"name", b"age"]) | st.binary(max_size=6))
        disposition = b'form-data; name="' + name + b'"'
        if draw(st.booleans()):
            disposition += b'; filename="' + draw(st.binary(max_size=6)) + b'"'
        headers = b"Content-Disposition: " + disposition
        if draw(st.booleans()):
            headers += b"\r\n" + draw(st.binary(max_size=20))
        parts.append(b"--zzz\r\n" + headers + b"\r\n\r\n" + draw(st.binary(max_size=20)) + b"\r\n")
    ending = draw(st.sampled_from([b"--zzz--\r\n", b"--zzz--", b"", b"--zz"]))
    return b"".join(parts) + ending


def fuzzed_request(content_type: str, body: bytes, pieces: list[int]) -> Request:
    """A real POST request whose body arrives in pieces cut at ``pieces``."""
    cuts = sorted({0, len(body), *(p % (len(body) + 1) for p in pieces)})
    messages: list[Message] = [
        {"type": "http.request", "body": body[a:b], "more_body": b < len(body)}
        for a, b in itertools.pairwise(cuts)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0)

    headers = [(b"content-type", content_type.encode())]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


async def status_of(request: Request, into: Any) -> int:
    """Read the form as an action does: 200 if it decodes, else the status it gets."""
    try:
        if into is FormData:
            await read_form(request, app.settings)
        else:
            await read_input(request, app.settings, into)
    except HTTPException as exc:
        return exc.status_code
    except ValidationError:
        return 422  # or the errors signal, for Datastar
    return 200


@properties
@given(
    CONTENT_TYPES,
    st.binary(max_size=300) | multipart_bodies(),
    st.lists(st.integers(min_value=0), max_size=4),
    INTO,
)
def test_any_form_body_decodes_or_is_a_4xx(
    content_type: str, body: bytes, pieces: list[int], into: Any
) -> None:
    status = asyncio.run(status_of(fuzzed_request(content_type, body, pieces), into))
    assert status == 200 or 400 <= status < 500


@pytest.mark.anyio
async def test_field_and_cross_field_errors_come_back_in_one_response(
    c: httpx.AsyncClient,
) -> None:
    url = "/forms/_action/signup"
    values = {"email": "ann@example.com", "age": "old", "password": "a", "repeat": "b"}
    response = await c.post(url, data=values, headers=DATASTAR)
    assert response.content == patch_signals(
        {
            "errors": {
                "email": "",
                "age": "must be a whole number",
                "password": "",
                "repeat": "does not match",
            }
        }
    )
    # A rule that needs a field that failed is skipped, not guessed at.
    values = {"email": "", "age": "12", "password": "a", "repeat": "a"}
    response = await c.post(url, data=values, headers=DATASTAR)
    assert response.content == patch_signals(
        {"errors": {"email": "is required", "age": "", "password": "", "repeat": ""}}
    )
    assert calls == []


@dataclass
class Filters:
    q: str = ""
    page: int = 1
    tags: list[str] | None = None
    on: bool = False


@given(st.binary(max_size=120))
def test_any_query_string_decodes_or_is_a_400(raw: bytes) -> None:
    request = Request({"type": "http", "method": "GET", "query_string": raw, "headers": []})
    try:
        read_query(request, Filters)
    except HTTPException as exc:
        status = exc.status_code
    else:
        status = 200
    assert status in (200, 400)
