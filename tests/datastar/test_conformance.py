"""The official Datastar SDK golden cases, sent over real HTTP to a real server.

Cases are read from ../shared/datastar-sdk-cases/golden at test time and
compared the way the official Go runner compares them: events in order; the
non-data fields exactly; data lines grouped by their first word, each group
exactly, except ``elements``, which is compared as HTML with attributes sorted.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from livepages.datastar.conformance import create_app
from livepages.testing import LiveServer

GOLDEN = Path(__file__).resolve().parents[3] / "shared" / "datastar-sdk-cases" / "golden"
HEADERS = {"Accept": "text/event-stream", "datastar-request": "true"}

Event = dict[str, list[str]]


def parse_sse(text: str) -> list[Event]:
    """Split an event stream into events of field -> values, as the runner does."""
    events: list[Event] = []
    current: Event = {}
    for line in text.split("\n"):
        if line == "":
            if current:
                events.append(current)
                current = {}
            continue
        if ":" not in line:
            continue
        name, _, value = line.partition(":")
        current.setdefault(name, []).append(value.strip())
    if current:
        events.append(current)
    return events


class _Normalizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tokens.append(f"<{tag} {sorted((k, v or '') for k, v in attrs)}>")

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.tokens.append(data)


def normalize_html(html: str) -> list[str]:
    parser = _Normalizer()
    parser.feed(html.strip())
    parser.close()
    return parser.tokens


def group_data(lines: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for line in lines:
        key, _, content = line.partition(" ")
        groups.setdefault(key, []).append(content)
    return groups


def assert_same_events(expected_text: str, actual_text: str) -> None:
    expected, actual = parse_sse(expected_text), parse_sse(actual_text)
    assert len(actual) == len(expected), actual_text
    for want, got in zip(expected, actual, strict=True):
        assert {k: v for k, v in got.items() if k != "data"} == {
            k: v for k, v in want.items() if k != "data"
        }
        want_data, got_data = group_data(want.get("data", [])), group_data(got.get("data", []))
        assert set(got_data) == set(want_data), actual_text
        for key, lines in want_data.items():
            if key == "elements":
                assert normalize_html("\n".join(got_data[key])) == normalize_html("\n".join(lines))
            else:
                assert got_data[key] == lines


def cases() -> Iterator[tuple[str, str]]:
    for method in ("get", "post"):
        for case in sorted((GOLDEN / method).iterdir()):
            yield method, case.name


def case_ids() -> list[str]:
    return [f"{method}/{name}" for method, name in cases()]


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(create_app()) as live:
        yield live


def test_the_golden_cases_are_present() -> None:
    assert len(list(cases())) == 20


@pytest.mark.parametrize(("method", "name"), list(cases()), ids=case_ids())
def test_golden_case(server: LiveServer, method: str, name: str) -> None:
    case = GOLDEN / method / name
    body = (case / "input.json").read_text()
    expected = (case / "output.txt").read_text()
    if method == "get":
        response = httpx.get(f"{server.url}/test", params={"datastar": body}, headers=HEADERS)
    else:
        response = httpx.post(
            f"{server.url}/test",
            content=body,
            headers={**HEADERS, "Content-Type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream"
    assert_same_events(expected, response.text)


def test_the_comparison_catches_a_wrong_answer() -> None:
    expected = (GOLDEN / "get" / "patchElementsWithAllOptions" / "output.txt").read_text()
    with pytest.raises(AssertionError):
        assert_same_events(expected, expected.replace("retry: 2000", "retry: 1000"))
    with pytest.raises(AssertionError):
        assert_same_events(expected, expected.replace("<div>Merge", "<div>merge"))
    reordered = expected.replace(
        "data: selector div\ndata: mode append", "data: mode append\ndata: selector div"
    )
    assert_same_events(expected, reordered)


def test_malformed_runner_input_is_a_400(server: LiveServer) -> None:
    response = httpx.post(
        f"{server.url}/test", content=b'{"events": 3}', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "events" in response.text
    response = httpx.post(
        f"{server.url}/test",
        content=b'{"events": [{"type": "dance"}]}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "dance" in response.text
