"""A page's presence topic, and how it names its members: planned once, at registration.

A page joins its visitors to a topic by declaring a template over its fields, as an
event declares its subject::

    @app.page("/rooms/{room}")
    class Room(Page):
        room: str
        presence = "chat.{room}"

        def presence_name(self, session: Session[Profile]) -> str:   # optional
            return session.data.name

Each field's value goes in escaped (``livepages.events.subject_token``), so a value
cannot look like another topic. ``presence_name`` takes what ``render`` can take
(``Session``, ``Tab``, ``Request``, signals) from the request of the stream.
"""

from __future__ import annotations

import dataclasses
import string
from dataclasses import dataclass
from typing import Any

from livepages.events import subject_token
from livepages.injection import Injector, Plan
from livepages.pages import Page
from livepages.presence.members import Members

__all__ = ["NAME_METHOD", "PresencePlan", "topic_of"]

#: The page method that gives a member's display name, if the page defines it.
NAME_METHOD = "presence_name"


@dataclass(frozen=True, slots=True)
class PresencePlan:
    """What a page with a ``presence`` topic does with its streams' visitors."""

    #: The topic's template, e.g. ``"chat.{room}"``.
    template: str
    #: How to call ``presence_name``; None: the default name.
    name: Plan | None
    #: Whether ``render`` takes ``Members``: the page then re-renders on every change.
    watched: bool

    def topic(self, page: Page) -> str:
        """The topic of one page: its template filled with the page's escaped fields."""
        return self.template.format_map(_Escaped(page))

    @classmethod
    def build(cls, page: type[Page], render: Plan, injector: Injector) -> PresencePlan | None:
        """The plan of ``page``, None if it has no topic; ``TypeError`` for a bad one."""
        template: Any = page.presence
        if template is None:
            if render.wants(Members):
                raise TypeError(
                    f"{page.__name__}.render() takes Members but the page has no presence "
                    'topic: set presence = "<topic>" on the class'
                )
            return None
        if not isinstance(template, str) or not template:
            raise TypeError(f"{page.__name__}.presence must be a non-empty str, not {template!r}")
        if not page.live:
            raise TypeError(f"{page.__name__} is not live: it has no streams to count present")
        _check_fields(page, template)
        method = getattr(page, NAME_METHOD, None)
        name = injector.plan(method, skip_first=True) if callable(method) else None
        return cls(template, name, render.wants(Members))


def topic_of(page: Page) -> str | None:
    """The presence topic of ``page`` (None if its class declares none)."""
    template = type(page).presence
    return None if template is None else template.format_map(_Escaped(page))


class _Escaped:
    """The page's fields as ``format_map`` reads them: each one a subject token."""

    __slots__ = ("page",)

    def __init__(self, page: Page) -> None:
        self.page = page

    def __getitem__(self, name: str) -> str:
        return subject_token(getattr(self.page, name))


def _check_fields(page: type[Page], template: str) -> None:
    """``TypeError`` unless ``template`` names only fields of ``page``, plainly."""
    known = {f.name for f in dataclasses.fields(page)}  # type: ignore[arg-type]
    where = f"{page.__name__}.presence {template!r}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TypeError(f"{where}: {exc}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            raise TypeError(f"{where}: write plain {{field}}s, without a conversion or spec")
        if name not in known:
            raise TypeError(f"{where}: {{{name}}} is not a field of the page")
