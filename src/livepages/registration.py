"""Registration errors: a page, action or handler that cannot work, found when it is registered.

``app.page`` and ``app.action`` inspect what they register once (``livepages.plans``,
``livepages.injection``) and raise a :class:`RegistrationError` for what cannot work: a
parameter type with no URL converter, a parameter that cannot be injected, a page without
``render``. The error names the most precise object at fault (the function, or the page
class and its field), so a tool can point at the line.

Normally the first such error stops the import of the app. ``livepages check`` imports the
app inside :func:`collecting` instead: each rejected registration is recorded, the class or
function is left unregistered, and the import carries on, so one run reports them all.
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Kind", "RegistrationError", "Rejected", "collecting", "defer", "planned"]

T = TypeVar("T")


class Kind(enum.Enum):
    """What kind of mistake a registration error is."""

    #: The page itself: its path, a reserved field name, a missing ``render``.
    DEFINITION = "definition"
    #: A page field whose type has no URL converter.
    PARAMETER = "parameter"
    #: A parameter of ``render``, an action, a handler or a hook that cannot be injected.
    INJECTION = "injection"


class RegistrationError(TypeError):
    """A page, action or handler that cannot work, found when it is registered.

    ``target`` is the object at fault (the function whose parameter cannot be injected, or
    the page class); ``member`` the page field, when one is at fault.
    """

    def __init__(
        self, message: str, target: object, *, kind: Kind, member: str | None = None
    ) -> None:
        super().__init__(message)
        self.target = target
        self.kind = kind
        self.member = member


@dataclass(frozen=True, slots=True)
class Rejected:
    """A registration that failed while :func:`collecting`, and what was being registered."""

    error: Exception
    #: The object at fault: ``error.target`` for a :class:`RegistrationError`, else the
    #: class or function that was being registered.
    target: object
    kind: Kind
    member: str | None = None


_collected: contextvars.ContextVar[list[Rejected] | None] = contextvars.ContextVar(
    "livepages_rejected", default=None
)


@contextmanager
def collecting() -> Iterator[list[Rejected]]:
    """Within the block, registrations that fail are recorded in the list, not raised."""
    found: list[Rejected] = []
    token = _collected.set(found)
    try:
        yield found
    finally:
        _collected.reset(token)


def planned(registering: object, build: Callable[..., T], *args: Any) -> T | None:
    """``build(*args)``, the plan of ``registering``; within :func:`collecting`, a
    ``TypeError`` or ``ValueError`` it raises is recorded instead, and the result is None."""
    try:
        return build(*args)
    except (TypeError, ValueError) as error:
        if defer(error, registering):
            return None
        raise


def defer(error: Exception, registering: object) -> bool:
    """Record ``error``, raised while registering ``registering``, if :func:`collecting`.

    True when it was recorded (the caller carries on without registering), False when the
    caller should raise it.
    """
    found = _collected.get()
    if found is None:
        return False
    if isinstance(error, RegistrationError):
        found.append(Rejected(error, error.target, error.kind, error.member))
    else:
        found.append(Rejected(error, registering, Kind.DEFINITION))
    return True
