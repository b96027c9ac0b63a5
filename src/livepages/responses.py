"""Responses that depend on who asked: a browser navigation or a Datastar request.

Datastar (v1.0) only reads the body of a 200 response, so for its requests a
redirect is a script patch and an error is a signal patch, both with status
200; a plain request gets a 303 or an HTML error page with the real status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Scope

from livepages.datastar import DatastarResponse, events
from livepages.pages import Page
from livepages.protocol import ERROR_SIGNAL, ERRORS_SIGNAL

__all__ = [
    "Redirect",
    "error_event",
    "is_datastar",
    "redirect",
    "redirect_response",
    "reload_event",
    "safe_next",
    "success_event",
    "validation_event",
]


def is_datastar(request: Request | Scope) -> bool:
    """Whether the request was made by Datastar (it sends ``Datastar-Request: true``)."""
    headers = request.headers if isinstance(request, Request) else Request(request).headers
    return headers.get("datastar-request") == "true"


@dataclass(frozen=True, slots=True)
class Redirect:
    """Returned by an action: send the browser elsewhere."""

    url: str


def redirect(target: str | Page) -> Redirect:
    """A redirect to a URL or a page: ``return redirect(Room(room="42"))``."""
    return Redirect(target.url if isinstance(target, Page) else target)


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default``: no open redirect.

    For the ``?next=`` of a sign-in page: ``redirect(safe_next(self.next))``.
    Absolute URLs (``https://evil.example``), scheme-relative ones
    (``//evil.example``), a backslash that browsers read as a slash
    (``/\\evil.example``) and control characters that browsers drop
    (``/\\t/evil.example``) all give ``default``.
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if not all(c.isprintable() for c in target):
        return default
    return target


def redirect_response(request: Request, url: str) -> Response:
    """A script patch for Datastar requests, a 303 See Other for the rest."""
    if is_datastar(request):
        return DatastarResponse(events.redirect(url))
    return RedirectResponse(url, status_code=303)


def error_event(status: int, message: str) -> bytes:
    """The signal patch that reports a failed Datastar request."""
    return events.patch_signals({ERROR_SIGNAL: {"status": status, "message": message}})


def validation_event(errors: Mapping[str, str], fields: tuple[str, ...] = ()) -> bytes:
    """The ``errors`` signal patch: a message per failing field, "" for the others."""
    patch = dict.fromkeys(fields, "")
    patch.update(errors)
    return events.patch_signals({ERRORS_SIGNAL: patch})


#: ``_error`` when nothing failed: the shell declares it so, and a success puts it back.
NO_ERROR = {"status": 0, "message": ""}


def success_event(fields: tuple[str, ...] = ()) -> bytes:
    """The signal patch of a successful Datastar action: ``_error`` cleared, and the
    ``errors`` of its input's ``fields`` (if any) cleared too."""
    patch: dict[str, object] = {ERROR_SIGNAL: NO_ERROR}
    if fields:
        patch[ERRORS_SIGNAL] = dict.fromkeys(fields, "")
    return events.patch_signals(patch)


#: Reload the page, at most once in ``{ms}`` ms per browser tab (``sessionStorage``), so
#: a server that keeps refusing the new page's stream cannot drive a reload loop.
_RELOAD = (
    "const t = Number(sessionStorage.getItem('livepages.reloaded') || 0);"
    " if (Date.now() - t > {ms}) {{"
    " sessionStorage.setItem('livepages.reloaded', String(Date.now()));"
    " window.location.reload() }}"
)


def reload_event(once_in: float = 10.0) -> bytes:
    """The script event that reloads the page (its stream cannot resume), at most once
    in ``once_in`` seconds per tab; 0 reloads every time (where no loop can follow)."""
    if once_in <= 0:
        return events.execute_script("window.location.reload()")
    return events.execute_script(_RELOAD.format(ms=round(once_in * 1000)))
