"""The error overlay: problems from exceptions, their JSON, and escaped HTML."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from livepages.dev.overlay import MAX_TEXT, Problem, hide_event, overlay_html, show_event


def test_a_syntax_error_is_located_at_its_line() -> None:
    try:
        compile("x = 1\ndef broken(:\n", "/app/site.py", "exec")
    except SyntaxError as exc:
        problem = Problem.from_exception(exc)
    assert problem.where == "/app/site.py:2"
    assert problem.code == "def broken(:"
    assert "SyntaxError" in problem.title


def test_a_runtime_error_is_located_in_the_apps_own_code() -> None:
    def fail() -> None:
        raise ValueError("<b>bad</b>")

    try:
        fail()
    except ValueError as exc:
        problem = Problem.from_exception(exc)
    assert problem.file == __file__
    assert problem.code == 'raise ValueError("<b>bad</b>")'
    html = overlay_html(problem)
    assert "<b>bad</b>" not in html  # escaped
    assert "&lt;b&gt;bad&lt;/b&gt;" in html


def test_show_replaces_any_earlier_overlay() -> None:
    event = show_event(Problem(title="t"))
    assert event.startswith(hide_event())
    assert b"data: selector body\ndata: mode append" in event


@given(st.binary())
def test_decoding_arbitrary_bytes_gives_a_problem_or_a_value_error(data: bytes) -> None:
    with contextlib.suppress(ValueError):
        Problem.decode(data)


@given(st.builds(Problem, title=st.text(), text=st.text(), line=st.none() | st.integers()))
def test_problems_round_trip_through_json(problem: Problem) -> None:
    assert Problem.decode(problem.encode()) == problem


def test_only_the_end_of_a_long_text_is_shown() -> None:
    text = "early " + "x" * MAX_TEXT + " late"
    html = overlay_html(Problem(title="t", text=text))
    assert "late" in html
    assert "early" not in html
