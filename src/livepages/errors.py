"""HTTP errors that application code raises and livepages turns into responses.

They subclass Starlette's ``HTTPException``, so they also become proper error
responses in a plain Starlette or FastAPI app.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "HTTPError",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServiceUnavailable",
    "ValidationError",
]


class HTTPError(HTTPException):
    """An error with an HTTP status and a message that is safe to show the user."""

    status = 500

    def __init__(
        self,
        message: str | None = None,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status or self.status, message, dict(headers) if headers else None)

    @property
    def message(self) -> str:
        """The text shown to the user (the HTTP reason phrase when none was given)."""
        return self.detail


class BadRequest(HTTPError):
    """400: the request is malformed."""

    status = 400


class Forbidden(HTTPError):
    """403: the request is not allowed."""

    status = 403


class NotFound(HTTPError):
    """404: nothing lives at this address."""

    status = 404


class Conflict(HTTPError):
    """409: the request conflicts with the current state."""

    status = 409


class RequestTimeout(HTTPError):
    """408: the client stopped sending its request body."""

    status = 408


class PayloadTooLarge(HTTPError):
    """413: the body is larger than the configured limit."""

    status = 413


class ServiceUnavailable(HTTPError):
    """503: a backing service (session store, broker) failed."""

    status = 503


class ValidationError(Exception):
    """Input that parsed but is not acceptable, with one message per field.

    Raise it from an action (or a signals dataclass's ``__post_init__``): for a
    Datastar request livepages answers by patching an ``errors`` signal, e.g.
    ``{"errors": {"email": "is required"}}``, instead of failing the request.
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(", ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)
