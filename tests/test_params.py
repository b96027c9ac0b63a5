"""Typed URL parameters: every supported type, from the path and the query, and back."""

from __future__ import annotations

import datetime
import decimal
import enum
import html
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Optional

import httpx
import pytest
from starlette.types import ASGIApp

from livepages import App, Converter, Page, ParamError
from livepages.params import converter_for, parse_param


def client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


class Color(enum.Enum):
    RED = "red"
    DARK_BLUE = "dark blue"


class Size(enum.IntEnum):
    SMALL = 1
    LARGE = 2


@dataclass(frozen=True)
class Point:
    """A user-defined type that needs its own converter."""

    x: int
    y: int

    @classmethod
    def parse(cls, text: str) -> Point:
        x, y = text.split(",")  # ValueError when there is no single comma
        return cls(int(x), int(y))


PointParam = Annotated[Point, Converter(parse=Point.parse, format=lambda p: f"{p.x},{p.y}")]

UTC = datetime.UTC

# (annotation, value, its text in a URL after quoting)
CASES: list[tuple[Any, Any, str | None]] = [
    (str, "hello world", "hello%20world"),
    (str, "café", "caf%C3%A9"),
    (int, 42, "42"),
    (int, -7, "-7"),
    (float, 2.5, "2.5"),
    (bool, True, "true"),
    (bool, False, "false"),
    (Color, Color.RED, "red"),
    (Color, Color.DARK_BLUE, "dark%20blue"),
    (Size, Size.LARGE, "2"),
    (uuid.UUID, uuid.UUID("12345678-1234-5678-1234-567812345678"), None),
    (datetime.date, datetime.date(2024, 2, 29), "2024-02-29"),
    (datetime.datetime, datetime.datetime(2024, 2, 29, 12, 30), "2024-02-29T12%3A30%3A00"),
    (
        datetime.datetime,
        datetime.datetime(2024, 2, 29, 12, 30, tzinfo=UTC),
        "2024-02-29T12%3A30%3A00%2B00%3A00",  # a raw "+" would read back as a space
    ),
    (decimal.Decimal, decimal.Decimal("3.14"), "3.14"),
    (int | None, 5, "5"),
    (Optional[int], 5, "5"),  # noqa: UP045 - the old spelling must work too
    (PointParam, Point(3, -4), "3%2C-4"),
]
CASE_IDS = [f"{getattr(a, '__name__', a)}-{v}" for a, v, _ in CASES]


def single_param_app(where: str, annotation: Any, default: Any = ...) -> tuple[App, list[Any]]:
    """An app with one page whose only field ``v`` is in the path or the query."""
    app = App()
    seen: list[Any] = []

    def render(self: Any) -> str:
        seen.append(self.v)
        return "ok"

    namespace: dict[str, Any] = {"__annotations__": {"v": annotation}, "render": render}
    if default is not ...:
        namespace["v"] = default
    cls = type("Target", (Page,), namespace)
    app.page("/p/{v}" if where == "path" else "/p")(cls)
    return app, seen


@pytest.mark.anyio
@pytest.mark.parametrize(("annotation", "value", "text"), CASES, ids=CASE_IDS)
async def test_path_param_round_trip(annotation: Any, value: Any, text: str | None) -> None:
    app, seen = single_param_app("path", annotation)
    url = app.pages[0].cls(v=value).url  # type: ignore[call-arg]
    assert url == "/p/" + (text or str(value))
    async with client(app) as c:
        response = await c.get(url)
    assert response.status_code == 200, response.text
    assert seen == [value]
    assert type(seen[0]) is type(value)


@pytest.mark.anyio
@pytest.mark.parametrize(("annotation", "value", "text"), CASES, ids=CASE_IDS)
async def test_query_param_round_trip(annotation: Any, value: Any, text: str | None) -> None:
    app, seen = single_param_app("query", annotation)
    url = app.pages[0].cls(v=value).url  # type: ignore[call-arg]
    # urlencode writes a space as "+" in a query string; both are correct.
    assert url == "/p?v=" + (text or str(value)).replace("%20", "+")
    async with client(app) as c:
        response = await c.get(url)
    assert response.status_code == 200, response.text
    assert seen == [value]
    assert type(seen[0]) is type(value)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("TRUE", True), ("1", True), ("false", False), ("0", False)],
)
async def test_bool_spellings(text: str, value: bool) -> None:
    app, seen = single_param_app("query", bool)
    async with client(app) as c:
        assert (await c.get("/p", params={"v": text})).status_code == 200
    assert seen == [value]


