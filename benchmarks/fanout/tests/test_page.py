from __future__ import annotations

from html import escape

import pytest

from benchmarks.fanout.page import (
    PAGE_ENV,
    PageName,
    current_page,
    find_counter,
    render,
    render_site,
    renderer,
    viewer_name,
)
from livepages.datastar import patch_elements


def test_render_is_one_line_board_of_about_2_7_kb() -> None:
    html = render(7)
    assert html.startswith('<div id="board" data-counter="7">')
    assert "\n" not in html
    assert 2600 <= len(html.encode()) <= 2800


def test_renders_differ_only_by_the_counter() -> None:
    assert render(1).replace('"1"', '"2"').replace(">1<", ">2<") == render(2)


@pytest.mark.parametrize("counter", [0, 5, 123456])
def test_find_counter_reads_the_counter_of_an_encoded_event(counter: int) -> None:
    event = patch_elements(render(counter))
    assert find_counter(event) == counter


def test_find_counter_stays_inside_the_given_range() -> None:
    events = patch_elements(render(1)) + patch_elements(render(2))
    first_end = events.find(b"\n\n")
    assert find_counter(events, 0, first_end) == 1
    assert find_counter(events, first_end + 2) == 2


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b": keep-alive comment",
        b'data: elements <div data-counter="12',  # cut before the closing quote
        b'data: elements <div data-counter="x1">',
        b'data: elements <div data-counter="">',
    ],
)
def test_find_counter_without_a_valid_counter_is_none(data: bytes) -> None:
    assert find_counter(data) is None


def test_the_site_page_is_about_5_kb_of_jinja2_html_with_the_counter_first() -> None:
    html = render_site(7)
    assert html.startswith('<div id="site" data-counter="7">')
    assert 4500 <= len(html.encode()) <= 6000
    assert find_counter(patch_elements(html)) == 7


@pytest.mark.parametrize("page", list(PageName))
def test_a_page_greets_its_viewer_escaped_and_nobody_when_shared(page: PageName) -> None:
    render_page = renderer(page)
    name = viewer_name(3)
    assert "<" in name
    assert escape(name) in render_page(1, name)
    assert "Viewer" not in render_page(1, "")


def test_the_page_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PAGE_ENV, raising=False)
    assert current_page() is PageName.BOARD
    monkeypatch.setenv(PAGE_ENV, "site")
    assert current_page() is PageName.SITE
