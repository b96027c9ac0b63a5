"""A factory that cannot build its app: the harness must report its target unavailable."""

from __future__ import annotations

from starlette.types import ASGIApp


def create_app() -> ASGIApp:
    """Always fails, as a target with a missing dependency would."""
    raise NotImplementedError("this target is a placeholder on purpose")
