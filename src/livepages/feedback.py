"""Feedback: what a page shows about its connection, its running actions and errors.

On by default in every page (``Settings.feedback``), in plain HTML with CSS
classes a stylesheet can restyle, driven by Datastar's own request lifecycle:
Datastar dispatches a ``datastar-fetch`` event on the document for every request
(``started``, ``finished``, ``error`` with the status, ``retrying``,
``retries-failed``, and one per event a stream delivers), naming the element
whose request it is. One listener in the shell turns them into:

- **the connection indicator** ``#lp-connection``: ``data-state`` is ``live``
  (the stream delivered something), ``reconnecting`` (a reconnect failed, or the
  server answered an error) or ``offline`` (Datastar gave up, or the stream was
  refused); shown only when not live. The ``_connection`` signal holds the state.
- **the in-flight indicator**: the element whose action is running gets the class
  ``lp-busy`` and ``aria-busy="true"`` until its request finishes.
- **the notice** ``#lp-notice``: shows ``_error.message`` (set by the server for a
  failed action, or here for a refused one) with a button that dismisses it; the
  next successful action clears ``_error`` (``responses.success_event``).
- **refused actions**: Datastar ignores the body of a non-200 answer, so a 403
  (a CSRF or origin refusal), 404, 413, 429 or 503 would pass unseen; the
  listener sets ``_error`` from the status, with the message of ``Feedback.messages``.

Every id and class is ``lp-`` prefixed; ``Feedback.style`` is the default look
(small, fixed to a corner), ``Feedback(style="")`` leaves it to the app's CSS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from html import escape
from types import MappingProxyType

from livepages.expressions import js_string
from livepages.protocol import CONNECTION_SIGNAL, ERROR_SIGNAL, LIVE_ID

__all__ = ["DEFAULT_MESSAGES", "DEFAULT_STYLE", "Feedback"]

#: What a refused action tells the user, by status; others get ``Feedback.fallback``.
DEFAULT_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        400: "The server could not understand this request. Reload the page.",
        403: "This action was refused. Reload the page and try again.",
        404: "This page or action no longer exists. Reload the page.",
        408: "The request took too long. Try again.",
        409: "Something changed meanwhile. Try again.",
        413: "That is too large to send.",
        429: "Too many requests. Wait a moment and try again.",
        503: "The server is busy or restarting. Try again shortly.",
    }
)

#: The look of the indicators: small, in the bottom corner, over the page.
DEFAULT_STYLE = """
.lp-connection, .lp-notice { position: fixed; z-index: 2147483000; font: 14px/1.4 system-ui,
  sans-serif; border-radius: 6px; box-shadow: 0 2px 8px rgba(0,0,0,.2); }
.lp-connection { left: 1rem; bottom: 1rem; padding: .35rem .7rem; background: #fff7d6;
  color: #5c4400; }
.lp-connection[data-state="offline"] { background: #fde2e1; color: #7a1712; }
.lp-connection[data-state="live"], .lp-connection[hidden], .lp-notice[hidden] { display: none; }
.lp-notice { right: 1rem; bottom: 1rem; max-width: 28rem; display: flex; gap: .75rem;
  align-items: start; padding: .6rem .8rem; background: #fde2e1; color: #7a1712; }
.lp-notice button { border: 0; background: none; color: inherit; font-size: 1.1rem;
  line-height: 1; cursor: pointer; }
.lp-busy { cursor: progress; opacity: .6; }
"""


@dataclass(frozen=True)
class Feedback:
    """The feedback elements of every page; ``App(feedback=Feedback(...))`` to adjust."""

    #: Messages of refused actions, by status.
    messages: Mapping[int, str] = field(default_factory=lambda: DEFAULT_MESSAGES)
    #: The message of any other refused status.
    fallback: str = "The action failed. Try again."
    #: The message when Datastar gave up reaching the server for an action.
    unreachable: str = "The server cannot be reached. Check your connection and try again."
    #: The connection indicator's text in each state.
    reconnecting: str = "Reconnecting…"
    offline: str = "Offline."
    #: The default CSS (in a ``<style>`` in the head); "" to style it all yourself.
    style: str = DEFAULT_STYLE

    def head(self) -> str:
        """What goes in the document's head: the default style, if any."""
        return f'<style id="lp-feedback-style">{self.style}</style>' if self.style else ""

    def html(self, *, live: bool) -> str:
        """The feedback elements, first in the body (outside the morphed root)."""
        connection = ""
        if live:
            connection = (
                f'<div id="lp-connection" class="lp-connection" role="status" hidden'
                f' data-state="live" data-attr:data-state="${CONNECTION_SIGNAL}"'
                f" data-attr:hidden=\"${CONNECTION_SIGNAL} == 'live'\">"
                f'<span class="lp-connection-text" data-text="{escape(self._state_text())}">'
                "</span>"
                ' <a class="lp-reload" href="" data-show="$'
                f"{CONNECTION_SIGNAL} == 'offline'\">Reload</a></div>"
            )
        notice = (
            f'<div id="lp-notice" class="lp-notice" role="alert" hidden'
            f' data-attr:hidden="${ERROR_SIGNAL}.status == 0">'
            f'<span class="lp-notice-text" data-text="${ERROR_SIGNAL}.message"></span>'
            f'<button type="button" class="lp-dismiss" aria-label="Dismiss"'
            f" data-on:click=\"${ERROR_SIGNAL} = {{status: 0, message: ''}}\">"
            "&times;</button></div>"
        )
        return (
            f'<div id="lp-feedback" data-on:datastar-fetch="{escape(self._listener())}">'
            f"{connection}{notice}</div>"
        )

    def _state_text(self) -> str:
        return (
            f"${CONNECTION_SIGNAL} == 'offline' ? {js_string(self.offline)}"
            f" : {js_string(self.reconnecting)}"
        )

    def _listener(self) -> str:
        """The expression run on every ``datastar-fetch`` event (``evt``)."""
        messages = ", ".join(f"{status}: {js_string(m)}" for status, m in self.messages.items())
        return (
            "const d = evt.detail, t = d.type, x = d.el;"  # (`el` is Datastar's own)
            f" if (!x) return; if (x.id === {js_string(LIVE_ID)}) {{"
            f" if (t === 'retrying' || t === 'error') ${CONNECTION_SIGNAL} = 'reconnecting';"
            f" else if (t === 'retries-failed' || t === 'finished')"
            f" ${CONNECTION_SIGNAL} = 'offline';"
            f" else if (t.startsWith('datastar-')) ${CONNECTION_SIGNAL} = 'live';"
            " return }"
            " if (t === 'started') { x.lpBusy = (x.lpBusy || 0) + 1;"
            " x.classList.add('lp-busy'); x.setAttribute('aria-busy', 'true') }"
            " else if (t === 'finished') { x.lpBusy = Math.max(0, (x.lpBusy || 1) - 1);"
            " if (!x.lpBusy) { x.classList.remove('lp-busy'); x.removeAttribute('aria-busy') } }"
            " else if (t === 'error') { const s = Number(d.argsRaw.status);"
            f" ${ERROR_SIGNAL} = {{status: s, message: ({{{messages}}})[s]"
            f" || {js_string(self.fallback)}}} }}"
            f" else if (t === 'retries-failed') ${ERROR_SIGNAL} ="
            f" {{status: 599, message: {js_string(self.unreachable)}}}"
        )
