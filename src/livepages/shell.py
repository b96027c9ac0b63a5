"""The document shell: the full HTML page around a page's body.

A GET returns the whole document at once (good for first paint, crawlers and
no-JS clients). The shell loads Datastar, holds the page-local signals (the CSRF
token), and opens the page's live stream from an element outside the page root,
so that morphing the root never restarts the stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from livepages.expressions import js_string
from livepages.protocol import (
    CONNECTION_SIGNAL,
    CSRF_SIGNAL,
    ERROR_SIGNAL,
    LIVE_ID,
    ROOT_ID,
    TAB_SIGNAL,
)

__all__ = ["Shell", "root", "to_html"]


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
        feedback: str = "",
        restore: str = "",
    ) -> str:
        """The full document for one response.

        ``feedback`` is the HTML of ``livepages.feedback`` (before the root, so morphs
        leave it be); ``restore`` a ``data-init`` expression that restores the signals
        a page kept across a reload (``livepages.builds``).
        """
        # _error is declared, so a page can bind $_error.message before anything failed.
        signals = escape(
            "{"
            + f"{CSRF_SIGNAL}: {js_string(csrf_token)}, {TAB_SIGNAL}: {js_string(tab_id)}, "
            + f"{ERROR_SIGNAL}: {{status: 0, message: ''}}"
            + (f", {CONNECTION_SIGNAL}: 'live'" if live_url is not None else "")
            + "}"
        )
        live = ""
        if live_url is not None:
            options = ", {" + live_options + "}" if live_options else ""
            expression = escape(f"@get({js_string(live_url)}{options})")
            live = f'<div id="{LIVE_ID}" hidden data-init="{expression}"></div>'
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
            f'<script type="module" src="{escape(datastar_url)}"></script>'
            f"{self.app_head}{head}</head>"
            f'<body data-signals="{signals}">{feedback}{live}{root(body)}{after}</body></html>'
        )
