"""The marketplace's records, its forms and the decoders of what visitors type.

Records are what the store keeps (``livepages.store``): plain dataclasses, one
collection each. Forms are the signals of the actions, checked in
``__post_init__`` so that a bad field comes back as the page's ``errors`` signal.
The decoders (``parse_price``, ``Filters.parse``) take any text and give a value
or a ``ValueError`` / a message, never another exception: they read the query
string and the forms.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from livepages import ValidationError

__all__ = [
    "MAX_DESCRIPTION",
    "MAX_MESSAGE",
    "MAX_MESSAGES",
    "MAX_PHOTOS",
    "MAX_PRICE",
    "MAX_QUERY",
    "MAX_TITLE",
    "Category",
    "Chat",
    "ChatKey",
    "ChatMessage",
    "Device",
    "EmailKey",
    "Filters",
    "Inbox",
    "Listing",
    "ListingForm",
    "MessageForm",
    "Photo",
    "PhotoRef",
    "Seeded",
    "SessionRef",
    "SignInForm",
    "SignUpForm",
    "User",
    "format_price",
    "parse_price",
    "price_text",
]

MAX_EMAIL = 254
MAX_NAME = 50
MIN_PASSWORD = 8
MAX_PASSWORD = 128
MAX_TITLE = 80
MAX_DESCRIPTION = 2000
#: Prices are kept in cents, at most 1,000,000.00.
MAX_PRICE = 100_000_000
MAX_PHOTOS = 6
MAX_MESSAGE = 500
#: Messages one conversation holds (they live in its record): past it, sending is refused.
MAX_MESSAGES = 1000
#: The longest search text kept: more is cut.
MAX_QUERY = 100

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PRICE = re.compile(r"(\d{1,9})(?:[.,](\d{1,2}))?")


class Category(enum.Enum):
    """What a listing is: the filter's choices, in the order the page shows them."""

    ELECTRONICS = "electronics"
    FURNITURE = "furniture"
    BIKES = "bikes"
    BOOKS = "books"
    CLOTHING = "clothing"
    HOME = "home"
    SPORTS = "sports"
    OTHER = "other"

    @property
    def label(self) -> str:
        """How the page names it."""
        return self.value.capitalize()


# -- records -------------------------------------------------------------------------------


@dataclass
class User:
    """An account. ``password`` is ``scrypt$<salt hex>$<hash hex>`` (``passwords``)."""

    id: int
    email: str
    name: str
    password: str
    joined: float


@dataclass
class EmailKey:
    """One e-mail address, taken by one user: its key makes addresses unique."""

    id: str
    user: int


@dataclass
class Listing:
    """Something for sale. ``price`` is in cents; ``photos`` are ``Photo`` ids."""

    id: int
    seller: int
    title: str
    category: str
    price: int
    description: str
    photos: list[int]
    created: float
    updated: float


@dataclass
class Photo:
    """A listing's photo: its bytes (a JPEG, PNG, GIF or WebP, checked on upload)."""

    id: int
    owner: int
    content_type: str
    data: bytes


@dataclass
class ChatMessage:
    """One message of a conversation; ids count from 1 in each conversation."""

    id: int
    sender: int
    text: str
    sent: float


@dataclass
class Chat:
    """A buyer's conversation with the seller about one listing, messages included.

    ``seen_buyer`` and ``seen_seller`` are the last message id each has seen: the
    read receipts. The messages live in the record, so a chat page depends on this
    one record and re-renders for its own messages only.
    """

    id: int
    listing: int
    buyer: int
    seller: int
    created: float
    messages: list[ChatMessage] = field(default_factory=list)
    seen_buyer: int = 0
    seen_seller: int = 0

    def party(self, user: int) -> bool:
        """Whether ``user`` is the buyer or the seller."""
        return user in (self.buyer, self.seller)

    def other(self, user: int) -> int:
        """The other party of ``user``."""
        return self.seller if user == self.buyer else self.buyer

    def seen_by(self, user: int) -> int:
        """The last message id ``user`` has seen."""
        return self.seen_buyer if user == self.buyer else self.seen_seller

    @property
    def last_id(self) -> int:
        """The id of the newest message (0 without any)."""
        return self.messages[-1].id if self.messages else 0

    def unread(self, user: int) -> int:
        """How many of the other party's messages ``user`` has not seen."""
        seen = self.seen_by(user)
        return sum(1 for m in self.messages if m.id > seen and m.sender != user)


@dataclass
class ChatKey:
    """``<listing>:<buyer>``: one conversation per listing and buyer."""

    id: str
    chat: int


@dataclass
class Seeded:
    """A marker: its presence says the demo data is there (``seed``)."""

    id: str


@dataclass
class Inbox:
    """A user's conversations (chat ids), so their pages read one record, not all chats."""

    id: int
    chats: list[int] = field(default_factory=list)


# -- forms -----------------------------------------------------------------------------------


