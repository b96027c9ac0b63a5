"""Sign-up: a form that the server validates field by field.

The form is sent with Datastar as a form (``action(page.register, form=True)``).
livepages decodes it into the ``Registration`` dataclass field by field: a
missing or mistyped field, or a ``ValidationError`` raised by the dataclass or
the action, comes back as one ``errors`` signal patch with a message per field
(``""`` for the fields that are fine), which the template shows next to each
input. A valid sign-up adds a member and redirects to the welcome page.

``create_app(settings)`` builds a fresh app with its own members, so tests can
pass settings (a local Datastar build) and start from an empty list; ``app`` is
the one that ``make run`` serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from livepages import App, NotFound, Page, Redirect, Settings, ValidationError, action, redirect

__all__ = ["FORM_FIELDS", "Member", "Members", "Registration", "app", "create_app"]

TEMPLATES = Path(__file__).parent / "templates"
MIN_AGE, MAX_AGE = 13, 120


@dataclass(frozen=True, slots=True)
class Member:
    """One person who signed up."""

    id: int
    name: str
    email: str
    age: int | None


class Members:
    """The members so far, in memory: a real app would keep them in a database."""

    def __init__(self) -> None:
        self._members: list[Member] = []

    def __iter__(self) -> Iterator[Member]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def get(self, member_id: int) -> Member | None:
        """The member with this id, if there is one."""
        return next((m for m in self._members if m.id == member_id), None)

    def has_email(self, email: str) -> bool:
        """Whether someone already signed up with this address (case-insensitive)."""
        return any(m.email.casefold() == email.casefold() for m in self._members)

    def add(self, registration: Registration) -> Member:
        """Add a member from a valid registration and return it."""
        member = Member(
            len(self._members) + 1, registration.name, registration.email, registration.age
        )
        self._members.append(member)
        return member


@dataclass
class Registration:
    """The sign-up form as the browser sends it.

    livepages checks presence and types (an empty required input is "is
    required"; ``age`` must be a whole number); the rules below run once every
    field has decoded, and catch text that is only blanks.
    """

    name: str
    email: str
    age: int | None = None

    def __post_init__(self) -> None:
        self.name = self.name.strip()
        self.email = self.email.strip()
        errors = {}
        if not self.name:
            errors["name"] = "is required"
        if not self.email:
            errors["email"] = "is required"
        elif "@" not in self.email:
            errors["email"] = "must contain @"
        if self.age is not None and not MIN_AGE <= self.age <= MAX_AGE:
            errors["age"] = f"must be between {MIN_AGE} and {MAX_AGE}"
        if errors:
            raise ValidationError(errors)


#: The form's fields: the template starts each one's error message empty.
FORM_FIELDS = tuple(f.name for f in fields(Registration))


def create_app(settings: Settings | None = None) -> App:
    """A sign-up app with an empty member list."""
    # No icon: an empty one stops browsers from asking for /favicon.ico (a 404).
    app = App(templates=TEMPLATES, settings=settings, head='<link rel="icon" href="data:,">')
    members = Members()

    @app.page("/welcome/{id}")
    class Welcome(Page):
        """Where a new member lands after signing up."""

        id: int

        def title(self) -> str:
            return "Welcome"

        async def render(self) -> str:
            member = members.get(self.id)
            if member is None:
                raise NotFound(f"there is no member {self.id}")
            html: str = self.template("welcome.html", member=member, members=members)
            return html

    @app.page("/")
    class SignUp(Page):
        """The sign-up form, with the members so far."""

        def title(self) -> str:
            return "Sign up"

        async def render(self) -> str:
            errors = dict.fromkeys(FORM_FIELDS, "")
            html: str = self.template("signup.html", errors=errors, members=members)
            return html

        @action
        async def register(self, registration: Registration) -> Redirect:
            # Uniqueness needs the server's state, so it is checked here and
            # not in the dataclass; the message lands next to the email input all the same.
            if members.has_email(registration.email):
                raise ValidationError({"email": "is already registered"})
            member = members.add(registration)
            return redirect(Welcome(id=member.id))

    return app


app = create_app()
