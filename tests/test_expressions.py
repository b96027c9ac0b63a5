"""Python values in Datastar expressions: valid literals, safe in any HTML context."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livepages import Templates, js_value
from livepages.expressions import js_string

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
DANGEROUS = "<>&'\"\u2028\u2029"


@given(JSON)
def test_a_value_round_trips_and_holds_nothing_that_ends_html(value: Any) -> None:
    written = js_value(value)
    assert json.loads(written) == value
    assert not set(written) & set("<>&'\u2028\u2029")


@given(st.text())
def test_a_string_literal_holds_nothing_that_ends_html(text: str) -> None:
    written = js_string(text)
    assert written[0] == written[-1] == "'"
    assert not set(written[1:-1]) & set("<>\n\r\u2028\u2029")
    # Every quote inside is escaped, so the literal cannot end early.
    assert "'" not in written[1:-1].replace("\\\\", "").replace("\\'", "")


@dataclass
class Item:
    name: str
    tags: list[str]


def test_dataclasses_and_markup_breakers() -> None:
    item = Item(name="</script><b>'x'</b>", tags=["a&b"])
    written = js_value(item)
    assert json.loads(written) == {"name": "</script><b>'x'</b>", "tags": ["a&b"]}
    assert "</script>" not in written


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, object(), 1j])
def test_what_json_cannot_hold_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        js_value(bad)


@given(st.text(alphabet=st.sampled_from(DANGEROUS + "ab"), max_size=20))
def test_the_js_filter_in_an_attribute_gives_the_literal_back_to_the_browser(name: str) -> None:
    templates = Templates()
    rendered = templates.render_string(
        '<li data-on:click="$picked = {{ name | js }}"></li>', name=name
    )
    attribute = rendered.split('data-on:click="', 1)[1].rsplit('"></li>', 1)[0]
    assert '"' not in attribute  # the attribute cannot end early
    expression = html.unescape(attribute)  # what the browser hands to Datastar
    assert expression == "$picked = " + js_value(name)
    assert json.loads(expression.removeprefix("$picked = ")) == name
