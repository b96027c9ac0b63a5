"""The virtual users: who they are, what they do, and in which order.

Users come in pairs that chat: the seller posts a listing, the buyer opens it and
contacts the seller, and both keep the chat's page open (its live stream) for the
whole run. One user in ``WATCHER_EVERY`` is a watcher instead, whose open page is
the listings (``/``), where new listings appear live.

One user in ``ARRIVALS`` is new and signs up during the run; one signs out and in
again with a password; the others are returning visitors whose browser is still
signed in: their accounts and sessions are made before the run (``prepare``, by
the same sign-up action, at a gentle pace and not timed with the run). A password
hash costs the app tens of milliseconds of CPU (scrypt), so 500 sign-ups in the
first seconds would measure little else.

Then, until the run's end, each user repeats a step chosen at random (``STEPS``)
after a pause of about ``think`` seconds: browse the listings (and load a photo),
search them, look at a listing (whose page's stream is open meanwhile: "n people are
looking"), post a listing, edit one of its own, open the settings (and now and then
close its other sessions), or (in a pair) type and send a chat message; and it marks
the counterpart's messages seen once they arrive. Every message and listing carries a unique token
(``token``) in its text: the counterpart's or watchers' streams are scanned for it
(live-update latency), and the database for every acknowledged one at the end
(lost writes).
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from benchmarks.classifieds.browser import Browser, Failed, Page, Stream
from benchmarks.classifieds.record import Live, Recorder, WriteKind
from livepages.testing import DatastarEvent

__all__ = [
    "ARRIVALS",
    "CATEGORIES",
    "STEPS",
    "TOKEN",
    "WATCHER_EVERY",
    "Arrival",
    "Pair",
    "Role",
    "Run",
    "Step",
    "VirtualUser",
    "token",
]

#: The categories that the example offers (its README).
CATEGORIES = ("electronics", "furniture", "bikes", "books", "clothing", "home", "sports", "other")
WORDS = ("blue", "vintage", "lamp", "bicycle", "sofa", "phone", "desk", "jacket", "novel", "chair")
#: The token that marks one write: user number and sequence number.
TOKEN = re.compile(r"ltk\d{4}n\d{5}")
WATCHER_EVERY = 10
#: Of each ``ARRIVALS`` users, which one is new and which signs out and in again.
ARRIVALS = 10
NEW_AT, SIGNIN_AT = 0, 5
PASSWORD = "correct horse battery staple"


def token(user: int, sequence: int) -> str:
    """The unique token of the ``sequence``-th write of ``user`` (matches ``TOKEN``)."""
    return f"ltk{user:04d}n{sequence:05d}"


class Arrival(Enum):
    """How a user comes in."""

    #: Signs up during the run.
    NEW = "new"
    #: Signed up before the run; signs out and in again with its password.
    SIGNIN = "sign in"
    #: Signed up before the run, and still signed in.
    RETURNING = "returning"


def arrival_of(number: int) -> Arrival:
    """How user ``number`` comes in."""
    if number % ARRIVALS == NEW_AT:
        return Arrival.NEW
    return Arrival.SIGNIN if number % ARRIVALS == SIGNIN_AT else Arrival.RETURNING


class Role(Enum):
    """What a user keeps open."""

    SELLER = "seller"
    BUYER = "buyer"
    WATCHER = "watcher"


class Step(Enum):
    """One thing a user does between pauses."""

    BROWSE = "browse"
    SEARCH = "search"
    VIEW = "view"
    POST = "post"
    SETTINGS = "settings"
    CHAT = "chat"
    EDIT = "edit"


#: How often each step is chosen (chat only in a pair).
STEPS = {
    Step.BROWSE: 3,
    Step.SEARCH: 3,
    Step.VIEW: 3,
    Step.CHAT: 4,
    Step.POST: 1,
    Step.SETTINGS: 1,
    Step.EDIT: 1,
}


def _future() -> asyncio.Future[int]:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    # A partner that failed first may never read it: its failure was recorded.
    future.add_done_callback(lambda done: done.cancelled() or done.exception())
    return future


@dataclass
class Pair:
    """What a seller and a buyer share: the seller's listing, then their chat."""

    listing: asyncio.Future[int] = field(default_factory=_future)
    chat: asyncio.Future[int] = field(default_factory=_future)


@dataclass
class Run:
    """What all the users of one run share."""

    bases: Sequence[str]
    recorder: Recorder
    deadline: float
    think: float
    timeout: float
    #: Listings known to exist (acknowledged), for users to look at.
    listings: list[int] = field(default_factory=list)
    #: The user numbers of the watchers, whose streams show new listings.
    watchers: set[int] = field(default_factory=set)


def role_of(number: int, users: int) -> Role:
    """The role of user ``number`` (0-based) of ``users``: pairs, one watcher in ten,
    and a last odd one out as a watcher too."""
    if number % WATCHER_EVERY == WATCHER_EVERY - 1:
        return Role.WATCHER
    chatter = number - number // WATCHER_EVERY  # its index among the chatters
    chatters = users - users // WATCHER_EVERY
    if chatter % 2 == 0 and chatter + 1 >= chatters:
        return Role.WATCHER
    return Role.SELLER if chatter % 2 == 0 else Role.BUYER


