"""The ``/test`` endpoint of the official Datastar SDK conformance runner.

The runner sends ``{"events": [...]}`` as signals (GET query parameter or POST
body) and compares the SSE answer with its golden files. Each event names an
SDK call by ``type`` and carries its options in camelCase. Run this app and
point the official runner at it::

    python -m livepages.datastar.conformance --port 7331
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from livepages.datastar import events
from livepages.datastar.response import DatastarResponse
from livepages.datastar.signals import SignalsError, read_signals
from livepages.middleware import SecurityHeaders

__all__ = ["create_app", "encode_case_event"]


def _timing(event: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if "eventId" in event:
        options["event_id"] = str(event["eventId"])
    if "retryDuration" in event:
        options["retry_duration"] = int(event["retryDuration"])
    return options


def encode_case_event(event: Mapping[str, Any]) -> bytes:
    """Encode one runner event with the SDK call it names."""
    kind = event.get("type")
    options = _timing(event)
    if kind == "patchElements":
        return events.patch_elements(
            event.get("elements"),
            selector=event.get("selector"),
            mode=event.get("mode", "outer"),
            namespace=event.get("namespace", "html"),
            use_view_transition=bool(event.get("useViewTransition", False)),
            view_transition_selector=event.get("viewTransitionSelector"),
            **options,
        )
    if kind == "patchSignals":
        signals = event["signals-raw"] if "signals-raw" in event else event.get("signals", {})
        return events.patch_signals(
            signals, only_if_missing=bool(event.get("onlyIfMissing", False)), **options
        )
    if kind == "executeScript":
        return events.execute_script(
            event["script"],
            auto_remove=bool(event.get("autoRemove", True)),
            attributes={str(k): str(v) for k, v in event.get("attributes", {}).items()},
            **options,
        )
    raise SignalsError(f"unknown event type {kind!r}")


async def _test(request: Request) -> DatastarResponse:
    signals = await read_signals(request)
    cases = signals.get("events")
    if not isinstance(cases, list) or not all(isinstance(case, dict) for case in cases):
        raise SignalsError("signals must hold an 'events' list of objects")
    encoded = [encode_case_event(case) for case in cases]

    def stream() -> Iterator[bytes]:
        yield from encoded

    return DatastarResponse(stream())


def create_app() -> ASGIApp:
    """A Starlette app with the runner's ``/test`` route (GET and POST)."""
    routes = [Route("/test", _test, methods=["GET", "POST"])]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


def main() -> None:  # pragma: no cover - a manual entry point
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7331)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
