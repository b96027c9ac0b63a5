"""Encoders for Datastar server-sent events.

Every function returns the finished event as ``bytes``, ready to be written to a
``text/event-stream`` response. Encoding once and writing the same bytes to many
clients is what makes fan-out cheap, so nothing here depends on a connection.

The wire format follows the Datastar SDK specification (the ADR) byte for byte:

1. ``event: <type>``
2. ``id: <event id>`` when an id is given (an empty id is omitted, as in the Go SDK)
3. ``retry: <ms>`` unless it is the default of 1000 (so ``retry: 0`` is written)
4. one ``data: <key> <value>`` line per option and per line of content
5. an empty line
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import msgspec

__all__ = [
    "DEFAULT_RETRY_DURATION",
    "ElementPatchMode",
    "Namespace",
    "execute_script",
    "patch_elements",
    "patch_signals",
    "redirect",
    "remove_elements",
    "remove_signals",
]

DEFAULT_RETRY_DURATION = 1000

ElementPatchMode: TypeAlias = Literal[
    "outer", "inner", "replace", "prepend", "append", "before", "after", "remove"
]
Namespace: TypeAlias = Literal["html", "svg", "mathml"]

_MODES = frozenset(("outer", "inner", "replace", "prepend", "append", "before", "after", "remove"))
_NAMESPACES = frozenset(("html", "svg", "mathml"))

_PATCH_ELEMENTS = b"event: datastar-patch-elements\n"
_PATCH_SIGNALS = b"event: datastar-patch-signals\n"

_json_encoder = msgspec.json.Encoder()


@runtime_checkable
class HasHTML(Protocol):
    """Anything with ``__html__`` (Jinja2 ``Markup``, htpy elements, ...)."""

    def __html__(self) -> str: ...


def _header(event: bytes, event_id: str | None, retry_duration: int) -> bytes:
    """The ``event:``, ``id:`` and ``retry:`` lines, in the order the spec fixes."""
    if not event_id and retry_duration == DEFAULT_RETRY_DURATION:
        return event
    parts = [event]
    if event_id:
        _check_single_line("event_id", event_id)
        parts.append(b"id: " + event_id.encode() + b"\n")
    if retry_duration != DEFAULT_RETRY_DURATION:
        if retry_duration < 0:
            raise ValueError(f"retry_duration must be >= 0, got {retry_duration}")
        parts.append(b"retry: %d\n" % retry_duration)
    return b"".join(parts)


def _data_lines(key: bytes, body: bytes) -> bytes:
    """Prefix every line of ``body`` with ``data: <key> `` (``key`` ends in a space).

    Lines end at ``\\n`` and ``\\r\\n``. A lone ``\\r`` also ends a line, because
    an SSE parser treats it as one: left in place it would let content start a
    new field. Unicode separators (U+2028, U+2029, NEL, form feed) are content,
    not line ends, unlike ``str.splitlines``. Working on UTF-8 bytes keeps this
    to a couple of memchr-speed scans for the common one-line case.
    """
    if b"\r" in body:
        body = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    prefix = b"data: " + key
    if b"\n" in body:
        body = body.replace(b"\n", b"\n" + prefix)
    return prefix + body + b"\n"


def _check_single_line(name: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise ValueError(f"{name} must not contain a line break: {value!r}")


def patch_elements(
    elements: str | HasHTML | None = None,
    *,
    selector: str | None = None,
    mode: ElementPatchMode = "outer",
    namespace: Namespace = "html",
    use_view_transition: bool = False,
    view_transition_selector: str | None = None,
    event_id: str | None = None,
    retry_duration: int = DEFAULT_RETRY_DURATION,
) -> bytes:
    """Encode a ``datastar-patch-elements`` event.

    ``elements`` is one or more complete HTML elements (a string or anything with
    ``__html__``). Without a ``selector`` each top-level element needs an ``id``.
    Options equal to their defaults are left out of the event.
    """
    if mode not in _MODES:
        raise ValueError(f"unknown patch mode {mode!r}")
    if namespace not in _NAMESPACES:
        raise ValueError(f"unknown namespace {namespace!r}")
    if elements is None and mode != "remove":
        raise ValueError("elements are required unless mode is 'remove'")
    if elements is None and selector is None:
        raise ValueError("remove needs a selector or elements")
    parts = [_header(_PATCH_ELEMENTS, event_id, retry_duration)]
    if selector:
        _check_single_line("selector", selector)
        parts.append(b"data: selector " + selector.encode() + b"\n")
    if mode != "outer":
        parts.append(b"data: mode " + mode.encode() + b"\n")
    if namespace != "html":
        parts.append(b"data: namespace " + namespace.encode() + b"\n")
    if use_view_transition:
        parts.append(b"data: useViewTransition true\n")
    if view_transition_selector:
        _check_single_line("view_transition_selector", view_transition_selector)
        parts.append(b"data: viewTransitionSelector " + view_transition_selector.encode() + b"\n")
    if elements is not None:
        html = elements if isinstance(elements, str) else elements.__html__()
        if html:
            parts.append(_data_lines(b"elements ", html.encode()))
    parts.append(b"\n")
    return b"".join(parts)


def remove_elements(
    selector: str,
    *,
    use_view_transition: bool = False,
    view_transition_selector: str | None = None,
    event_id: str | None = None,
    retry_duration: int = DEFAULT_RETRY_DURATION,
) -> bytes:
    """Encode a patch that removes every element matching ``selector``."""
    return patch_elements(
        selector=selector,
        mode="remove",
        use_view_transition=use_view_transition,
        view_transition_selector=view_transition_selector,
        event_id=event_id,
        retry_duration=retry_duration,
    )


def _signals_json(signals: object) -> bytes:
    if isinstance(signals, str):
        return signals.encode()
    if isinstance(signals, bytes):
        return signals
    return _json_encoder.encode(signals)


def patch_signals(
    signals: Mapping[str, Any] | msgspec.Struct | str | bytes | object,
    *,
    only_if_missing: bool = False,
    event_id: str | None = None,
    retry_duration: int = DEFAULT_RETRY_DURATION,
) -> bytes:
    """Encode a ``datastar-patch-signals`` event (an RFC 7386 JSON merge patch).

    ``signals`` is a mapping, a dataclass or msgspec Struct (encoded as compact
    JSON), or JSON text given as ``str``/``bytes`` and sent as it is, line by line.
    """
    if dataclasses.is_dataclass(signals) and isinstance(signals, type):
        raise TypeError("patch_signals takes a dataclass instance, not the class")
    body = _signals_json(signals)
    out = _header(_PATCH_SIGNALS, event_id, retry_duration)
    if only_if_missing:
        out += b"data: onlyIfMissing true\n"
    return out + _data_lines(b"signals ", body) + b"\n"


def remove_signals(
    paths: str | Iterable[str],
    *,
    event_id: str | None = None,
    retry_duration: int = DEFAULT_RETRY_DURATION,
) -> bytes:
    """Encode a patch that removes signals: each dotted path becomes ``null``.

    ``remove_signals(["user.name", "draft"])`` sends
    ``{"user":{"name":null},"draft":null}``.
    """
    patch: dict[str, Any] = {}
    for path in [paths] if isinstance(paths, str) else paths:
        node = patch
        *parents, leaf = path.split(".")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = None
    if not patch:
        raise ValueError("remove_signals needs at least one path")
    return patch_signals(patch, event_id=event_id, retry_duration=retry_duration)


def _script_attributes(attributes: Mapping[str, str | bool] | Iterable[str] | None) -> str:
    if attributes is None:
        return ""
    if isinstance(attributes, Mapping):
        parts = []
        for name, value in attributes.items():
            if value is True:
                parts.append(escape(name))
            elif value is not False:
                parts.append(f'{escape(name)}="{escape(value)}"')
        return "".join(" " + part for part in parts)
    return "".join(" " + attribute for attribute in attributes)


def execute_script(
    script: str,
    *,
    auto_remove: bool = True,
    attributes: Mapping[str, str | bool] | Iterable[str] | None = None,
    event_id: str | None = None,
    retry_duration: int = DEFAULT_RETRY_DURATION,
) -> bytes:
    """Encode an event that runs ``script`` in the browser.

    The script is appended to ``<body>`` as a ``<script>`` element. With
    ``auto_remove`` (the default) it carries ``data-effect="el.remove()"`` and
    removes itself after running. ``attributes`` is a mapping (values escaped;
    ``True`` gives a bare attribute) or ready-made ``name="value"`` strings.
    """
    attrs = ' data-effect="el.remove()"' if auto_remove else ""
    attrs += _script_attributes(attributes)
    return patch_elements(
        f"<script{attrs}>{script}</script>",
        selector="body",
        mode="append",
        event_id=event_id,
        retry_duration=retry_duration,
    )


def redirect(
    url: str, *, event_id: str | None = None, retry_duration: int = DEFAULT_RETRY_DURATION
) -> bytes:
    """Encode an event that sends the browser to ``url``.

    The URL is written as a JSON string, so quotes and ``</script>`` in it
    cannot break out of the script.
    """
    target = _json_encoder.encode(url).decode().replace("</", "<\\/")
    return execute_script(
        f"setTimeout(() => window.location.href = {target})",
        event_id=event_id,
        retry_duration=retry_duration,
    )
