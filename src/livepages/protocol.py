"""Wire names: what livepages' pages, streams and processes say to each other.

Everything a browser, a proxy or another process of the app sees by name is
defined here once: request headers, page-local signals, the paths of a page's
stream and actions, the ASGI scope keys, and the broker subjects livepages
uses internally (each under the app's subject prefix).
"""

from __future__ import annotations

import enum
from typing import ClassVar

from livepages.decoding import JSONMessage

__all__ = [
    "ACTION_PREFIX",
    "BUILD_HEADER",
    "CONNECTION_SIGNAL",
    "CSRF_HEADER",
    "CSRF_SIGNAL",
    "ERRORS_SIGNAL",
    "ERROR_SIGNAL",
    "LIVE_ID",
    "LIVE_PATH",
    "PRESENCE_RENAME",
    "ROOT_ID",
    "SESSION_CLOSED",
    "SESSION_SCOPE_KEY",
    "STORE_CHANGED",
    "TAB_HEADER",
    "TAB_REFRESH",
    "TAB_SIGNAL",
    "UPLOAD_PATH",
    "UPLOAD_SCRIPT",
    "ClosedReason",
    "SessionNotice",
]

# -- HTTP ---------------------------------------------------------------------------

#: The request header that carries the CSRF token (Datastar sends it with ``@post``).
CSRF_HEADER = "X-CSRF-Token"
#: The request header that carries the page's tab id (its stream and its actions).
TAB_HEADER = "X-LP-Tab"
#: The build that rendered the page, sent with its stream so that a page rendered by
#: another build (a deploy, a restart of ``livepages dev``) reloads itself (``livepages.builds``).
BUILD_HEADER = "X-LP-Build"
#: A page's live stream, below the page's own path.
LIVE_PATH = "/_live"
#: A page's actions (``/_action/<name>``), below the page's path; app-wide ones at the root.
ACTION_PREFIX = "/_action/"
#: The app's upload endpoint (``POST`` starts an upload; ``HEAD``, ``PATCH`` and
#: ``DELETE`` on ``<path>/<id>`` ask, append and cancel), and its browser script.
UPLOAD_PATH = "/_upload"
UPLOAD_SCRIPT = "/_upload.js"

# -- the page -----------------------------------------------------------------------

#: Page-local signals (Datastar does not send ``_``-prefixed signals to the server).
CSRF_SIGNAL = "_csrf"
TAB_SIGNAL = "_tab"
#: A failed Datastar request's ``{status, message}``; ``{0, ""}`` when nothing failed.
ERROR_SIGNAL = "_error"
#: The state of the page's stream: ``live``, ``reconnecting`` or ``offline``
#: (``livepages.feedback``).
CONNECTION_SIGNAL = "_connection"
#: Per-field validation messages of the last action.
ERRORS_SIGNAL = "errors"
#: The id of the element that holds a page's body, the target of every morph.
ROOT_ID = "lp-root"
#: The id of the element that opens a page's stream (outside the root, never morphed).
LIVE_ID = "lp-live"

# -- ASGI scope -----------------------------------------------------------------------

#: Where a request's loaded session lives in the ASGI scope.
SESSION_SCOPE_KEY = "livepages.session"

# -- broker subjects (internal) ---------------------------------------------------------

#: ``<prefix><tab id>``: re-render every view of one tab (after that tab's action).
TAB_REFRESH = "_lp.tab."
#: ``<prefix><session id>``: a session was closed; its streams end on every process.
SESSION_CLOSED = "_lp.session."
#: A member of a presence topic changed name; every process holding it renames it.
PRESENCE_RENAME = "_lp.presence.rename"
#: Records changed by a store commit (``livepages.store.changes``): views re-render.
STORE_CHANGED = "_lp.store"


class ClosedReason(enum.Enum):
    """Why a session ended, which decides where its open pages go."""

    #: Signed out or closed: the pages go to the sign-in page (``closed_url``).
    CLOSED = "closed"
    #: Replaced by a sign-in: the streams only end; they reconnect with the new cookie.
    REPLACED = "replaced"


class SessionNotice(JSONMessage, frozen=True):
    """The message on ``SESSION_CLOSED + <id>``: why, and which tab caused it.

    The ``caller_tab`` follows its own action's response (a redirect, say), so its
    stream ends without being sent anywhere.
    """

    what: ClassVar[str] = "session notice"

    reason: ClosedReason
    caller_tab: str | None = None
