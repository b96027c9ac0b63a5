"""Dependency injection by annotation, planned once per function.

Render methods, actions and event handlers declare what they need by type::

    async def send(self, draft: Draft, request: Request, sse: SSE) -> None: ...

``Injector.plan(func)`` reads the annotations once, at registration, and
returns a ``Plan`` whose ``resolve(ctx)`` builds the arguments for one call.
Unknown annotations fail at registration, not on the first request.

Extension point: ``injector.provide(SomeType, resolver)`` teaches the injector
a new type; the session layer registers ``Session`` this way.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request

from livepages.inputs import is_signals_type, read_form, read_input, read_query
from livepages.registration import Kind, RegistrationError
from livepages.settings import Settings

__all__ = ["Context", "Injector", "Plan", "Query", "Signals"]


class Query:
    """Marks a parameter decoded from the query string: ``f: Annotated[Filters, Query]``."""


class Signals:
    """Marks a parameter decoded from the signals: ``s: Annotated[dict[str, Any], Signals]``.

    Dataclasses and msgspec Structs are signals without the marker.
    """


@dataclass(slots=True)
class Context:
    """What one call can draw its arguments from."""

    request: Request
    page: Any = None
    app: Any = None
    sse: Any = None
    extras: dict[Any, Any] = field(default_factory=dict)


Resolver = Callable[[Context], Any]


@dataclass(frozen=True, slots=True)
class Param:
    """How one parameter gets its value."""

    name: str
    kind: str  # "provide", "signals", "query"
    annotation: Any
    resolver: Resolver | None = None
    default: Any = inspect.Parameter.empty


@dataclass(frozen=True, slots=True)
class Plan:
    """The argument recipe of one function."""

    func: Callable[..., Any]
    params: tuple[Param, ...]
    is_async: bool

    @property
    def signals(self) -> Param | None:
        """The parameter fed from the signals, if any."""
        return next((p for p in self.params if p.kind == "signals"), None)

    def wants(self, annotation: Any) -> bool:
        """Whether a parameter of exactly this type is injected."""
        return any(p.annotation is annotation for p in self.params)

    async def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function, awaiting it if it is a coroutine function."""
        result = self.func(*args, **kwargs)
        if self.is_async or inspect.isawaitable(result):
            return await result
        return result


def _is_event(tp: Any) -> bool:
    from livepages.events import Event

    return isinstance(tp, type) and issubclass(tp, Event)


def _unwrap(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0], tuple(annotation.__metadata__)
    return annotation, ()


def _parameter_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The evaluated parameter annotations of ``func``, leaving out the return type.

    An action may return its own page class (``-> Room``), a name that is not bound
    yet while the class body is being registered; only parameters are injected.
    """
    annotations = dict(getattr(func, "__annotations__", {}))
    annotations.pop("return", None)
    scope = getattr(inspect.unwrap(func), "__globals__", {})
    holder = types.SimpleNamespace(__annotations__=annotations)
    return typing.get_type_hints(holder, globalns=scope, include_extras=True)


class Injector:
    """Knows which types can be injected and how."""

    def __init__(self) -> None:
        self._providers: dict[Any, Resolver] = {
            Request: lambda ctx: ctx.request,
            QueryParams: lambda ctx: ctx.request.query_params,
        }
        self._factories: dict[Any, Callable[[Any], Resolver]] = {}
        self._named: dict[Any, Callable[[str], Resolver]] = {}

    def provide(self, annotation: Any, resolver: Resolver) -> None:
        """Inject ``resolver(ctx)`` (a value or an awaitable) wherever ``annotation`` appears."""
        self._providers[annotation] = resolver

    def provide_generic(self, origin: Any, factory: Callable[[Any], Resolver]) -> None:
        """Inject ``origin`` and ``origin[Args]``: ``factory(annotation)`` makes the resolver."""
        self._factories[origin] = factory

    def provide_named(self, annotation: Any, factory: Callable[[str], Resolver]) -> None:
        """Inject ``annotation`` with a resolver that knows the parameter's name:
        ``factory(name)`` makes it (uploads read the signal of the same name)."""
        self._named[annotation] = factory

    def plan(
        self, func: Callable[..., Any], *, skip_first: bool = False, events: bool = False
    ) -> Plan:
        """Read ``func``'s annotations once; TypeError for anything it cannot inject.

        With ``events``, a parameter annotated with an ``Event`` subclass receives
        the event being handled.
        """
        hints = _parameter_hints(func)
        parameters = list(inspect.signature(func).parameters.values())
        if skip_first:
            parameters = parameters[1:]
        planned = tuple(self._param(func, p, hints.get(p.name), events) for p in parameters)
        if sum(1 for p in planned if p.kind == "signals") > 1:
            raise _cannot(func, f"{func.__qualname__}: only one parameter can receive the signals")
        return Plan(func, planned, inspect.iscoroutinefunction(func))

    def _param(
        self, func: Callable[..., Any], param: inspect.Parameter, hint: Any, events: bool
    ) -> Param:
        where = f"{func.__qualname__}(): parameter {param.name!r}"
        if hint is None:
            raise _cannot(func, f"{where} needs a type annotation to be injected")
        base, extras = _unwrap(hint)
        if events and _is_event(base):
            return Param(param.name, "provide", base, lambda ctx: ctx.extras[base])
        named = self._named.get(base)
        if named is not None:  # before signals: a named type may be a dataclass itself
            return Param(param.name, "provide", base, named(param.name), param.default)
        if Query in extras:
            return Param(param.name, "query", base, default=param.default)
        if Signals in extras or is_signals_type(base):
            return Param(param.name, "signals", base, default=param.default)
        for candidate in (hint, base):
            resolver = self._providers.get(candidate)
            if resolver is not None:
                return Param(param.name, "provide", base, resolver, param.default)
        factory = self._factories.get(typing.get_origin(base) or base)
        if factory is not None:
            return Param(param.name, "provide", base, factory(base), param.default)
        if base is FormData:
            return Param(param.name, "provide", base, None, param.default)
        raise _cannot(func, f"{where}: livepages cannot inject a value of type {hint!r}")

    async def arguments(self, plan: Plan, ctx: Context) -> dict[str, Any]:
        """Build the keyword arguments of one call of ``plan``."""
        kwargs: dict[str, Any] = {}
        for param in plan.params:
            if param.kind == "signals":
                kwargs[param.name] = await read_input(ctx.request, _settings(ctx), param.annotation)
            elif param.kind == "query":
                kwargs[param.name] = read_query(ctx.request, param.annotation)
            elif param.resolver is None:  # FormData: the raw form, under the size limits
                kwargs[param.name] = await read_form(ctx.request, _settings(ctx))
            else:
                value = param.resolver(ctx)
                kwargs[param.name] = await value if inspect.isawaitable(value) else value
        return kwargs


def _cannot(func: Callable[..., Any], message: str) -> RegistrationError:
    return RegistrationError(message, func, kind=Kind.INJECTION)


def _settings(ctx: Context) -> Settings:
    """The request limits of the app serving ``ctx`` (the defaults outside an app)."""
    settings = getattr(ctx.app, "settings", None)
    return settings if isinstance(settings, Settings) else Settings()
