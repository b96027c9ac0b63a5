"""The SDK's event encoders, option by option, byte for byte."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import pytest
from markupsafe import Markup

from livepages.datastar import (
    execute_script,
    patch_elements,
    patch_signals,
    redirect,
    remove_elements,
    remove_signals,
)


def test_patch_elements_minimal() -> None:
    assert patch_elements('<div id="feed">1</div>') == (
        b'event: datastar-patch-elements\ndata: elements <div id="feed">1</div>\n\n'
    )


def test_patch_elements_with_every_option_in_spec_order() -> None:
    event = patch_elements(
        '<svg id="s"></svg>',
        selector="#feed",
        mode="inner",
        namespace="svg",
        use_view_transition=True,
        view_transition_selector=".card",
        event_id="123",
        retry_duration=2000,
    )
    assert event == (
        b"event: datastar-patch-elements\n"
        b"id: 123\n"
        b"retry: 2000\n"
        b"data: selector #feed\n"
        b"data: mode inner\n"
        b"data: namespace svg\n"
        b"data: useViewTransition true\n"
        b"data: viewTransitionSelector .card\n"
        b'data: elements <svg id="s"></svg>\n'
        b"\n"
    )


@pytest.mark.parametrize("mode", ["inner", "replace", "prepend", "append", "before", "after"])
def test_every_non_default_mode_is_written(mode: str) -> None:
    event = patch_elements("<p>x</p>", selector="#t", mode=mode)  # type: ignore[arg-type]
    assert f"data: mode {mode}\n".encode() in event


def test_defaults_are_omitted() -> None:
    event = patch_elements(
        '<div id="a"></div>', mode="outer", namespace="html", use_view_transition=False
    )
    assert event == b'event: datastar-patch-elements\ndata: elements <div id="a"></div>\n\n'


def test_mathml_namespace() -> None:
    assert b"data: namespace mathml\n" in patch_elements('<math id="m"></math>', namespace="mathml")


def test_multiline_elements_split_on_lf_and_crlf_only() -> None:
    event = patch_elements('<div id="a">\r\n  <b>x</b>\n</div>')
    assert event == (
        b"event: datastar-patch-elements\n"
        b'data: elements <div id="a">\n'
        b"data: elements   <b>x</b>\n"
        b"data: elements </div>\n\n"
    )


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c"])
def test_unicode_line_separators_are_content(separator: str) -> None:
    html = f'<div id="a">one{separator}two</div>'
    event = patch_elements(html)
    assert event == f"event: datastar-patch-elements\ndata: elements {html}\n\n".encode()


def test_a_lone_carriage_return_cannot_start_a_new_field() -> None:
    # An SSE parser ends a line at a lone CR; it must not inject "retry: 1" as a field.
    event = patch_elements('<div id="a">x\rretry: 1</div>')
    assert b"\r" not in event
    assert b"data: elements retry: 1</div>\n" in event


def test_retry_zero_is_written_and_default_is_not() -> None:
    assert b"retry: 0\n" in patch_elements('<i id="a"></i>', retry_duration=0)
    assert b"retry" not in patch_elements('<i id="a"></i>', retry_duration=1000)


def test_negative_retry_is_refused() -> None:
    with pytest.raises(ValueError, match="retry_duration"):
        patch_elements('<i id="a"></i>', retry_duration=-1)


def test_empty_event_id_is_omitted() -> None:
    assert b"id:" not in patch_elements('<i id="a"></i>', event_id="")
    assert b"id: 0\n" in patch_elements('<i id="a"></i>', event_id="0")


@pytest.mark.parametrize("field", ["event_id", "selector", "view_transition_selector"])
def test_line_breaks_in_single_line_fields_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        patch_elements('<i id="a"></i>', **{field: "x\ny"})  # type: ignore[arg-type]


def test_unknown_mode_and_namespace_are_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        patch_elements("<i></i>", mode="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        patch_elements("<i></i>", namespace="xml")  # type: ignore[arg-type]


def test_elements_are_required_unless_removing() -> None:
    with pytest.raises(ValueError, match="required"):
        patch_elements(None)
    with pytest.raises(ValueError, match="selector"):
        patch_elements(mode="remove")


def test_objects_with_dunder_html_are_accepted() -> None:
    assert b'data: elements <b id="m">&lt;x&gt;</b>\n' in patch_elements(
        Markup('<b id="m">{}</b>').format("<x>")
    )


def test_remove_elements() -> None:
    assert remove_elements("#feed, #other") == (
        b"event: datastar-patch-elements\ndata: selector #feed, #other\ndata: mode remove\n\n"
    )
    assert b"data: useViewTransition true\n" in remove_elements("#a", use_view_transition=True)


def test_remove_by_elements_without_selector() -> None:
    assert patch_elements('<div id="first"></div>', mode="remove") == (
        b"event: datastar-patch-elements\ndata: mode remove\n"
        b'data: elements <div id="first"></div>\n\n'
    )


def test_patch_signals_from_a_mapping() -> None:
    assert patch_signals({"one": 1, "two": [True, None]}) == (
        b'event: datastar-patch-signals\ndata: signals {"one":1,"two":[true,null]}\n\n'
    )


def test_patch_signals_with_every_option() -> None:
    assert patch_signals({"a": 1}, only_if_missing=True, event_id="7", retry_duration=10) == (
        b"event: datastar-patch-signals\nid: 7\nretry: 10\n"
        b'data: onlyIfMissing true\ndata: signals {"a":1}\n\n'
    )


@dataclass
class Form:
    name: str
    count: int


class Draft(msgspec.Struct):
    text: str
    tags: list[str]


def test_patch_signals_from_a_dataclass_and_a_struct() -> None:
    assert b'data: signals {"name":"x","count":2}\n' in patch_signals(Form("x", 2))
    assert b'data: signals {"text":"hi","tags":["a"]}\n' in patch_signals(Draft("hi", ["a"]))


def test_a_dataclass_class_is_refused() -> None:
    with pytest.raises(TypeError, match="instance"):
        patch_signals(Form)


def test_strings_in_signals_are_escaped_onto_one_line() -> None:
    assert patch_signals({"one": "first\n signal\u2028"}) == (
        'event: datastar-patch-signals\ndata: signals {"one":"first\\n signal\u2028"}\n\n'.encode()
    )


def test_raw_json_text_is_sent_line_by_line() -> None:
    raw = '{\n"one": "first signal",\r\n"two":  \n"second"}'
    assert patch_signals(raw) == (
        b"event: datastar-patch-signals\n"
        b"data: signals {\n"
        b'data: signals "one": "first signal",\n'
        b'data: signals "two":  \n'
        b'data: signals "second"}\n\n'
    )
    assert patch_signals(b'{"a":1}') == b'event: datastar-patch-signals\ndata: signals {"a":1}\n\n'


def test_remove_signals_turns_paths_into_a_null_merge_patch() -> None:
    assert remove_signals(["user.name", "user.email", "draft"]) == (
        b"event: datastar-patch-signals\n"
        b'data: signals {"user":{"name":null,"email":null},"draft":null}\n\n'
    )
    assert remove_signals("one") == b'event: datastar-patch-signals\ndata: signals {"one":null}\n\n'


def test_remove_signals_needs_a_path() -> None:
    with pytest.raises(ValueError, match="path"):
        remove_signals([])


def test_execute_script_defaults_to_auto_remove() -> None:
    assert execute_script("console.log('hi')") == (
        b"event: datastar-patch-elements\n"
        b"data: selector body\n"
        b"data: mode append\n"
        b"data: elements <script data-effect=\"el.remove()\">console.log('hi')</script>\n\n"
    )


def test_execute_script_attributes_and_no_auto_remove() -> None:
    event = execute_script(
        "go()",
        auto_remove=False,
        attributes={"type": "module", "data-x": 'a"b', "async": True, "defer": False},
        event_id="e",
        retry_duration=0,
    )
    assert event == (
        b"event: datastar-patch-elements\nid: e\nretry: 0\n"
        b"data: selector body\ndata: mode append\n"
        b'data: elements <script type="module" data-x="a&quot;b" async>go()</script>\n\n'
    )
    assert b'<script nonce="n">' in execute_script("x", auto_remove=False, attributes=['nonce="n"'])


def test_multiline_script() -> None:
    assert execute_script("if (a) {\n  b()\n}") == (
        b"event: datastar-patch-elements\ndata: selector body\ndata: mode append\n"
        b'data: elements <script data-effect="el.remove()">if (a) {\n'
        b"data: elements   b()\n"
        b"data: elements }</script>\n\n"
    )


def test_redirect_cannot_break_out_of_the_script() -> None:
    event = redirect("/next?a='b'&c=\"</script><script>alert(1)")
    assert b"</script><script>" not in event
    assert b'window.location.href = "/next?a=\'b\'&c=\\"<\\/script><script>alert(1)"' in event
