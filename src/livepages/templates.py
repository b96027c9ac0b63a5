"""Jinja2 templates with autoescape and the livepages globals.

Globals in every template: ``url(Page, **params)`` (a checked link),
``action(page.method, **options)`` (a Datastar expression that calls an action),
``asset(name)`` (a content-hashed static URL). The ``js`` filter writes a Python
value into a Datastar expression (``data-on:click="$picked = {{ name | js }}"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from livepages.actions import invoke
from livepages.csp import csp_nonce
from livepages.expressions import js_value
from livepages.pages import url

__all__ = ["Templates"]


class Templates:
    """An app's Jinja2 environment. ``render`` returns ``Markup`` (already escaped)."""

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        asset: Callable[[str], str] | None = None,
        globals: Mapping[str, Any] | None = None,
        auto_reload: bool = False,
        loader: jinja2.BaseLoader | None = None,
    ) -> None:
        if loader is None and directory is not None:
            loader = jinja2.FileSystemLoader(str(directory))
        self.env = jinja2.Environment(
            loader=loader,
            autoescape=True,
            auto_reload=auto_reload,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(url=url, action=invoke, asset=asset or _no_assets)
        self.env.globals.update(csp_nonce=csp_nonce)
        self.env.filters["js"] = js_value
        if globals:
            self.env.globals.update(globals)

    def render(self, name: str, /, **context: Any) -> Markup:
        """Render the template ``name`` with ``context``."""
        # Autoescape already escaped every value, so the output is safe markup.
        return Markup(self.env.get_template(name).render(context))  # noqa: S704

    def render_string(self, source: str, /, **context: Any) -> Markup:
        """Render a template given as text (handy for small pages and tests)."""
        return Markup(self.env.from_string(source).render(context))  # noqa: S704


def _no_assets(name: str) -> str:
    raise LookupError(f"asset({name!r}): this app has no static folder (App(static=...))")
