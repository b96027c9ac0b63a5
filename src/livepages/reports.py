"""Unexpected errors: logged once, handed to the app's hooks, described to the page.

Every unhandled exception (in an action, a page render, a live render or an
event handler) goes through :meth:`Reporter.report` exactly once: one log record
with the request line and the traceback, then each ``@app.on_error`` hook. What
the visitor sees is :meth:`Reporter.message`: "Something went wrong" in
production; in debug mode the exception's type and message and the innermost
frame of the app's own code, so a failing action or live render says what
failed right in the page.
"""

from __future__ import annotations

import inspect
import logging
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection

from livepages.hooks import ErrorReported, Hooks
from livepages.traffic import request_id

__all__ = ["GENERIC_MESSAGE", "ErrorHook", "Reporter", "app_frame", "describe"]

log = logging.getLogger("livepages")

#: What a visitor is told about an unexpected error outside debug mode.
GENERIC_MESSAGE = "Something went wrong"

#: A hook: gets the request and the error (report it, count it). May be async.
ErrorHook = Callable[[Any, BaseException], Any]

_LIBRARY_PATHS = tuple(
    str(Path(p).resolve())
    for p in {
        sysconfig.get_paths()["stdlib"],
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["platlib"],
        str(Path(__file__).resolve().parent),  # livepages itself
    }
)


class Reporter:
    """Logs unexpected errors once and runs the app's error hooks."""

    def __init__(self, *, debug: bool = False, lifecycle: Hooks | None = None) -> None:
        self.debug = debug
        self.hooks: list[ErrorHook] = []
        self.lifecycle = lifecycle if lifecycle is not None else Hooks()

    async def report(
        self, conn: HTTPConnection, exc: BaseException, *, recovered: bool = True
    ) -> None:
        """Log ``exc`` with the request line, then pass it to every hook. ``recovered``:
        the request still got its answer; False when the error made it a 500."""
        method = conn.scope.get("method", "GET")
        fields = {  # livepages.logs: the error's one structured record
            "event": "error",
            "request_id": request_id.get() or None,
            "method": method,
            "path": conn.url.path,
            "error": type(exc).__name__,
            "recovered": recovered,
        }
        log.error(
            "unhandled error on %s %s",
            method,
            conn.url.path,
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"livepages": fields},
        )
        if self.lifecycle.wants(ErrorReported):
            self.lifecycle.emit(ErrorReported(method, conn.url.path, exc, recovered))
        for hook in self.hooks:
            try:
                outcome = hook(conn, exc)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:  # a broken hook must not hide the original error
                log.exception("error hook %r failed", hook)

    def message(self, exc: BaseException, generic: str = GENERIC_MESSAGE) -> str:
        """What the page shows: ``generic``, or in debug mode :func:`describe`."""
        return describe(exc) if self.debug else generic


def describe(exc: BaseException) -> str:
    """``Type: message (file.py:12 in function)``, at the innermost frame of app code.

    Frames of the standard library, installed packages and livepages are passed
    over: the line worth reading is the app's own.
    """
    text = traceback.format_exception_only(exc)[-1].strip()
    frame = app_frame(exc)
    if frame is None:
        return text
    return f"{text} ({Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def app_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback in the app's own code, if any."""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if not _is_library(frame.filename):
            return frame
    return None


def _is_library(filename: str) -> bool:
    if filename.startswith("<"):  # <frozen ...>, <string>
        return True
    try:
        resolved = str(Path(filename).resolve())
    except OSError:
        return True
    return resolved.startswith(_LIBRARY_PATHS) or "site-packages" in resolved
