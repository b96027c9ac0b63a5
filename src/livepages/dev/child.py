"""One app process of ``livepages dev``: the app, or the overlay of why it cannot run.

The supervisor (``livepages.dev.supervisor``) starts this module as a process of its
own for each version of the code, handing it the listening socket and one end of a
control socket::

    python -m livepages.dev.child --fd 3 --control 4 --app site:app --root /project

It imports the app and serves it (``livepages.serving``) behind :class:`DevServer`,
which:

- serves the error overlay instead of the app when the app fails to import or its
  lifespan fails to start: on open pages (through their stream), as a whole page
  to a browser that asks for one, and as an ``_error`` to actions; the process keeps
  running until the supervisor replaces it;
- follows the supervisor's messages (:data:`Message`): files that changed re-render
  every open view (templates) or reload every open page (static files), and a
  problem (a watcher that failed) shows in the overlay on every open page.

When the control socket closes (the supervisor is gone) the process stops itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
from starlette.datastructures import Headers, QueryParams
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send

from livepages import csp
from livepages.cli.project import ProjectError, load_app
from livepages.datastar.response import sse_headers
from livepages.decoding import DECODE_ERRORS
from livepages.protocol import BUILD_HEADER
from livepages.responses import error_event, is_datastar, reload_event
from livepages.server import livepages_apps
from livepages.serving import TLS, serve

from .mode import BOOT_ENV
from .overlay import WAIT_PATH, Problem, hide_event, overlay_document, show_event

__all__ = ["Changed", "DevServer", "Message", "Show", "decode_message", "main"]

#: What the supervisor sends, one JSON object a line.


class Changed(msgspec.Struct, frozen=True, tag="changed"):
    """Files other than Python changed (absolute paths)."""

    paths: list[str]


class Show(msgspec.Struct, frozen=True, tag="show"):
    """Show ``problem`` on every open page (a watcher failed)."""

    problem: Problem


Message = Changed | Show
_DECODER: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)


def decode_message(line: bytes) -> Message:
    """One line of the control socket; ``ValueError`` when it is not a message."""
    try:
        return _DECODER.decode(line)
    except DECODE_ERRORS as exc:
        raise ValueError(f"not a dev server message: {exc}") from None


#: Reloads a page without the guard of ``reload_event()``: a reloaded page carries the
#: new boot id, so no loop can follow.
_RELOAD = reload_event(0)
_BODY = "http.response.body"


class DevServer:
    """The ASGI app of an app process: ``app``, or the overlay of ``problem``."""

    def __init__(self, boot: str, app: Any = None, problem: Problem | None = None) -> None:
        self.boot = boot
        self.app = app
        self.problem = problem
        #: A problem the supervisor said to show (a watcher failed), until files change:
        #: pages that open their stream meanwhile get it too.
        self.shown: Problem | None = None
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = 0

    # -- ASGI -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] == "http":
            if scope["path"] == WAIT_PATH:
                await self._wait(scope, receive, send)
                return
            if self.problem is not None:
                await self._overlay(scope, receive, send)
                return
            # (A page of an earlier process reloads: the app's build id is the boot id.)
            streaming = BUILD_HEADER in Headers(scope=scope)
            if self.shown is not None and streaming:  # a page's stream
                scope, send = _showing(scope, send, show_event(self.shown))
        if self.app is None:  # a websocket while the app cannot run
            await send({"type": "websocket.close", "code": 1011})
            return
        await self.app(scope, receive, send)

    async def close_streams(self) -> None:
        """End the overlay's streams and the waits of overlay pages (the process stops)."""
        self._stop.set()

    # -- the supervisor's messages -----------------------------------------------------

    def handle(self, message: Message) -> None:
        """Act on one message of the supervisor."""
        apps = list(livepages_apps(self.app)) if self.problem is None else []
        if isinstance(message, Show):
            self.shown = message.problem
            for app in apps:
                _broadcast(app, show_event(message.problem))
            return
        self.shown = None
        for app in apps:
            _broadcast(app, hide_event())  # an earlier error is stale once code changes
            static = app.assets.directory if app.assets is not None else None
            if static is not None and _any_inside(message.paths, static):
                _broadcast(app, _RELOAD)  # the head's asset URLs change: a fresh document
            else:
                for view in list(app.live.views.values()):
                    view.invalidate()

    async def listen(self, control: socket.socket) -> None:
        """Follow the control socket; stop this process when it closes."""
        reader, writer = await asyncio.open_unix_connection(sock=control)
        try:
            while line := await reader.readline():
                try:
                    self.handle(decode_message(line))
                except ValueError as exc:
                    print(f"livepages dev: ignoring a message: {exc}", file=sys.stderr)
        finally:
            writer.close()
        os.kill(os.getpid(), signal.SIGTERM)  # the supervisor is gone: so is its socket

    # -- lifespan ----------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        app = self.app
        inner: _InnerLifespan | None = None
        if app is not None:
            inner = _InnerLifespan(app, scope)
            failure = await inner.start()
            if failure is not None:
                self.problem, self.app = failure, None
                print(f"livepages dev: the app failed to start\n{failure.text}", file=sys.stderr)
                inner = None
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        self._stop.set()
        if inner is not None:
            await inner.stop()
        for task in list(self._tasks):
            task.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    def start_listening(self, control: socket.socket) -> None:
        """Follow ``control`` from now on (in the server's event loop)."""
        task = asyncio.get_running_loop().create_task(self.listen(control))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- responses of the dev server itself ---------------------------------------------

    async def _overlay(self, scope: Scope, receive: Receive, send: Send) -> None:
        problem = self.problem
        assert problem is not None
        if is_datastar(scope):
            if scope["method"] == "GET":  # a page's stream: the overlay, until replaced
                await _stream(send, scope, show_event(problem), more=True)
                await self._hold(receive)
                await send({"type": _BODY, "body": b"", "more_body": False})
            else:  # an action
                body = show_event(problem) + error_event(500, problem.title)
                await _stream(send, scope, body, more=False)
            return
        nonce = csp.nonce(scope)
        html = overlay_document(problem, self.boot, nonce).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(html)).encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-security-policy", csp.ContentSecurityPolicy().header(nonce)),
                ],
            }
        )
        await send({"type": _BODY, "body": html, "more_body": False})

    async def _wait(self, scope: Scope, receive: Receive, send: Send) -> None:
        """An overlay page's EventSource: "reload" once a process without a problem
        serves; until then it stays open (and reconnects when this process ends)."""
        boot = QueryParams(scope.get("query_string", b"").decode("latin-1")).get("boot")
        back = self.problem is None and boot != self.boot
        first = b"retry: 300\n\n" + (b"event: reload\ndata: \n\n" if back else b"")
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": _BODY, "body": first, "more_body": not back})
        if not back:
            await self._hold(receive)
            await send({"type": _BODY, "body": b"", "more_body": False})

    async def _hold(self, receive: Receive) -> None:
        """Until the client leaves or the process stops."""
        stop = asyncio.ensure_future(self._stop.wait())
        leave = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({stop, leave}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            leave.cancel()


class _InnerLifespan:
    """The app's own lifespan, run by the dev server so that a failure to start becomes
    the overlay instead of ending the process."""

    def __init__(self, app: Any, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.inbox: asyncio.Queue[ASGIMessage] = asyncio.Queue()
        self.outbox: asyncio.Queue[ASGIMessage] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> Problem | None:
        """Start the app; the problem if it failed (None: started, or has no lifespan)."""
        self.task = asyncio.get_running_loop().create_task(
            self.app(self.scope, self.inbox.get, self.outbox.put)
        )
        await self.inbox.put({"type": "lifespan.startup"})
        reply = await self._reply()
        if reply is None or reply["type"] == "lifespan.startup.complete":
            return None
        await asyncio.wait({self.task}, timeout=5)  # it raises right after saying so
        error = self.task.exception() if self.task.done() else None
        if error is not None:
            return Problem.from_exception(error, "The app failed to start")
        return Problem(title="The app failed to start", text=str(reply.get("message", "")))

    async def stop(self) -> None:
        """Run the app's shutdown."""
        if self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self._reply()

    async def _reply(self) -> ASGIMessage | None:
        """The app's next message; None if it returned without one (no lifespan)."""
        assert self.task is not None
        reply = asyncio.ensure_future(self.outbox.get())
        await asyncio.wait({reply, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            return reply.result()
        reply.cancel()
        if self.task.exception() is not None:
            # Failed before saying so (or a plain ASGI app that refuses lifespans).
            return {"type": "lifespan.startup.failed"}
        return None


async def _stream(send: Send, scope: Scope, body: bytes, *, more: bool) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": sse_headers(scope, {})})
    await send({"type": _BODY, "body": body, "more_body": more})


def _showing(scope: Scope, send: Send, payload: bytes) -> tuple[Scope, Send]:
    """A stream request whose response starts with ``payload``: uncompressed (asked
    for without ``Accept-Encoding``), so the event can go first as it is."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"accept-encoding"]

    async def first_payload(message: ASGIMessage) -> None:
        await send(message)
        if message["type"] == "http.response.start" and message.get("status") == 200:
            types = [value for name, value in message.get("headers", []) if name == b"content-type"]
            if types and types[0].startswith(b"text/event-stream"):
                await send({"type": _BODY, "body": payload, "more_body": True})

    return {**scope, "headers": headers}, first_payload


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _broadcast(app: Any, payload: bytes) -> None:
    for connection in list(app.live.connections):
        connection.deliver(payload)


def _any_inside(paths: Iterable[str], folder: Path) -> bool:
    root = folder.resolve()
    return any(Path(path).resolve().is_relative_to(root) for path in paths)


def main(argv: list[str] | None = None) -> None:
    """Import the app and serve it on the supervisor's socket (or serve its problem)."""
    parser = argparse.ArgumentParser(prog="python -m livepages.dev.child")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket")
    parser.add_argument("--control", type=int, help="the supervisor's control socket")
    parser.add_argument("--app", required=True, help="module:attribute")
    parser.add_argument("--root", required=True, help="the project folder")
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    parser.add_argument("--problem", help="serve this problem (JSON), not the app")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    problem = Problem.decode(args.problem.encode()) if args.problem else None
    app = None
    if problem is None:
        try:
            app = load_app(args.app, Path(args.root))
        except ProjectError as exc:
            problem = Problem(title=str(exc))
        except (Exception, SystemExit) as exc:
            traceback.print_exception(exc)
            problem = Problem.from_exception(exc)
    server = DevServer(os.environ.get(BOOT_ENV, ""), app, problem)
    if args.control is not None:
        control = socket.socket(fileno=args.control)
        served: Any = _Listening(server, control)
    else:
        served = server
    tls = TLS(args.certfile, args.keyfile) if args.certfile and args.keyfile else None
    serve(served, sock, tls=tls, access_log=False, log_level="warning")


class _Listening:
    """The dev server, following the control socket from the lifespan's start."""

    def __init__(self, app: DevServer, control: socket.socket) -> None:
        self.app = app
        self.control = control

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.app.start_listening(self.control)
        await self.app(scope, receive, send)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
