"""livepages: server-driven, real-time web apps on Datastar.

The public API, exported explicitly (a test keeps ``__all__`` sorted and complete).
"""

from livepages.actions import action, invoke
from livepages.app import App
from livepages.assets import Assets
from livepages.datastar import ServerSentEventGenerator
from livepages.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    HTTPError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    ValidationError,
)
from livepages.injection import Query, Signals
from livepages.pages import Page, url
from livepages.params import Converter, ParamError
from livepages.responses import Redirect, redirect
from livepages.settings import Settings
from livepages.templates import Templates

#: The handle an action or event handler receives to send Datastar events.
SSE = ServerSentEventGenerator

__all__ = [
    "SSE",
    "App",
    "Assets",
    "BadRequest",
    "Conflict",
    "Converter",
    "Forbidden",
    "HTTPError",
    "NotFound",
    "Page",
    "ParamError",
    "PayloadTooLarge",
    "Query",
    "Redirect",
    "ServerSentEventGenerator",
    "ServiceUnavailable",
    "Settings",
    "Signals",
    "Templates",
    "ValidationError",
    "action",
    "invoke",
    "redirect",
    "url",
]
