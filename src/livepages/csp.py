"""Content-Security-Policy: a fresh nonce per response, and what Datastar needs.

Every response of a livepages app carries a ``Content-Security-Policy`` header
(:class:`~livepages.middleware.SecurityHeaders` writes it). A document's scripts
carry the response's nonce (:func:`nonce` makes it, once per request, on first
use), and the policy allows scripts by that nonce only::

    script-src 'nonce-<fresh>' 'strict-dynamic' 'unsafe-eval';
    connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'

Why each part:

- ``'nonce-…'``: the Datastar ``<script>`` of the document (and any script a
  template writes with ``nonce="{{ csp_nonce() }}"``); an injected ``<script>``
  has no nonce and does not run.
- ``'unsafe-eval'``: Datastar compiles every ``data-*`` expression with
  ``Function``; without it no attribute works.
- ``'strict-dynamic'``: Datastar runs a ``<script>`` that the server patches in
  (redirects, reloads, ``execute_script``) by creating a fresh script element from
  the nonced Datastar module; ``'strict-dynamic'`` is what lets scripts created by
  a trusted script run, so such patches need no nonce and a patch shared by many
  viewers stays one byte string. Browsers that know it ignore host sources in
  ``script-src``: a script from elsewhere runs by its nonce, not by its origin.
- ``connect-src 'self'``: Datastar's ``@get``/``@post`` and the live stream go to
  the page's own origin; add origins with ``Settings.csp_connect_src``.
- ``object-src 'none'`` and ``base-uri 'self'``: no plug-ins, and no injected
  ``<base>`` that would move the page's relative URLs elsewhere.
- ``frame-ancestors 'self'``: no framing by other sites (clickjacking).

Styles, images and fonts are not restricted. ``Settings(csp=False)`` turns the
policy off (only ``frame-ancestors`` stays), for apps that set their own.
"""

from __future__ import annotations

import contextvars
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from livepages.settings import Settings

__all__ = ["ContentSecurityPolicy", "csp_nonce", "nonce", "policy"]

#: Where a request's nonce is kept in the ASGI scope.
NONCE_SCOPE_KEY = "livepages.csp_nonce"

#: The nonce of the document being rendered, for templates (``csp_nonce()``).
current_nonce: contextvars.ContextVar[str] = contextvars.ContextVar(
    "livepages_csp_nonce", default=""
)


def nonce(scope: MutableMapping[str, Any]) -> str:
    """The nonce of this request's response: 128 random bits, made on first use."""
    value = scope.get(NONCE_SCOPE_KEY)
    if value is None:
        value = scope[NONCE_SCOPE_KEY] = secrets.token_urlsafe(16)
    return str(value)


def csp_nonce() -> str:
    """The nonce of the document being rendered ("" outside a page's GET).

    In a template: ``<script nonce="{{ csp_nonce() }}" src="...">``.
    """
    return current_nonce.get()


@dataclass(frozen=True, slots=True)
class ContentSecurityPolicy:
    """The policy's directives; the nonce of each response is added to ``script_src``."""

    script_src: tuple[str, ...] = ("'strict-dynamic'", "'unsafe-eval'")
    connect_src: tuple[str, ...] = ("'self'",)
    object_src: tuple[str, ...] = ("'none'",)
    base_uri: tuple[str, ...] = ("'self'",)
    frame_ancestors: tuple[str, ...] = ("'self'",)

    def header(self, nonce: str | None) -> bytes:
        """The header's value for a response with ``nonce`` (None: no script has one)."""
        scripts = self.script_src if nonce is None else (f"'nonce-{nonce}'", *self.script_src)
        directives = (
            ("script-src", scripts),
            ("connect-src", self.connect_src),
            ("object-src", self.object_src),
            ("base-uri", self.base_uri),
            ("frame-ancestors", self.frame_ancestors),
        )
        return "; ".join(f"{name} {' '.join(values)}" for name, values in directives).encode()


def policy(settings: Settings) -> ContentSecurityPolicy | None:
    """The app's policy from its settings; None when ``settings.csp`` is off."""
    if not settings.csp:
        return None
    return ContentSecurityPolicy(connect_src=("'self'", *settings.csp_connect_src))
