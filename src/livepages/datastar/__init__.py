"""livepages.datastar: a Datastar SDK for any ASGI application.

Encoders return ready-to-write ``bytes``; ``DatastarResponse`` and
``ServerSentEventGenerator`` stream them; ``read_signals`` reads what the
browser sends.
"""

from livepages.datastar.events import (
    DEFAULT_RETRY_DURATION,
    ElementPatchMode,
    Namespace,
    execute_script,
    patch_elements,
    patch_signals,
    redirect,
    remove_elements,
    remove_signals,
)
from livepages.datastar.response import (
    ClientDisconnected,
    DatastarResponse,
    ServerSentEventGenerator,
    sse_headers,
)
from livepages.datastar.signals import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_SIGNALS_DEPTH,
    DEFAULT_MAX_SIGNALS_SIZE,
    DEFAULT_READ_TIMEOUT,
    SignalsError,
    check_length,
    decode_signals,
    limited_receive,
    query_signals,
    raw_signals,
    read_body,
    read_signals,
)

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_SIGNALS_DEPTH",
    "DEFAULT_MAX_SIGNALS_SIZE",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_RETRY_DURATION",
    "ClientDisconnected",
    "DatastarResponse",
    "ElementPatchMode",
    "Namespace",
    "ServerSentEventGenerator",
    "SignalsError",
    "check_length",
    "decode_signals",
    "execute_script",
    "limited_receive",
    "patch_elements",
    "patch_signals",
    "query_signals",
    "raw_signals",
    "read_body",
    "read_signals",
    "redirect",
    "remove_elements",
    "remove_signals",
    "sse_headers",
]
