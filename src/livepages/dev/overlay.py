"""The error overlay of ``livepages dev``: what failed, where, and its traceback.

A :class:`Problem` is one error worth showing: an app that cannot import or start (a
syntax error, say), an action or a live render that raised, a watcher command that
failed. It travels from the supervisor to the app's process as JSON, so it is a
plain struct. The overlay is one element, ``#lp-dev-overlay``, laid over the page:

- :func:`show_event` patches it into an open page through the page's live stream
  (appended to ``<body>``, outside the morphed root, so renders leave it alone);
- :func:`hide_event` takes it away;
- :func:`overlay_document` is a whole page with it, for a browser that asks for a
  page while the app cannot run, with a small script that reloads the page once the
  next app process serves (``livepages.dev.child``).

Every piece of text is escaped: a traceback quotes the app's source and its input.
"""

from __future__ import annotations

import traceback
from html import escape
from typing import ClassVar

from livepages.datastar import events
from livepages.decoding import JSONMessage
from livepages.expressions import js_string
from livepages.reports import app_frame
from livepages.shell import nonce_attribute

__all__ = [
    "OVERLAY_ID",
    "WAIT_PATH",
    "Problem",
    "hide_event",
    "overlay_document",
    "overlay_html",
    "show_event",
]

#: The id of the overlay element.
OVERLAY_ID = "lp-dev-overlay"
#: The stream an overlay document listens to: it says "reload" once the app is back.
WAIT_PATH = "/_livepages/dev/wait"
#: At most this many characters of a traceback or a command's output are shown.
MAX_TEXT = 20_000


class Problem(JSONMessage, frozen=True, kw_only=True):
    """An error to show: a title, where it happened, and the full text."""

    what: ClassVar[str] = "problem"

    title: str
    file: str | None = None
    line: int | None = None
    #: The source line at ``file:line``, when known.
    code: str | None = None
    #: The traceback, or a command's output.
    text: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException, title: str | None = None) -> Problem:
        """The problem of ``exc``, located at the app's own innermost frame (for a
        ``SyntaxError``, at the offending line of the file that failed to compile)."""
        summary = traceback.format_exception_only(exc)[-1].strip()
        text = "".join(traceback.format_exception(exc))
        if isinstance(exc, SyntaxError) and exc.filename:
            code = (exc.text or "").strip() or None
            return cls(
                title=title or summary, file=exc.filename, line=exc.lineno, code=code, text=text
            )
        frame = app_frame(exc)
        if frame is None:
            return cls(title=title or summary, text=text)
        code = (frame.line or "").strip() or None
        return cls(
            title=title or summary, file=frame.filename, line=frame.lineno, code=code, text=text
        )

    @property
    def where(self) -> str:
        """``file:line``, ``file``, or "" when unknown."""
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


_PANEL = (
    "position:fixed;inset:0;z-index:2147483647;background:rgba(20,20,24,.86);"
    "overflow:auto;padding:4vh 4vw;font:14px/1.5 system-ui,sans-serif;color:#eee"
)
_BOX = "max-width:1100px;margin:0 auto;background:#1d1d23;border-top:4px solid #e5484d;padding:24px"
_PRE = (
    "white-space:pre-wrap;word-break:break-word;font:13px/1.45 ui-monospace,monospace;"
    "background:#111;padding:12px;margin:12px 0 0;max-height:60vh;overflow:auto"
)
_CLOSE = "float:right;background:none;border:0;color:#aaa;font-size:22px;cursor:pointer"


def overlay_html(problem: Problem) -> str:
    """The overlay element for ``problem``."""
    text = problem.text[-MAX_TEXT:]
    parts = [
        f'<div id="{OVERLAY_ID}" role="alertdialog" aria-label="error" style="{_PANEL}">',
        f'<div style="{_BOX}">',
        # A Datastar attribute, not onclick: the page's CSP refuses inline handlers.
        f'<button type="button" aria-label="close" style="{_CLOSE}"'
        f" data-on:click=\"el.closest('#{OVERLAY_ID}').remove()\">&times;</button>",
        f'<h1 style="font-size:18px;margin:0;color:#ff6369">{escape(problem.title)}</h1>',
    ]
    if problem.where:
        parts.append(f'<p class="lp-where" style="margin:8px 0 0">{escape(problem.where)}</p>')
    if problem.code:
        parts.append(f'<pre class="lp-code" style="{_PRE}">{escape(problem.code)}</pre>')
    if text:
        parts.append(f'<pre class="lp-text" style="{_PRE}">{escape(text)}</pre>')
    parts.append(
        '<p style="margin:12px 0 0;color:#999">livepages dev: fix the code and the page'
        " comes back by itself.</p></div></div>"
    )
    return "".join(parts)


def show_event(problem: Problem) -> bytes:
    """The events that put ``problem``'s overlay on a page (replacing any earlier one)."""
    return hide_event() + events.patch_elements(
        overlay_html(problem), selector="body", mode="append"
    )


def hide_event() -> bytes:
    """The event that takes the overlay off a page."""
    return events.remove_elements(f"#{OVERLAY_ID}")


# Reloads the page when the wait stream says so; EventSource reconnects by itself
# (after ``retry``) when a process ends, so it finds the next one. This page has no
# Datastar, so the script also wires the close button.
_WAIT_SCRIPT = (
    "(() => {{ const s = new EventSource({url});"
    " s.addEventListener('reload', () => {{ s.close(); window.location.reload(); }});"
    " const o = document.getElementById({overlay});"
    " o.querySelector('button').addEventListener('click', () => o.remove()); }})();"
)


def overlay_document(problem: Problem, boot: str, nonce: str = "") -> str:
    """A whole page showing ``problem``, which reloads itself when the app is back.

    ``nonce`` goes on its script: the response's CSP nonce (``overlay_headers``).
    """
    url = js_string(f"{WAIT_PATH}?boot={boot}")
    script = _WAIT_SCRIPT.format(url=url, overlay=js_string(OVERLAY_ID))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(problem.title)}</title></head><body>"
        f"{overlay_html(problem)}<script{nonce_attribute(nonce)}>{script}</script>"
        "</body></html>"
    )
