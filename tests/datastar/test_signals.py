"""read_signals: where signals come from, typed decoding, and every bad input."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message

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


# -- properties and fuzzing -----------------------------------------------------------------

properties = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text rich in what a bracket scanner could trip on: brackets, quotes, backslashes,
# and characters json.dumps escapes (controls, non-ASCII).
tricky_text = st.text(
    st.sampled_from('[]{}"\\/ aé\n\t\x00\u2028\ufeff\U0001f600')
    | st.characters(exclude_categories=["Cs"]),
    max_size=8,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


def depth(value: object) -> int:
    """How many arrays and objects nest at the deepest point of ``value``."""
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@properties
@given(json_values, st.integers(min_value=1, max_value=12), st.booleans())
def test_the_depth_limit_agrees_with_the_real_nesting(
    value: object, limit: int, ascii_only: bool
) -> None:
    raw = json.dumps({"v": value}, ensure_ascii=ascii_only).encode()
    if depth({"v": value}) <= limit:
        assert decode_signals(raw, max_depth=limit) == {"v": value}
    else:
        with pytest.raises(SignalsError, match=f"nested deeper than {limit} levels"):
            decode_signals(raw, max_depth=limit)


def decodes_or_4xx(raw: bytes | str, into: type[Any] | None) -> None:
    """``decode_signals`` gives a value or a 4xx error: nothing else escapes."""
    try:
        decode_signals(raw, into)
    except HTTPException as exc:
        status = exc.status_code
    else:
        status = 200
    assert status == 200 or 400 <= status < 500


@properties
@given(st.binary(max_size=300), st.sampled_from([None, Draft, Search, dict[str, int]]))
def test_any_bytes_decode_or_are_a_400(raw: bytes, into: type[Any] | None) -> None:
    decodes_or_4xx(raw, into)


@properties
@given(st.text(st.characters(), max_size=50))
def test_any_text_decodes_or_is_a_400(raw: str) -> None:
    decodes_or_4xx(raw, None)


ODD_WHITESPACE = st.sampled_from(
    ["", " ", "\t", "\r\n", "\x0b", "\x0c", "\xa0", "\u2028", "\ufeff"]
)
BOMS = st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"])
ENCODINGS = st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1", "cp1252"])


@st.composite
def mangled_json(draw: st.DrawFn) -> bytes:
    """JSON made odd: escapes of lone surrogates, huge numbers, odd whitespace
    between tokens, byte order marks, other encodings, deep or cut-off nesting."""
    text = json.dumps({"v": draw(json_values)}, ensure_ascii=draw(st.booleans()))
    extra = draw(
        st.sampled_from(
            [
                "",
                '"\\ud800"',
                '"\\udc00\\ud800"',
                "1" * 5000,
                "-1e99999",
                "1e-99999",
                "0." + "9" * 400,
                "[" * 70 + "]" * 70,
                "[" * 70,
                '"\\',
            ]
        )
    )
    if extra:
        text = text[:-1] + ', "x": ' + extra + "}"
    space = draw(ODD_WHITESPACE)
    for token in draw(st.sets(st.sampled_from([",", ":", "{", "}", "[", "]"]))):
        text = text.replace(token, space + token + space)
    if draw(st.booleans()):
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut]
    encoding = draw(ENCODINGS)
    encoded = text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")
    return draw(BOMS) + encoded


@properties
@given(mangled_json(), st.sampled_from([None, Draft]))
def test_mangled_json_decodes_or_is_a_400(raw: bytes, into: type[Any] | None) -> None:
    decodes_or_4xx(raw, into)


def fuzzed_request(method: str, query: bytes, body: bytes, pieces: list[int]) -> Request:
    """A real Starlette request whose body arrives in pieces cut at ``pieces``."""
    cuts = sorted({0, len(body), *(p % (len(body) + 1) for p in pieces)})
    messages: list[Message] = [
        {"type": "http.request", "body": body[a:b], "more_body": b < len(body)}
        for a, b in itertools.pairwise(cuts)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return messages.pop(0)

    scope = {"type": "http", "method": method, "query_string": query, "headers": []}
    return Request(scope, receive)


@properties
@given(
    st.sampled_from(["GET", "DELETE", "POST", "PUT", "PATCH"]),
    st.binary(max_size=100) | st.builds(lambda b: b"datastar=" + b, st.binary(max_size=100)),
    st.binary(max_size=200) | mangled_json(),
    st.lists(st.integers(min_value=0), max_size=4),
    st.sampled_from([None, Draft]),
)
def test_read_signals_gives_signals_or_a_4xx(
    method: str, query: bytes, body: bytes, pieces: list[int], into: type[Any] | None
) -> None:
    request = fuzzed_request(method, query, body, pieces)
    try:
        asyncio.run(read_signals(request, into, max_size=250))
    except HTTPException as exc:
        status = exc.status_code
    else:
        status = 200
    assert status == 200 or 400 <= status < 500
