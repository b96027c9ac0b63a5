"""read_signals: where signals come from, typed decoding, and every bad input."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from livepages import Settings
from livepages.datastar import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_SIGNALS_DEPTH,
    DEFAULT_MAX_SIGNALS_SIZE,
    DEFAULT_READ_TIMEOUT,
    SignalsError,
    decode_signals,
    read_body,
    read_signals,
)


@dataclass
class Draft:
    text: str
    count: int = 0


class Search(msgspec.Struct):
    query: str
    page: int


def make_app(into: type[Any] | None = None, max_size: int = 1024 * 1024) -> Starlette:
    async def endpoint(request: Request) -> JSONResponse:
        signals = await read_signals(request, into, max_size=max_size)
        if into is not None:
            return JSONResponse({"repr": repr(signals)})
        return JSONResponse({"signals": signals})

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return Starlette(routes=[Route("/s", endpoint, methods=methods)])


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_read_the_query_parameter(method: str) -> None:
    async with client(make_app()) as c:
        response = await c.request(method, "/s", params={"datastar": '{"a": [1, "x"]}'})
    assert response.json()["signals"] == {"a": [1, "x"]}


@pytest.mark.anyio
async def test_get_without_the_parameter_means_no_signals() -> None:
    async with client(make_app()) as c:
        response = await c.get("/s")
    assert response.status_code == 200
    assert response.json()["signals"] == {}


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_other_methods_read_the_body(method: str) -> None:
    async with client(make_app()) as c:
        response = await c.request(
            method, "/s", content=b'{"b": true}', headers={"content-type": "application/json"}
        )
    assert response.json()["signals"] == {"b": True}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8", None]
)
async def test_content_type_parameters_are_accepted(content_type: str | None) -> None:
    headers = {"content-type": content_type} if content_type else {}
    async with client(make_app()) as c:
        response = await c.post("/s", content='{"name": "Zoë"}'.encode(), headers=headers)
    assert response.json()["signals"] == {"name": "Zoë"}


@pytest.mark.anyio
async def test_empty_body_means_no_signals() -> None:
    async with client(make_app()) as c:
        response = await c.post("/s", content=b"")
    assert response.json()["signals"] == {}


@pytest.mark.anyio
async def test_typed_decoding_into_a_dataclass_and_a_struct() -> None:
    async with client(make_app(Draft)) as c:
        response = await c.post("/s", content=b'{"text": "hi", "extra": 1}')
    assert response.json() == {"repr": "Draft(text='hi', count=0)"}
    async with client(make_app(Search)) as c:
        response = await c.get("/s", params={"datastar": '{"query": "q", "page": 2}'})
    assert response.json() == {"repr": "Search(query='q', page=2)"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "raw", "message"),
    [
        ("POST", b'{"text": ', "not valid JSON"),
        ("POST", b"\xff\xfe", "not valid JSON"),
        ("GET", "{nope", "not valid JSON"),
        ("POST", b"[1, 2]", "JSON object"),
        ("POST", b'"text"', "JSON object"),
    ],
)
async def test_invalid_json_is_a_400(method: str, raw: bytes | str, message: str) -> None:
    async with client(make_app()) as c:
        if method == "GET":
            response = await c.get("/s", params={"datastar": raw})
        else:
            response = await c.post("/s", content=raw)
    assert response.status_code == 400
    assert message in response.text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"text": 3}, "Expected `str`, got `int` - at `$.text`"),
        ({"count": 1}, "missing required field `text`"),
        ({"text": "x", "count": "many"}, "Expected `int`, got `str` - at `$.count`"),
    ],
)
async def test_wrong_types_are_a_400_that_names_the_field(
    body: dict[str, object], message: str
) -> None:
    async with client(make_app(Draft)) as c:
        response = await c.post("/s", content=json.dumps(body).encode())
    assert response.status_code == 400
    assert message in response.text


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.mark.anyio
async def test_an_oversized_body_is_a_413() -> None:
    big = json.dumps({"text": "x" * 2000}).encode()
    async with client(make_app(max_size=1000)) as c:
        declared = await c.post("/s", content=big)
        streamed = await c.post("/s", content=chunks(big[:600], big[600:]))  # no Content-Length
        query = await c.get("/s", params={"datastar": big.decode()})
    for response in (declared, streamed, query):
        assert response.status_code == 413
        assert "larger than 1000 bytes" in response.text


@pytest.mark.anyio
async def test_the_default_limit_is_one_mebibyte() -> None:
    async with client(make_app()) as c:
        ok = await c.post("/s", content=json.dumps({"t": "x" * (1024 * 1024 - 20)}).encode())
        too_big = await c.post("/s", content=json.dumps({"t": "x" * (1024 * 1024)}).encode())
    assert ok.status_code == 200
    assert too_big.status_code == 413


@pytest.mark.anyio
async def test_a_bad_content_length_is_a_400() -> None:
    async with client(make_app()) as c:
        response = await c.post("/s", content=b"{}", headers={"content-length": "-5"})
    assert response.status_code == 400


async def stalls_after(first: bytes, pause: float) -> AsyncIterator[bytes]:
    yield first
    await asyncio.sleep(pause)
    yield b"}"


@pytest.mark.anyio
async def test_a_body_that_stalls_is_a_408() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        body = await read_body(request, 1024, read_timeout=0.05)
        return JSONResponse({"size": len(body)})

    app = Starlette(routes=[Route("/b", endpoint, methods=["POST"])])
    async with client(app) as c:
        stalled = await c.post("/b", content=stalls_after(b'{"a": 1', 1.0))
        prompt = await c.post("/b", content=stalls_after(b'{"a": 1', 0.0))
    assert stalled.status_code == 408
    assert "stalled" in stalled.text
    assert prompt.json() == {"size": 8}


# -- input that does not decode: always a 400, never a 500 --------------------------------

DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.anyio
@pytest.mark.parametrize("into", [None, Draft], ids=["dict", "dataclass"])
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"text": "\xff"}', "not UTF-8"),
        (b'{"\xff": 1, "text": "x"}', "not UTF-8"),
        ('{"text": "Zoë"}'.encode("latin-1"), "not UTF-8"),
        (b"[1, 2]", "object"),
        (DEEP, "nested deeper than 64 levels"),
        (b'{"unknown": ' + DEEP + b', "text": "x"}', "nested deeper than 64 levels"),
    ],
    ids=["bad-byte", "bad-key", "latin-1", "array", "deep-array", "deep-undeclared"],
)
async def test_signals_that_do_not_decode_are_a_400(
    raw: bytes, message: str, into: type[Any] | None
) -> None:
    async with client(make_app(into)) as c:
        response = await c.post("/s", content=raw)
    assert response.status_code == 400
    assert message in response.text


@pytest.mark.anyio
async def test_a_declared_charset_does_not_make_latin_1_json() -> None:
    latin = '{"name": "Zoë"}'.encode("latin-1")
    headers = {"content-type": "application/json; charset=iso-8859-1"}
    async with client(make_app()) as c:
        response = await c.post("/s", content=latin, headers=headers)
    assert response.status_code == 400
    assert response.text == "signals are not valid JSON: not UTF-8 text"


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("datastar=%7B%22text%22%3A%22%FF%22%7D", "not UTF-8"),
        ("datastar=" + "%5B" * 1000 + "%5D" * 1000, "nested deeper than 64 levels"),
    ],
    ids=["bad-byte", "deep"],
)
async def test_the_query_parameter_is_held_to_the_same_rules(
    method: str, query: str, message: str
) -> None:
    async with client(make_app()) as c:
        response = await c.request(method, "/s?" + query)
    assert response.status_code == 400
    assert message in response.text


@pytest.mark.anyio
async def test_the_query_parameter_is_percent_decoded_as_utf_8() -> None:
    query = "other=%FF&datastar=%7B%22a%22%3A+%22Zo%C3%AB%22%7D&datastar=%7B%22b%22%3A1%7D"
    async with client(make_app()) as c:
        response = await c.get("/s?" + query)
    assert response.json()["signals"] == {"b": 1}  # the last one, as Starlette reads it
    async with client(make_app()) as c:
        response = await c.get("/s?" + query.rsplit("&", 1)[0])
    assert response.json()["signals"] == {"a": "Zoë"}


def nested(depth: int) -> bytes:
    """An object ``depth`` levels deep, counting itself."""
    return b'{"a": ' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def test_the_depth_limit_counts_arrays_and_objects() -> None:
    assert decode_signals(nested(64))
    assert decode_signals(b'{"a": ' + b"[" * 63 + b"]" * 63 + b"}")
    for too_deep in (nested(65), b'{"a": ' + b"[" * 64 + b"]" * 64 + b"}"):
        with pytest.raises(SignalsError, match="nested deeper than 64 levels"):
            decode_signals(too_deep)
    assert decode_signals(nested(3), max_depth=3)
    with pytest.raises(SignalsError, match="nested deeper than 2 levels"):
        decode_signals(nested(3), max_depth=2)


@pytest.mark.parametrize(
    "inside",
    [
        "[" * 100,
        '\\"' + "[" * 100,  # an escaped quote does not end the string
        "\\\\" * 3 + "{" * 100,
        "\\u005b" * 100,
    ],
)
def test_brackets_inside_strings_do_not_count(inside: str) -> None:
    raw = ('{"a": "' + inside + '", "b": [[1]]}').encode()
    assert decode_signals(raw)["b"] == [[1]]


@pytest.mark.parametrize(
    "before",
    ['"\\\\", ', '"\\\\\\\\", ', '"x\\"y", ', '"\\"", '],
    ids=["escaped-backslash", "two-escaped-backslashes", "escaped-quote", "only-a-quote"],
)
def test_brackets_after_a_string_with_escapes_count(before: str) -> None:
    raw = ('{"a": [' + before + "[" * 100 + "]" * 100 + "]}").encode()
    with pytest.raises(SignalsError, match="nested deeper"):
        decode_signals(raw)


def test_an_unterminated_string_is_a_400() -> None:
    for raw in (b'{"a": "' + b"[" * 100, b'{"a": "\\', b'{"a": "' + b"\\" * 99):
        with pytest.raises(SignalsError):
            decode_signals(raw)


def test_a_string_with_a_lone_surrogate_is_a_400() -> None:
    with pytest.raises(SignalsError, match="not UTF-8"):
        decode_signals('{"a": "\ud800"}')
    with pytest.raises(SignalsError, match="not valid JSON"):
        decode_signals(b'{"a": "\\ud800"}')


# -- time limits ---------------------------------------------------------------------------


def test_the_documented_defaults() -> None:
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(read_signals).parameters.items()
    }
    assert defaults["max_size"] == DEFAULT_MAX_SIGNALS_SIZE == 1024 * 1024
    assert defaults["max_depth"] == DEFAULT_MAX_SIGNALS_DEPTH == 64
    assert defaults["read_timeout"] == DEFAULT_READ_TIMEOUT == 30.0
    assert defaults["body_timeout"] == DEFAULT_BODY_TIMEOUT == 60.0
    settings = Settings()
    assert settings.max_signals_size == DEFAULT_MAX_SIGNALS_SIZE
    assert settings.max_signals_depth == DEFAULT_MAX_SIGNALS_DEPTH
    assert settings.read_timeout == DEFAULT_READ_TIMEOUT
    assert settings.body_timeout == DEFAULT_BODY_TIMEOUT


async def trickle(pause: float) -> AsyncIterator[bytes]:
    """A body that never ends: a byte every ``pause`` seconds."""
    yield b'{"a": '
    while True:
        await asyncio.sleep(pause)
        yield b" "


@pytest.mark.anyio
async def test_a_body_that_trickles_past_the_total_is_a_408() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        body = await read_body(request, 1024, read_timeout=1.0, body_timeout=0.2)
        return JSONResponse({"size": len(body)})

    app = Starlette(routes=[Route("/b", endpoint, methods=["POST"])])
    async with client(app) as c:
        response = await c.post("/b", content=trickle(0.01))
    assert response.status_code == 408
    assert response.text == "the request body took longer than 0.2 s"


@pytest.mark.anyio
async def test_read_signals_has_both_time_limits() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        read_timeout = float(request.query_params.get("read_timeout", 30))
        body_timeout = float(request.query_params.get("body_timeout", 60))
        signals = await read_signals(request, read_timeout=read_timeout, body_timeout=body_timeout)
        return JSONResponse(signals)

    app = Starlette(routes=[Route("/s", endpoint, methods=["POST"])])
    async with client(app) as c:
        stalled = await c.post("/s?read_timeout=0.05", content=stalls_after(b'{"a": 1', 1.0))
        slow = await c.post("/s?body_timeout=0.2", content=trickle(0.01))
    assert (stalled.status_code, stalled.text) == (408, "the request body stalled for 0.05 s")
    assert (slow.status_code, slow.text) == (408, "the request body took longer than 0.2 s")
