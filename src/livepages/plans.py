"""Plans: what livepages works out once, at registration, about a page or an action.

A :class:`PagePlan` holds everything a request or a live render needs to know
about one page class: its URL spec, how to call ``render`` and each hook,
its event subscriptions, how widely one render can be shared
(:class:`LiveScope`) and its actions. Nothing is looked up by name later, so a
mistake in a page (an unknown annotation, two signal parameters) fails at
import, not on the first request.
"""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from livepages.actions import ActionSpec, action_spec
from livepages.builds import check_kept
from livepages.events import TAB, USER, Handler, handlers_of
from livepages.injection import Injector, Param, Plan
from livepages.inputs import field_names
from livepages.pages import Page, PageSpec
from livepages.presence.topic import PresencePlan
from livepages.reflect import Reflection, reflection
from livepages.registration import Kind, RegistrationError
from livepages.tabs import Tab

__all__ = ["ActionEntry", "Hook", "LiveScope", "PagePlan", "Subscription", "plan_action"]


class LiveScope(enum.Enum):
    """How widely one render of a page can be shared between viewers."""

    #: Every viewer of the same URL sees the same render.
    SHARED = "shared"
    #: The render depends on the session (``Session``, ``USER`` bindings).
    SESSION = "session"
    #: The render depends on the tab (``Tab``, ``Request``, ``TAB`` bindings).
    TAB = "tab"


class Hook(enum.Enum):
    """The methods a page may define to hear about its streams."""

    OPENED = "opened"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ActionEntry:
    """A registered action: its spec, its argument plan, and its input's field names."""

    spec: ActionSpec
    plan: Plan
    #: The keys of the ``errors`` signal the action's input can patch.
    fields: tuple[str, ...]


def plan_action(
    func: Callable[..., Any], spec: ActionSpec, injector: Injector, *, method: bool = False
) -> ActionEntry:
    """Plan once what every call of an action needs (``method``: a page's, called with
    the page as its first argument)."""
    plan = injector.plan(func, skip_first=method)
    signals = plan.signals
    return ActionEntry(spec, plan, field_names(signals.annotation) if signals else ())


@dataclass(frozen=True, slots=True)
class Subscription:
    """One ``@on`` binding of a page: re-render (``plan`` None) or call a handler."""

    handler: Handler
    plan: Plan | None


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity
class PagePlan:
    """Everything worked out once about one registered page class."""

    spec: PageSpec
    render: Plan
    subscriptions: tuple[Subscription, ...]
    scope: LiveScope
    hooks: Mapping[Hook, Plan]
    actions: Mapping[str, ActionEntry]
    #: Its presence topic and how it names members; None without a topic.
    presence: PresencePlan | None = None
    #: Its query fields mirrored by signals (``livepages.reflect``); None without any.
    reflection: Reflection | None = None
    #: The render's parameters that make it personal (``Session``, ``Tab``) when
    #: nothing else does: its live renders are shared, with holes (``livepages.holes``).
    personal: tuple[str, ...] = ()

    @property
    def cls(self) -> type[Page]:
        """The page class."""
        return self.spec.cls

    @classmethod
    def build(cls, page: type[Page], path: str, injector: Injector) -> PagePlan:
        """Inspect ``page`` registered at ``path``; ``TypeError`` for what cannot work."""
        spec = PageSpec.build(page, path)  # its parameters first: they shape the rest
        render = getattr(page, "render", None)
        if render is None:
            message = f"{page.__name__} needs a render() method"
            raise RegistrationError(message, page, kind=Kind.DEFINITION)
        try:
            check_kept(page.kept_signals)
        except ValueError as exc:
            raise RegistrationError(f"{page.__name__}: {exc}", page, kind=Kind.DEFINITION) from None
        render_plan = injector.plan(render, skip_first=True)
        subscriptions = tuple(_subscriptions(page, injector))
        hooks = {
            hook: injector.plan(getattr(page, hook.value), skip_first=True)
            for hook in Hook
            if callable(getattr(page, hook.value, None))
        }
        actions = {}
        for _, member in inspect.getmembers(page):
            marked = action_spec(member)
            if marked is not None:
                actions[marked.name] = plan_action(member, marked, injector, method=True)
        return cls(
            spec=spec,
            render=render_plan,
            subscriptions=subscriptions,
            scope=live_scope(render_plan, subscriptions),
            personal=personal_params(render_plan, subscriptions, hooks),
            hooks=hooks,
            actions=actions,
            presence=PresencePlan.build(page, render_plan, injector),
            reflection=_reflection(spec),
        )


def _reflection(spec: PageSpec) -> Reflection | None:
    try:
        return reflection(spec)
    except TypeError as exc:
        raise RegistrationError(str(exc), spec.cls, kind=Kind.PARAMETER) from None


def _subscriptions(page: type[Page], injector: Injector) -> list[Subscription]:
    planned = []
    for handler, method in handlers_of(page):
        plan = None if method is None else injector.plan(method, skip_first=True, events=True)
        planned.append(Subscription(handler, plan))
    return planned


def live_scope(render: Plan, subscriptions: tuple[Subscription, ...]) -> LiveScope:
    """How widely one render can be shared, from what the render and bindings ask for."""
    bindings = [s.handler.bindings.values() for s in subscriptions]
    if render.wants(Tab) or render.wants(Request) or any(TAB in b for b in bindings):
        return LiveScope.TAB
    per_session = any(USER in b for b in bindings) or any(_personal(p) for p in render.params)
    return LiveScope.SESSION if per_session else LiveScope.SHARED


def personal_params(
    render: Plan, subscriptions: tuple[Subscription, ...], hooks: Mapping[Hook, Plan]
) -> tuple[str, ...]:
    """The render's ``Session`` and ``Tab`` parameters, when only they make its page
    personal; () otherwise. A ``Request``, a ``TAB`` or ``USER`` binding, or a handler
    or hook that takes the session or the tab needs a view per viewer as before."""
    names = tuple(p.name for p in render.params if _personal(p))
    if not names or render.wants(Request):
        return ()
    for subscription in subscriptions:
        if {TAB, USER} & set(subscription.handler.bindings.values()):
            return ()
    others = [s.plan for s in subscriptions if s.plan is not None] + list(hooks.values())
    if any(_personal(p) or p.annotation is Request for plan in others for p in plan.params):
        return ()
    return names


def _personal(param: Param) -> bool:
    """Whether a parameter is the viewer's ``Tab`` or ``Session``."""
    annotation = param.annotation
    if annotation is Tab:
        return True
    return bool(
        getattr(typing.get_origin(annotation) or annotation, "__livepages_session__", False)
    )
