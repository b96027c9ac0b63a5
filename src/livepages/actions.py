"""Actions: methods (or app-wide functions) that the browser calls with Datastar.

::

    @action
    async def send(self, draft: Draft, sse: SSE) -> None: ...

    @action(method="DELETE")
    async def remove(self) -> None: ...

In a template, ``{{ action(page.send) }}`` renders the Datastar expression that
calls it, e.g. ``@post('/rooms/42/_action/send', {headers: {...}})``, with the
CSRF header added by the framework. In Python the same builder is ``invoke``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from livepages.expressions import js_string
from livepages.pages import Page, page_spec, root_path
from livepages.protocol import ACTION_PREFIX, CSRF_HEADER, CSRF_SIGNAL, TAB_HEADER, TAB_SIGNAL

__all__ = [
    "ActionSpec",
    "action",
    "invoke",
]

F = TypeVar("F", bound=Callable[..., Any])
Method = Literal["POST", "PUT", "PATCH", "DELETE"]
Retry = Literal["auto", "error", "always", "never"]

ACTION_ATTR = "__livepages_action__"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action's name, HTTP method, and whether it needs a signed-in user."""

    name: str
    method: Method
    auth: bool = False


@overload
def action(func: F, /) -> F: ...
@overload
def action(
    *, method: Method = "POST", name: str | None = None, auth: bool = False
) -> Callable[[F], F]: ...
def action(
    func: F | None = None,
    /,
    *,
    method: Method = "POST",
    name: str | None = None,
    auth: bool = False,
) -> F | Callable[[F], F]:
    """Mark a page method (or, with ``app.action``, a function) as an action.

    ``auth=True`` refuses callers who are not signed in (403); actions of a page
    with ``auth = True`` need a signed-in user anyway.
    """
    if method not in ("POST", "PUT", "PATCH", "DELETE"):
        raise ValueError(f"actions use POST, PUT, PATCH or DELETE, not {method!r}")

    def mark(f: F) -> F:
        setattr(f, ACTION_ATTR, ActionSpec(name or f.__name__, method, auth))
        return f

    return mark(func) if func is not None else mark


def action_spec(func: Any) -> ActionSpec | None:
    """The spec of a marked action (function or bound method), else None."""
    target = getattr(func, "__func__", func)
    spec = getattr(target, ACTION_ATTR, None)
    return spec if isinstance(spec, ActionSpec) else None


def _js_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return js_string(value)
    raise TypeError(f"cannot write {value!r} as a Datastar option")


def action_url(target: Callable[..., Any]) -> tuple[str, ActionSpec]:
    """The URL and spec of a bound page action or an app-wide action function."""
    spec = action_spec(target)
    if spec is None:
        raise TypeError(f"{target!r} is not an action (decorate it with @action)")
    page = getattr(target, "__self__", None)
    if isinstance(page, Page):
        return page_spec(type(page)).url_for(page, ACTION_PREFIX + spec.name), spec
    if page is not None:
        raise TypeError(f"{target!r} is bound to {page!r}, which is not a page")
    if _defined_in_class(target):
        # Page.send, not page.send: it would silently become an app-wide URL.
        raise TypeError(
            f"{target.__qualname__} is a page action: call it on a page, "
            f"action(page.{target.__name__})"
        )
    return root_path.get() + ACTION_PREFIX + spec.name, spec


def _defined_in_class(func: Callable[..., Any]) -> bool:
    """Whether ``func`` was defined in a class body (``Room.send``)."""
    scopes = getattr(func, "__qualname__", "").split(".")
    return len(scopes) > 1 and scopes[-2] != "<locals>"


def invoke(
    target: Callable[..., Any],
    *,
    form: bool = False,
    selector: str | None = None,
    include: str | None = None,
    exclude: str | None = None,
    headers: Mapping[str, str] | None = None,
    open_when_hidden: bool | None = None,
    retry: Retry | None = None,
    retry_interval: int | None = None,
    retry_scaler: float | None = None,
    retry_max_wait: int | None = None,
    retry_max_count: int | None = None,
    request_cancellation: Literal["auto", "disabled"] | None = None,
) -> str:
    """The Datastar expression that calls an action, CSRF header included.

    ``form=True`` sends the closest form (or ``selector``'s) instead of signals;
    ``include``/``exclude`` are regular expressions that filter the signals sent;
    the ``retry*`` options tune Datastar's retries. The result is plain text:
    the template engine escapes it for the attribute it lands in.
    """
    url, spec = action_url(target)
    header_items = [
        f"{js_string(CSRF_HEADER)}: ${CSRF_SIGNAL}",
        f"{js_string(TAB_HEADER)}: ${TAB_SIGNAL}",
    ]
    header_items += [f"{js_string(k)}: {js_string(v)}" for k, v in (headers or {}).items()]
    options = ["headers: {" + ", ".join(header_items) + "}"]
    if form:
        options.append("contentType: 'form'")
    if selector is not None:
        options.append(f"selector: {js_string(selector)}")
    filters = []
    if include is not None:
        filters.append(f"include: new RegExp({js_string(include)})")
    if exclude is not None:
        filters.append(f"exclude: new RegExp({js_string(exclude)})")
    if filters:
        options.append("filterSignals: {" + ", ".join(filters) + "}")
    named = {
        "openWhenHidden": open_when_hidden,
        "retry": retry,
        "retryInterval": retry_interval,
        "retryScaler": retry_scaler,
        "retryMaxWait": retry_max_wait,
        "retryMaxCount": retry_max_count,
        "requestCancellation": request_cancellation,
    }
    options += [f"{key}: {_js_value(value)}" for key, value in named.items() if value is not None]
    verb = spec.method.lower()
    return f"@{verb}({js_string(url)}, {{{', '.join(options)}}})"
