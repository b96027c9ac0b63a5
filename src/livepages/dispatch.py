"""Dispatch: running an action for a request, from the checks to the response.

An action call goes: method check (405), origin and CSRF checks (403), sign-in
check for guarded actions (403), its arguments decoded (an ``errors`` patch
when they do not validate), the call, then the answer: a redirect, a
Response, or for Datastar a patch that clears ``_error`` and the input's
``errors``. An action that takes ``SSE`` streams its answer instead. After a
page action the caller's tab re-renders its own views (through the broker, so
on whichever process holds its stream).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from livepages.broker.base import Broker
from livepages.csrf import CSRFError
from livepages.datastar import DatastarResponse, ServerSentEventGenerator
from livepages.datastar.response import ClientDisconnected
from livepages.errors import BadRequest, NotFound, ValidationError
from livepages.hooks import ActionDone, CSRFRefused, Hooks, Outcome
from livepages.injection import Context, Injector
from livepages.pages import Page
from livepages.plans import ActionEntry, PagePlan
from livepages.protocol import TAB_HEADER, TAB_REFRESH
from livepages.reports import Reporter
from livepages.responses import (
    Redirect,
    error_event,
    is_datastar,
    redirect_response,
    success_event,
    validation_event,
)
from livepages.tabs import Tab
from livepages.visitors import Visitors

__all__ = ["ACTION_METHODS", "Dispatcher"]

log = logging.getLogger("livepages")

#: The HTTP methods an action may declare.
ACTION_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class Dispatcher:
    """Runs page actions and app-wide actions."""

    def __init__(
        self,
        injector: Injector,
        visitors: Visitors,
        reporter: Reporter,
        hooks: Hooks,
        broker: Broker,
        started: Callable[[], Awaitable[None]],
        check: Callable[[Request], Awaitable[None]],
    ) -> None:
        self.injector = injector
        self.visitors = visitors
        self.reporter = reporter
        self.hooks = hooks
        self.broker = broker
        self.started = started
        #: The checks before every action (``App.check_request``: origin and CSRF).
        self.check = check
        #: App-wide actions at ``/_action/<name>``.
        self.actions: dict[str, ActionEntry] = {}
        #: The page at "/", whose actions share ``/_action/<name>`` with app-wide ones.
        self.root: PagePlan | None = None

    async def page_action(self, plan: PagePlan, request: Request, app: Any) -> Response:
        """``<page>/_action/<name>``: the action of a page built from the URL."""
        name = request.path_params["_action"]
        entry = plan.actions.get(name)
        if entry is None:
            raise NotFound(f"{plan.cls.__name__} has no action {name!r}")
        params = {k: v for k, v in request.path_params.items() if k != "_action"}
        page = plan.spec.instance(params, request.query_params)
        return await self.run(entry, request, page, app)

    async def app_action(self, request: Request, app: Any) -> Response:
        """``/_action/<name>``: an app-wide action, else one of the page at "/"."""
        name = request.path_params["_action"]
        entry = self.actions.get(name)
        if entry is not None:
            return await self.run(entry, request, None, app)
        if self.root is None or name not in self.root.actions:
            raise NotFound(f"no action {name!r}")
        return await self.page_action(self.root, request, app)

    async def run(self, entry: ActionEntry, request: Request, page: Any, app: Any) -> Response:
        """One call of ``entry``, timed and reported to the hooks."""
        started = time.perf_counter()
        outcome = Outcome.FAILED
        try:
            response = await self._run(entry, request, page, app)
            outcome = _outcome_of(response)
            return response
        except ValidationError:
            outcome = Outcome.INVALID
            raise
        except CSRFError:
            outcome = Outcome.REFUSED
            if self.hooks.wants(CSRFRefused):
                self.hooks.emit(CSRFRefused(request.method))
            raise
        except HTTPException:
            outcome = Outcome.REFUSED
            raise
        finally:
            if self.hooks.wants(ActionDone):
                duration = time.perf_counter() - started
                self.hooks.emit(ActionDone(entry.spec.name, outcome, duration))

    async def _run(self, entry: ActionEntry, request: Request, page: Any, app: Any) -> Response:
        spec, plan, fields = entry.spec, entry.plan, entry.fields
        if request.method != spec.method:
            raise HTTPException(405, headers={"Allow": spec.method})
        await self.check(request)
        if spec.auth or (page is not None and type(page).auth):
            await self.visitors.check_signed_in(request)
        ctx = Context(request, page, app)
        args = (page,) if page is not None else ()
        try:
            kwargs = await self.injector.arguments(plan, ctx)
            if plan.wants(ServerSentEventGenerator):
                # Started lazily, so a sign-in before the first event still sets its cookie.
                stream = self._stream(entry, ctx, args, kwargs)
                return DatastarResponse(stream, start_immediately=False)
            result = await plan.call(*args, **kwargs)
        except ValidationError as exc:
            if not is_datastar(request):
                raise
            return _Invalid(validation_event(exc.errors, fields))
        await self.after(ctx)
        return _answer(request, result, fields)

    async def after(self, ctx: Context) -> None:
        """After an action: store what it changed in ``tab.state``, and re-render the
        caller's tab (after a page action, or any action that changed stored state)."""
        tab = ctx.extras.get(Tab)
        update = await self.visitors.tabs.save(tab) if tab is not None else b""
        if ctx.page is not None or update:
            await self.refresh_caller(ctx.request, tab, update)

    async def refresh_caller(self, request: Request, tab: Tab | None, update: bytes) -> None:
        """Re-render the views of the tab that sent this request (a no-op if unchanged).

        It goes through the broker, so it reaches the tab's stream on any process;
        ``update`` (``TabRegistry.save``) carries the tab's new state there.
        """
        if tab is not None:
            tab_id = tab.id  # verified when the action took it
        else:
            header = request.headers.get(TAB_HEADER)
            if header is None:
                return
            try:
                tab_id = await self.visitors.tab_id(request, header)
            except BadRequest:
                return
        await self.started()
        await self.broker.publish(TAB_REFRESH + tab_id, update)

    def _stream(
        self, entry: ActionEntry, ctx: Context, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Callable[[ServerSentEventGenerator], Awaitable[None]]:
        plan, fields = entry.plan, entry.fields

        async def stream(sse: ServerSentEventGenerator) -> None:
            ctx.sse = sse
            for param in plan.params:
                if param.annotation is ServerSentEventGenerator:
                    kwargs[param.name] = sse
            try:
                result = await plan.call(*args, **kwargs)
                await self.after(ctx)
            except ValidationError as exc:
                await sse.send(validation_event(exc.errors, fields))
                return
            except HTTPException as exc:
                await sse.send(error_event(exc.status_code, exc.detail))
                return
            except ClientDisconnected:  # nobody is left to tell: not an error of the app
                log.debug("client left during %s %s", ctx.request.method, ctx.request.url.path)
                return
            except Exception as exc:  # the stream has started: report it in the page
                await self.reporter.report(ctx.request, exc)
                await sse.send(error_event(500, self.reporter.message(exc)))
                return
            if isinstance(result, Redirect | Page):
                await sse.redirect(result.url)
            else:
                await sse.send(success_event(fields))

        return stream


class _Invalid(DatastarResponse):
    """The ``errors`` patch of an action whose input did not validate."""


def _answer(request: Request, result: Any, fields: tuple[str, ...]) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, Redirect | Page):
        return redirect_response(request, result.url)
    if result is not None:
        raise TypeError(f"an action returns None, a redirect or a Response, not {result!r}")
    if is_datastar(request):  # a success clears what an earlier failure showed
        return DatastarResponse(success_event(fields))
    return Response(status_code=204)


def _outcome_of(response: Response) -> Outcome:
    return Outcome.INVALID if isinstance(response, _Invalid) else Outcome.OK