BAD: list[tuple[Any, str, str]] = [
    (int, "abc", "is not an integer"),
    (int, "4.5", "is not an integer"),
    (float, "x1", "is not a number"),
    (bool, "yes", "is not true or false"),
    (Color, "green", "is not one of 'red', 'dark blue'"),
    (Size, "3", "is not one of '1', '2'"),
    (uuid.UUID, "not-a-uuid", "is not a UUID"),
    (datetime.date, "2024-02-30", "is not a date (YYYY-MM-DD)"),
    (datetime.datetime, "yesterday", "is not an ISO 8601 datetime"),
    (decimal.Decimal, "1,5", "is not a decimal number"),
    (int | None, "many", "is not an integer"),
    (PointParam, "3", "is not a valid value"),
]


async def get_error(app: App, url: str) -> tuple[int, str]:
    async with client(app) as c:
        response = await c.get(url)
    return response.status_code, html.unescape(response.text)


@pytest.mark.anyio
@pytest.mark.parametrize(("annotation", "text", "reason"), BAD)
@pytest.mark.parametrize("where", ["path", "query"])
async def test_bad_value_is_400_naming_the_parameter(
    where: str, annotation: Any, text: str, reason: str
) -> None:
    app, seen = single_param_app(where, annotation)
    url = f"/p/{text}" if where == "path" else f"/p?v={text}"
    status, body = await get_error(app, url)
    assert status == 400
    assert f"invalid value for parameter 'v': '{text}' {reason}" in body
    assert seen == []


@pytest.mark.anyio
async def test_converter_name_describes_valid_values() -> None:
    named = Annotated[Point, Converter(parse=Point.parse, name="two integers: x,y")]
    app, _ = single_param_app("path", named)
    status, body = await get_error(app, "/p/oops")
    assert status == 400
    assert "'oops' is not two integers: x,y" in body


@pytest.mark.anyio
async def test_missing_required_query_parameter_is_400() -> None:
    app, seen = single_param_app("query", int)
    status, body = await get_error(app, "/p")
    assert status == 400
    assert "missing query parameter 'v'" in body
    assert seen == []


@pytest.mark.anyio
async def test_absent_query_parameter_takes_its_default() -> None:
    app, seen = single_param_app("query", int, default=7)
    async with client(app) as c:
        assert (await c.get("/p")).status_code == 200
        assert (await c.get("/p?v=8")).status_code == 200
    assert seen == [7, 8]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("annotation", "default"), [(int, 7), (int | None, None), (Color, Color.RED)]
)
async def test_empty_query_value_counts_as_absent(annotation: Any, default: Any) -> None:
    # An empty <input> in a GET form sends "?v=": that is "no value", not a bad one.
    app, seen = single_param_app("query", annotation, default=default)
    async with client(app) as c:
        response = await c.get("/p?v=")
    assert response.status_code == 200, response.text
    assert seen == [default]


@pytest.mark.anyio
async def test_empty_query_value_keeps_an_empty_string() -> None:
    app, seen = single_param_app("query", str, default="x")
    async with client(app) as c:
        assert (await c.get("/p?v=")).status_code == 200
    assert seen == [""]


@pytest.mark.anyio
async def test_empty_required_query_value_is_missing() -> None:
    app, _ = single_param_app("query", int)
    status, body = await get_error(app, "/p?v=")
    assert status == 400
    assert "missing query parameter 'v'" in body


class Opaque:
    pass


@pytest.mark.parametrize(
    "annotation",
    [list[int], dict[str, int], Opaque, int | str, Optional[list[int]], Annotated[Opaque, "x"]],  # noqa: UP045
    ids=["list", "dict", "class", "union", "optional-list", "annotated-without-converter"],
)
def test_unsupported_annotation_fails_at_registration(annotation: Any) -> None:
    with pytest.raises(TypeError, match="no URL converter for"):
        single_param_app("query", annotation)


def test_converter_for_prefers_the_annotated_converter() -> None:
    custom = Converter(parse=str.upper, format=str.lower)
    assert converter_for(Annotated[str, custom]) is custom


def test_parse_param_raises_a_400_naming_the_parameter() -> None:
    with pytest.raises(ParamError) as info:
        parse_param("page", "two", converter_for(int))
    assert info.value.status_code == 400
    assert info.value.detail == "invalid value for parameter 'page': 'two' is not an integer"


def test_converter_errors_other_than_value_errors_propagate() -> None:
    # Only ValueError/TypeError mean "bad input"; anything else is a bug in the converter.
    def broken(text: str) -> int:
        raise KeyError(text)

    with pytest.raises(KeyError):
        parse_param("v", "1", Converter(parse=broken))
