"""What an action's answer says: where it sends the browser, or what went wrong.

An action answers 200 with Datastar events whether it worked or not: a failure is a
``_error`` signal with a non-zero status, a refused input an ``errors`` signal with a
message, and a redirect a script that sets ``window.location.href``. The body comes
from the server under test, so it is decoded defensively: any text gives an
``Outcome``, never an exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from livepages.protocol import ERROR_SIGNAL, ERRORS_SIGNAL
from livepages.testing import DatastarEvent, parse_events

__all__ = ["Outcome", "read_outcome"]

# The script of ``livepages.datastar.events.redirect``: the URL as a JSON string.
_REDIRECT = re.compile(r'window\.location\.href = ("(?:[^"\\]|\\.)*")')


@dataclass(frozen=True, slots=True)
class Outcome:
    """An action's answer: the URL it redirects to, and the failure it reports."""

    redirect: str | None = None
    #: ``None`` when the action reports no failure.
    error: str | None = None


def read_outcome(body: str) -> Outcome:
    """The outcome that an action's event-stream ``body`` reports."""
    events, _ = parse_events(body + "\n\n")  # the last event may lack its blank line
    redirect = None
    for event in events:
        error = _failure(event)
        if error is not None:
            return Outcome(redirect, error)
        if redirect is None:
            redirect = _redirect(event)
    return Outcome(redirect)


def _redirect(event: DatastarEvent) -> str | None:
    if event.type != "datastar-patch-elements":
        return None
    match = _REDIRECT.search(event.elements)
    if match is None:
        return None
    try:
        url = json.loads(match.group(1))
    except ValueError:
        return None
    return url if isinstance(url, str) else None


def _failure(event: DatastarEvent) -> str | None:
    if event.type != "datastar-patch-signals":
        return None
    try:
        signals = event.signals
    except (ValueError, RecursionError):
        return "unreadable signals in the answer"
    if not isinstance(signals, dict):
        return None
    error = signals.get(ERROR_SIGNAL)
    if isinstance(error, dict) and error.get("status") not in (None, 0):
        return f"{error.get('status')} {error.get('message', '')}".strip()
    refused = signals.get(ERRORS_SIGNAL)
    if isinstance(refused, dict):
        messages = [f"{name}: {text}" for name, text in refused.items() if text]
        if messages:
            return "refused: " + "; ".join(map(str, messages))
    return None
