"""Holes: a shared render with stand-ins, filled per viewer, equals each viewer's own render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markupsafe import escape

from livepages.datastar import events
from livepages.holes import Kind, NeedsValue, Probe, Read, StepKind, Template, kind_of, new_nonce
from livepages.shell import root
from livepages.templates import Templates

TEMPLATES = Templates()
PAGE = (
    "<header>{% if me.name %}Hi <b>{{ me.name }}</b>{% else %}guest{% endif %}</header>"
    "<p>{{ shared }}</p><i title=\"{{ me.name }}\">{{ me.tags.get('x', 'none') }}</i>"
)


@dataclass
class Me:
    name: str
    tags: dict[str, str] = field(default_factory=dict)


def own(me: Me, shared: str) -> bytes:
    """What a render for this viewer alone sends."""
    return events.patch_elements(root(TEMPLATES.render_string(PAGE, me=me, shared=shared)))


def shared_render(
    kinds: dict[Read, Kind], args: dict[str, Any], shared: str
) -> tuple[Probe, Template | set[Read] | None]:
    probe = Probe(new_nonce(), kinds, args)
    try:
        html = TEMPLATES.render_string(PAGE, me=probe.answer(Read("me")), shared=shared)
    except NeedsValue:
        return probe, None
    return probe, Template.cut(events.patch_elements(root(html)), probe)


def learn(args: dict[str, Any], shared: str) -> tuple[dict[Read, Kind], Template]:
    """Render until nothing new is learned, as a personal view does."""
    kinds: dict[Read, Kind] = {}
    for _ in range(10):
        probe, template = shared_render(kinds, args, shared)
        kinds |= probe.discovered
        kinds |= dict.fromkeys(probe.needed, Kind.FIXED)
        if isinstance(template, set):
            kinds |= dict.fromkeys(template, Kind.FIXED)
        elif template is not None and not probe.learned:
            return kinds, template
    raise AssertionError("never settled")


def same_group(kinds: dict[Read, Kind], first: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether ``other`` would be in ``first``'s group: every read of the same kind, and
    the same value where the render used it."""
    for read, kind in kinds.items():
        mine, theirs = read.resolve(first), read.resolve(other)
        if kind is Kind.FIXED and mine != theirs:
            return False
        if kind is not Kind.FIXED and kind_of(theirs) is not kind:
            return False
    return True


names = st.text(max_size=12)


@given(names, names, st.text(max_size=30), st.text(max_size=5))
def test_a_filled_template_is_each_viewers_own_render(
    first: str, second: str, shared: str, tag: str
) -> None:
    one = {"me": Me(first, {"x": tag})}
    two = {"me": Me(second)}
    kinds, template = learn(one, shared)
    assert template.fill(template.values(one)) == own(one["me"], shared)
    if same_group(kinds, one, two):
        assert template.fill(template.values(two)) == own(two["me"], shared)


def test_text_printed_escaped_is_a_hole() -> None:
    kinds, template = learn({"me": Me("Ada", {"x": "y"})}, "board")
    name = Read("me", ((StepKind.ATTR, "name"),))
    assert kinds[name] is Kind.TEXT
    assert template.reads[0] == name
    assert len(template.slots) == 3  # the text, the attribute and the tag
    assert b"Ada" not in template.payload
    filled = template.fill(template.values({"me": Me('"Bob"')}))
    assert b"Hi <b>&#34;Bob&#34;</b>" in filled
    assert b'title="&#34;Bob&#34;"' in filled


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Ada", Kind.TEXT),
        ("", Kind.FIXED),  # falsy: a test of it differs
        ("two\nlines", Kind.FIXED),  # splits the event's data lines differently
        (None, Kind.FIXED),
        (3, Kind.FIXED),
        (True, Kind.FIXED),
        ([1], Kind.FIXED),
        (Me("a"), Kind.PROXY),
        ({"a": 1}, Kind.PROXY),
    ],
)
def test_the_kind_of_a_value(value: object, kind: Kind) -> None:
    assert kind_of(value) is kind


@pytest.mark.parametrize(
    "use",
    [
        lambda text: text.upper(),
        lambda text: text[:1],
        lambda text: len(text),
        lambda text: text == "Ada",
        lambda text: hash(text),
        lambda text: str(text),
        lambda text: f"{text}",
        lambda text: "x" + text,
        lambda text: list(text),
        lambda text: "a" in text,
        lambda text: {text: 1},
    ],
)
def test_using_text_other_than_printing_it_needs_its_value(use: Any) -> None:
    probe = Probe(new_nonce(), {}, {"me": Me("Ada")})
    text = probe.answer(Read("me")).name
    with pytest.raises(NeedsValue):
        use(text)
    assert probe.needed == {Read("me", ((StepKind.ATTR, "name"),))}


def test_text_is_true_and_escapes_to_a_hole() -> None:
    probe = Probe("nonce", {}, {"me": Me("Ada")})
    text = probe.answer(Read("me")).name
    assert text
    assert str(escape(text)) == "\x1enonce0\x1e"


def test_a_stand_in_reads_attributes_items_and_gets() -> None:
    probe = Probe(new_nonce(), {}, {"me": Me("Ada", {"x": "1"})})
    me = probe.answer(Read("me"))
    assert str(escape(me.tags.get("x", "none"))) == f"\x1e{probe.nonce}0\x1e"
    assert str(escape(me.tags.get("nope", "none"))) == f"\x1e{probe.nonce}1\x1e"
    with pytest.raises(NeedsValue):
        bool(me)
    with pytest.raises(AttributeError):
        _ = me.missing  # as the viewer's own render would raise
    assert str(Read("me", ((StepKind.GET, ("x", "none")),))) == "me.get('x', 'none')"


def test_a_changed_marker_makes_its_read_need_its_value() -> None:
    probe = Probe(new_nonce(), {}, {"me": Me("Ada")})
    text = probe.answer(Read("me")).name
    marker = str(escape(text))
    for change in (str.lower, str.upper, str.title, str.capitalize, str.swapcase):
        changed = events.patch_elements(root(f"<p>{change(marker)}</p>"))
        assert Template.cut(changed, probe) == {Read("me", ((StepKind.ATTR, "name"),))}
    raw = Template.cut(events.patch_elements(root(f"<p>{str.__str__(text)}</p>")), probe)
    assert isinstance(raw, set)


def test_page_text_cannot_forge_a_hole() -> None:
    probe = Probe(new_nonce(), {}, {"me": Me("Ada")})
    forged = "\x1eAAAAAAAAAA0\x1e"
    template = Template.cut(events.patch_elements(root(f"<p>{forged}</p>")), probe)
    assert isinstance(template, Template)
    assert template.slots == ()
    assert forged.encode() in template.fill(())