def partner_of(number: int) -> int:
    """The user number of a seller's buyer or a buyer's seller."""
    chatter = number - number // WATCHER_EVERY
    other = chatter + 1 if chatter % 2 == 0 else chatter - 1
    # Back from the chatter index to the user number (skipping the watchers).
    return other + other // (WATCHER_EVERY - 1)


class VirtualUser:
    """One user: sets up its account and open page, then steps until the deadline."""

    def __init__(self, number: int, role: Role, pair: Pair | None, run: Run) -> None:
        self.number = number
        self.role = role
        self.pair = pair
        self.run = run
        self.rng = random.Random(number)
        self.browser = Browser(run.bases, run.recorder, self.rng, run.timeout)
        self.sequence = 0
        self.open_page: Page | None = None
        self.stream: Stream | None = None
        self.unseen = False
        #: This user's listings: title, category and the token of their latest edit.
        self.posted: dict[int, tuple[str, str, str | None]] = {}
        #: The photos this user's browser has loaded (and keeps).
        self.photos: set[str] = set()
        #: The counterpart's messages shown so far (a chat re-render shows old ones too).
        self.received: set[str] = set()
        self.email = f"user{number}-{id(run):x}@load.test"

    def next_token(self) -> str:
        self.sequence += 1
        return token(self.number, self.sequence)

    async def live(self) -> None:
        """The user's whole visit; errors are recorded, never raised."""
        try:
            await self.set_up()
        except (Failed, TimeoutError) as exc:
            if isinstance(exc, TimeoutError):
                self.run.recorder.error("set-up", "the partner was not ready in time")
            if self.pair is not None:  # the partner waits for nothing more
                for future in (self.pair.listing, self.pair.chat):
                    if not future.done():
                        future.set_exception(Failed("the partner's set-up failed"))
            await self.leave()
            return
        while time.monotonic() < self.run.deadline:
            await asyncio.sleep(self.run.think * self.rng.uniform(0.5, 1.5))
            if time.monotonic() >= self.run.deadline:
                break
            try:
                await self.step()
                await self.keep_open()
            except Failed:
                continue  # recorded; the user goes on with the next step

    async def leave(self) -> None:
        """Close the open page's stream."""
        if self.stream is not None:
            await self.stream.close()
        await self.browser.close()

    # -- set-up ---------------------------------------------------------------------

    async def prepare(self, recorder: Recorder) -> None:
        """Before the run: the account (and session) of a user who is not new,
        recorded in ``recorder``; ``Failed`` if it could not be made."""
        if arrival_of(self.number) is Arrival.NEW:
            return
        self.browser.recorder = recorder
        try:
            await self.sign_up()
        finally:
            self.browser.recorder = self.run.recorder

    async def set_up(self) -> None:
        arrival = arrival_of(self.number)
        if arrival is Arrival.NEW:
            await self.sign_up()
        elif arrival is Arrival.SIGNIN:
            await self.sign_out_and_in()
        if self.role is Role.WATCHER:
            await self.open(await self.browser.get("/"))
            self.run.watchers.add(self.number)
            return
        assert self.pair is not None
        wait = self.run.timeout * 4  # the partner's set-up comes first
        if self.role is Role.SELLER:
            self.pair.listing.set_result(await self.post())
            chat = await asyncio.wait_for(asyncio.shield(self.pair.chat), wait)
            # (a failed partner sets Failed on the future: this user gives up too)
        else:
            listing = await asyncio.wait_for(asyncio.shield(self.pair.listing), wait)
            page = await self.browser.get(f"/listings/{listing}")
            match = await self.browser.redirected(page, "contact", {}, _CHAT_URL)
            chat = int(match.group(1))
            self.pair.chat.set_result(chat)
        await self.open(await self.browser.get(f"/chats/{chat}"))

    async def sign_up(self) -> None:
        page = await self.browser.get("/signup")
        signals = {"email": self.email, "name": f"User {self.number}", "password": PASSWORD}
        await self.browser.action(page, "signup", signals)

    async def sign_out_and_in(self) -> None:
        page = await self.browser.get("/settings")
        await self.browser.action(page, "signout")
        page = await self.browser.get("/signin")
        await self.browser.action(page, "signin", {"email": self.email, "password": PASSWORD})

    async def open(self, page: Page) -> None:
        """Make ``page`` the user's open page, with its stream."""
        if self.stream is not None:
            await self.stream.close()
        self.open_page = page
        self.stream = self.browser.stream(page, self.on_event)
        await self.stream.open()

    async def keep_open(self) -> None:
        """Reopen the user's page if its stream broke (the break was an error already)."""
        if self.stream is not None and self.stream.broken and self.open_page is not None:
            await self.open(await self.browser.get(self.open_page.path))

    def on_event(self, event: DatastarEvent) -> None:
        found = set(TOKEN.findall(event.elements))
        for text in found:
            self.run.recorder.shown(text, self.number)
        if self.role is Role.WATCHER:
            return
        new = {t for t in found if not t.startswith(self.prefix)} - self.received
        if new:
            self.received |= new
            self.unseen = True

    @property
    def prefix(self) -> str:
        return f"ltk{self.number:04d}n"

    # -- steps ----------------------------------------------------------------------

    async def step(self) -> None:
        if self.unseen and self.open_page is not None:
            self.unseen = False
            await self.browser.action(self.open_page, "seen")
            return
        steps = [
            step
            for step in STEPS
            if (step is not Step.CHAT or self.role is not Role.WATCHER)
            and (step is not Step.EDIT or self.posted)
        ]
        chosen = self.rng.choices(steps, [STEPS[s] for s in steps])[0]
        if chosen is Step.BROWSE:
            await self.browse()
        elif chosen is Step.SEARCH:
            await self.search()
        elif chosen is Step.VIEW:
            await self.view()
        elif chosen is Step.POST:
            await self.post()
        elif chosen is Step.SETTINGS:
            await self.settings()
        elif chosen is Step.EDIT:
            await self.edit()
        else:
            await self.chat()

    async def browse(self) -> None:
        """The listings, and a photo on them that this user has not loaded yet (a
        browser keeps photos: they are cached for good)."""
        page = await self.browser.get("/")
        new = [photo for photo in _PHOTO.findall(page.html) if photo not in self.photos]
        if new:
            self.photos.add(new[0])
            await self.browser.fetch(f"/photos/{new[0]}")

    async def settings(self) -> None:
        """The settings, and now and then "close my other sessions" (there are none)."""
        page = await self.browser.get("/settings")
        if self.rng.random() < 1 / 3:
            await self.browser.action(page, "close_others")

    async def edit(self) -> None:
        """Change the price and description of one of this user's listings."""
        listing = self.rng.choice(list(self.posted))
        title, category, previous = self.posted[listing]
        page = await self.browser.get(f"/listings/{listing}/edit")
        text = self.next_token()
        signals = {
            "title": title,
            "category": category,
            "price": str(self.rng.randrange(1, 1000)),
            "photos": [],
            "description": f"Price lowered. {text}",
        }
        await self.browser.redirected(page, "save", signals, _LISTING_URL)
        # The new description replaces the previous edit's (the title keeps the
        # listing's own token): only the latest edit must be in the database.
        self.run.recorder.wrote(WriteKind.EDIT, text, replaces=previous)
        self.posted[listing] = (title, category, text)

    async def search(self) -> None:
        low = self.rng.randrange(0, 200, 10)
        query = [f"q={self.rng.choice(WORDS)}"]
        if self.rng.random() < 0.5:
            query.append(f"category={self.rng.choice(CATEGORIES)}")
        if self.rng.random() < 0.5:
            query += [f"min_price={low}", f"max_price={low + self.rng.randrange(50, 500, 50)}"]
        await self.browser.get("/?" + "&".join(query))

    async def view(self) -> None:
        """Look at a listing for a moment, with its page's stream open."""
        if not self.run.listings:
            return
        page = await self.browser.get(f"/listings/{self.rng.choice(self.run.listings)}")
        looking = self.browser.stream(page, lambda event: None)
        await looking.open()
        try:
            await asyncio.sleep(self.run.think * self.rng.uniform(0.5, 1.5))
        finally:
            await looking.close()

    async def post(self) -> int:
        """Post a listing; its id."""
        page = await self.browser.get("/sell")
        text = self.next_token()
        title = f"{self.rng.choice(WORDS).title()} {self.rng.choice(WORDS)} {text}"
        signals = {
            "title": title,
            "category": self.rng.choice(CATEGORIES),
            "price": str(self.rng.randrange(1, 1000)),
            "photos": [],
            "description": f"Barely used. {text}",
        }
        # Expected before it is sent: a watcher's stream may show it before the answer.
        self.run.recorder.expect(text, Live.LISTING, time.monotonic(), self.run.watchers)
        try:
            match = await self.browser.redirected(page, "post", signals, _LISTING_URL)
        except Failed:
            self.run.recorder.forget(text)
            raise
        listing = int(match.group(1))
        self.run.recorder.wrote(WriteKind.LISTING, text)
        self.posted[listing] = (title, str(signals["category"]), None)
        self.run.listings.append(listing)
        return listing

    async def chat(self) -> None:
        page = self.open_page
        if page is None:
            return
        await self.browser.action(page, "typing")
        text = self.next_token()
        started = time.monotonic()
        partner = partner_of(self.number)
        # Expected before it is sent: the partner's stream may show it before the answer.
        self.run.recorder.expect(text, Live.MESSAGE, started, {partner})
        try:
            await self.browser.action(page, "send", {"text": f"Is it still there? {text}"})
        except Failed:
            self.run.recorder.forget(text)
            raise
        self.run.recorder.wrote(WriteKind.MESSAGE, text)


_PHOTO = re.compile(r'src="(?:[^"]*)/photos/(\d+)"')
_LISTING_URL = re.compile(r"(?:https?://[^/]+)?/listings/(\d+)")
_CHAT_URL = re.compile(r"(?:https?://[^/]+)?/chats/(\d+)")