@dataclass
class SignUpForm:
    """The sign-up signals."""

    email: str = ""
    name: str = ""
    password: str = ""

    def __post_init__(self) -> None:
        self.email = self.email.strip().lower()
        self.name = " ".join(self.name.split())
        errors = {}
        if not self.email:
            errors["email"] = "is required"
        elif len(self.email) > MAX_EMAIL or not EMAIL.fullmatch(self.email):
            errors["email"] = "is not an e-mail address"
        if not self.name:
            errors["name"] = "is required"
        elif len(self.name) > MAX_NAME:
            errors["name"] = f"must be at most {MAX_NAME} characters"
        if len(self.password) < MIN_PASSWORD:
            errors["password"] = f"must be at least {MIN_PASSWORD} characters"
        elif len(self.password) > MAX_PASSWORD:
            errors["password"] = f"must be at most {MAX_PASSWORD} characters"
        if errors:
            raise ValidationError(errors)


@dataclass
class SignInForm:
    """The sign-in signals."""

    email: str = ""
    password: str = ""

    def __post_init__(self) -> None:
        self.email = self.email.strip().lower()
        if not self.email or not self.password:
            raise ValidationError({"password": "enter your e-mail and password"})


@dataclass
class ListingForm:
    """The signals of posting and editing a listing (the photos come as uploads)."""

    title: str = ""
    category: str = ""
    price: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        self.title = " ".join(self.title.split())
        self.description = self.description.strip()
        errors = {}
        if not self.title:
            errors["title"] = "is required"
        elif len(self.title) > MAX_TITLE:
            errors["title"] = f"must be at most {MAX_TITLE} characters"
        if self.category not in {c.value for c in Category}:
            errors["category"] = "choose a category"
        try:
            parse_price(self.price)
        except ValueError as exc:
            errors["price"] = str(exc)
        if len(self.description) > MAX_DESCRIPTION:
            errors["description"] = f"must be at most {MAX_DESCRIPTION} characters"
        if errors:
            raise ValidationError(errors)

    @property
    def cents(self) -> int:
        """The price, in cents (checked already)."""
        return parse_price(self.price)


@dataclass
class MessageForm:
    """The chat's compose signal."""

    text: str = ""

    def __post_init__(self) -> None:
        self.text = self.text.strip()
        if not self.text:
            raise ValidationError({"text": "is empty"})
        if len(self.text) > MAX_MESSAGE:
            raise ValidationError({"text": f"must be at most {MAX_MESSAGE} characters"})


@dataclass
class SessionRef:
    """The ``session`` signal: the id of the session a button closes."""

    session: str = ""


@dataclass
class PhotoRef:
    """The ``photo`` signal: the id of the photo a button removes."""

    photo: int = 0


@dataclass
class Device:
    """A session's data: what signed in, so the settings page can tell sessions apart."""

    agent: str = ""


# -- decoders ----------------------------------------------------------------------------------


def parse_price(text: str) -> int:
    """``"12"``, ``"12.5"``, ``"$12.50"`` as cents; ``ValueError`` saying why otherwise."""
    text = text.strip().removeprefix("$").strip().replace("\u00a0", "")
    if not text:
        raise ValueError("is required")
    match = PRICE.fullmatch(text)
    if match is None:
        raise ValueError("must be an amount such as 25 or 12.50")
    cents = int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))
    if cents > MAX_PRICE:
        raise ValueError(f"must be at most {format_price(MAX_PRICE)}")
    return cents


def format_price(cents: int) -> str:
    """``1250`` as ``$12.50``, ``1200`` as ``$12``."""
    whole, part = divmod(cents, 100)
    return f"${whole:,}" if part == 0 else f"${whole:,}.{part:02d}"


def price_text(cents: int) -> str:
    """``1250`` as ``12.50`` and ``1200`` as ``12``: what the price input shows."""
    whole, part = divmod(cents, 100)
    return str(whole) if part == 0 else f"{whole}.{part:02d}"


@dataclass(frozen=True)
class Filters:
    """The listings filter, from the query string: what to search, and what was wrong.

    ``parse`` takes the four query values as typed (any text) and never fails: a
    value it cannot use is left out of the filter and named in ``errors``.
    """

    words: tuple[str, ...] = ()
    category: Category | None = None
    min_price: int | None = None
    max_price: int | None = None
    errors: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, q: str, category: str, min_price: str, max_price: str) -> Filters:
        """The filter of these query values; unusable ones are in ``errors``."""
        errors: list[tuple[str, str]] = []
        words = tuple(q[:MAX_QUERY].lower().split())
        chosen = None
        if category:
            try:
                chosen = Category(category)
            except ValueError:
                errors.append(("category", "is not a category"))
        low = _price_or_error("min_price", min_price, errors)
        high = _price_or_error("max_price", max_price, errors)
        if low is not None and high is not None and low > high:
            errors.append(("max_price", "is below the minimum"))
        return cls(words, chosen, low, high, tuple(errors))

    def matches(self, listing: Listing) -> bool:
        """Whether the listing passes every part of the filter."""
        if self.category is not None and listing.category != self.category.value:
            return False
        if self.min_price is not None and listing.price < self.min_price:
            return False
        if self.max_price is not None and listing.price > self.max_price:
            return False
        text = f"{listing.title}\n{listing.description}".lower()
        return all(word in text for word in self.words)


def _price_or_error(name: str, text: str, errors: list[tuple[str, str]]) -> int | None:
    if not text.strip():
        return None
    try:
        return parse_price(text)
    except ValueError as exc:
        errors.append((name, str(exc)))
        return None
