"""The document shell: the full HTML page around a page's body.

A GET returns the whole document at once (good for first paint, crawlers and
no-JS clients). The shell loads Datastar, holds the page-local signals (the CSRF
token), and opens the page's live stream from an element outside the page root,
so that morphing the root never restarts the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

from livepages.expressions import js_string, js_value
from livepages.protocol import (
    CONNECTION_SIGNAL,
    CSRF_SIGNAL,
    ERROR_SIGNAL,
    LIVE_ID,
    ROOT_ID,
    TAB_SIGNAL,
)

__all__ = ["Shell", "nonce_attribute", "root", "to_html"]


def nonce_attribute(nonce: str) -> str:
    """`` nonce="..."`` for a script element, or "" without a nonce."""
    return f' nonce="{escape(nonce)}"' if nonce else ""


def to_html(body: Any) -> str:
    """Text from whatever a render returned: str, Markup, ``__html__`` objects, htpy."""
    if isinstance(body, str):
        return body
    html = getattr(body, "__html__", None)
    if html is not None:
        return str(html())
    if body is None:
        return ""
    return str(body)


def _live(live_url: str | None, live_options: str, url_sync: str, url_restore: str) -> str:
    """The hidden element that opens the page's stream (and keeps the address bar in sync)."""
    options = ", {" + live_options + "}" if live_options else ""
    if url_sync:
        # One effect: the address bar first, then (on a live page) the stream for it.
        statements = url_sync
        if live_url is not None:
            statements += f"; @get({js_string(live_url)} + location.search{options})"
        return (
            f'<div id="{LIVE_ID}" hidden data-effect="{escape(statements)}"'
            f' data-on:popstate__window="{escape(url_restore)}"></div>'
        )
    if live_url is not None:
        expression = escape(f"@get({js_string(live_url)}{options})")
        return f'<div id="{LIVE_ID}" hidden data-init="{expression}"></div>'
    return ""


def root(body: str) -> str:
    """The page body wrapped in the root element that live patches target."""
    return f'<main id="{ROOT_ID}">{body}</main>'


@dataclass(frozen=True, slots=True)
class Shell:
    """Renders documents; one per app."""

    lang: str = "en"
    app_head: str = ""

    def render(
        self,
        body: str,
        *,
        datastar_url: str,
        title: str,
        head: str = "",
        live_url: str | None = None,
        csrf_token: str = "",
        tab_id: str = "",
        live_options: str = "",
        signals: Mapping[str, Any] | None = None,
        url_sync: str = "",
        url_restore: str = "",
        nonce: str = "",
        feedback: str = "",
        restore: str = "",
    ) -> str:
        """The full document for one response.

        ``signals`` are more page signals (their first values). With ``url_sync`` (a
        statement, ``livepages.reflect``) a ``data-effect`` runs it whenever a signal
        it reads changes and then, on a live page, reopens the stream at ``live_url``
        (a path) plus the address bar's query; ``url_restore`` runs on ``popstate``.
        ``nonce`` is the response's CSP nonce, put on the document's script.
        ``feedback`` is the HTML of ``livepages.feedback`` (before the root, so morphs
        leave it be); ``restore`` a ``data-init`` expression that restores the signals
        a page kept across a reload (``livepages.builds``).
        """
        # _error is declared, so a page can bind $_error.message before anything failed.
        declared = escape(
            "{"
            + f"{CSRF_SIGNAL}: {js_string(csrf_token)}, {TAB_SIGNAL}: {js_string(tab_id)}, "
            + f"{ERROR_SIGNAL}: {{status: 0, message: ''}}"
            + (f", {CONNECTION_SIGNAL}: 'live'" if live_url is not None else "")
            + "".join(f", {name}: {js_value(value)}" for name, value in (signals or {}).items())
            + "}"
        )
        live = _live(live_url, live_options, url_sync, url_restore)
        # After the root, so that it runs after the body's own data-signals declared them.
        after = (
            f'<div id="lp-restore" hidden data-init="{escape(restore)}"></div>' if restore else ""
        )
        return (
            "<!doctype html>"
            f'<html lang="{escape(self.lang)}"><head>'
            '<meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title>"
            f'<script type="module"{nonce_attribute(nonce)} src="{escape(datastar_url)}"></script>'
            f"{self.app_head}{head}</head>"
            f'<body data-signals="{declared}">{feedback}{live}{root(body)}{after}</body></html>'
        )
