"""Python values written into Datastar expressions, escaped for any HTML context.

A Datastar expression is JavaScript inside an HTML attribute
(``data-on:click="$picked = 'a'"``), so a value put into one must be a correct
JavaScript literal *and* must not end the attribute or the document's script.
:func:`js_value` (the ``js`` filter in templates) writes any JSON-like value;
:func:`js_string` a string in single quotes::

    <li data-on:click="$picked = {{ item.name | js }}">{{ item.name }}</li>

Both escape ``<``, ``>``, ``&``, quotes and the line separators U+2028/U+2029,
so the result is safe in an attribute (after the template's HTML escaping), in
a ``<script>`` element and in a Datastar ``execute_script`` event alike.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["js_string", "js_value"]

_STRING_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    "<": "\\x3c",
    ">": "\\x3e",
}
_STRING_TABLE = str.maketrans(_STRING_ESCAPES)

# JSON is JavaScript once these can no longer close a tag, an attribute or a line.
_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_JSON_TABLE = str.maketrans(_JSON_ESCAPES)


def js_string(text: str) -> str:
    """``text`` as a single-quoted JavaScript string literal, safe in any HTML context."""
    return "'" + text.translate(_STRING_TABLE) + "'"


def js_value(value: Any) -> str:
    """``value`` as a JavaScript literal: str, numbers, bools, None, lists, dicts,
    dataclasses and msgspec Structs (as JSON), safe in any HTML context.

    ``TypeError`` for what JSON cannot hold, and for NaN and infinities, which
    JSON would quietly turn into ``null``.
    """
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise TypeError(f"{value!r} has no JSON form")
    try:
        encoded = msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"cannot write {value!r} into an expression: {exc}") from None
    return encoded.translate(_JSON_TABLE)
