"""livepages: server-driven, real-time web apps on Datastar.

The public API, exported explicitly (a test keeps the export list sorted and complete).
"""

from livepages.actions import action, invoke
from livepages.app import App
from livepages.assets import Assets
from livepages.broker.memory import MemoryBroker
from livepages.compression import CompressionSettings
from livepages.csp import ContentSecurityPolicy, csp_nonce
from livepages.csrf import CSRFError
from livepages.datastar import ServerSentEventGenerator
from livepages.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPError,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    ValidationError,
)
from livepages.events import TAB, USER, Event, on
from livepages.expressions import js_value
from livepages.feedback import Feedback
from livepages.guards import StartupRefused
from livepages.injection import Query, Signals
from livepages.lists import ListStream
from livepages.logs import Logs, configure_logging
from livepages.metrics import Metrics
from livepages.pages import Page, url
from livepages.params import Converter, ParamError
from livepages.presence import Member, Members, PresenceChange, PresenceEvent
from livepages.reflect import Reflect
from livepages.responses import Redirect, redirect, safe_next
from livepages.sessions import MemorySessionStore, SQLiteSessionStore
from livepages.sessions.session import Session, SessionManager
from livepages.settings import Settings
from livepages.store import Store, StoreConflict
from livepages.tabs import Tab
from livepages.templates import Templates
from livepages.uploads import Uploaded

#: The handle an action or event handler receives to send Datastar events.
SSE = ServerSentEventGenerator

__all__ = [
    "SSE",
    "TAB",
    "USER",
    "App",
    "Assets",
    "BadRequest",
    "CSRFError",
    "CompressionSettings",
    "Conflict",
    "ContentSecurityPolicy",
    "Converter",
    "Event",
    "Feedback",
    "Forbidden",
    "HTTPError",
    "ListStream",
    "Logs",
    "Member",
    "Members",
    "MemoryBroker",
    "MemorySessionStore",
    "Metrics",
    "NotFound",
    "Page",
    "ParamError",
    "PayloadTooLarge",
    "PresenceChange",
    "PresenceEvent",
    "Query",
    "Redirect",
    "Reflect",
    "RequestTimeout",
    "SQLiteSessionStore",
    "ServerSentEventGenerator",
    "ServiceUnavailable",
    "Session",
    "SessionManager",
    "Settings",
    "Signals",
    "StartupRefused",
    "Store",
    "StoreConflict",
    "Tab",
    "Templates",
    "Uploaded",
    "ValidationError",
    "action",
    "configure_logging",
    "csp_nonce",
    "invoke",
    "js_value",
    "on",
    "redirect",
    "safe_next",
    "url",
]
