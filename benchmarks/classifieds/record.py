"""What a load run saw: each request's time by route, errors, writes and live updates.

One ``Recorder`` is shared by every virtual user of a run (they all live in one event
loop, so plain lists and dicts are safe). Routes are names with the ids taken out
(``GET /listings/{id}``), so that the report has one row per kind of request.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from benchmarks.fanout.stats import percentile

__all__ = ["Live", "Recorder", "RouteRow", "Spread", "Window", "Write", "WriteKind", "windows"]


class WriteKind(Enum):
    """A write that the server acknowledged and that must be in its database at the end."""

    LISTING = "listing"
    MESSAGE = "message"
    #: A listing's new description (only its latest edit must be kept).
    EDIT = "edit"


@dataclass(frozen=True, slots=True)
class Write:
    """One acknowledged write: its kind and the unique token its text carries."""

    kind: WriteKind
    token: str


class Live(Enum):
    """The live updates whose latency is measured."""

    #: A chat message, until the counterpart's stream shows it (it must).
    MESSAGE = "chat message to the counterpart's stream"
    #: A new listing, until a watcher's stream of ``/`` shows it (a busy page may
    #: coalesce renders, so a watcher may never show some listing: not an error).
    LISTING = "new listing to a watcher's stream of /"


@dataclass(frozen=True, slots=True)
class Spread:
    """Count, p50, p99 and max of some durations, in seconds."""

    count: int
    p50: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        """The spread of ``values``; ``None`` when there are none."""
        if not values:
            return None
        ordered = sorted(values)
        return cls(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.99), ordered[-1])


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One route's requests over a run."""

    route: str
    errors: int
    spread: Spread | None


@dataclass
class _Pending:
    kind: Live
    started: float
    watchers: set[int]


@dataclass
class Recorder:
    """Everything one run records; times are ``time.monotonic()`` seconds."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    route_errors: Counter[str] = field(default_factory=Counter)
    #: Each kind of error (``route: what``) and how often it happened.
    errors: Counter[str] = field(default_factory=Counter)
    writes: list[Write] = field(default_factory=list)
    #: How many writes of each kind the server acknowledged.
    acknowledged: Counter[WriteKind] = field(default_factory=Counter)
    #: When each request ended, and how long it took: the run's course over time.
    timeline: list[tuple[float, float]] = field(default_factory=list)
    live: dict[Live, list[float]] = field(default_factory=dict)
    #: Listings created while some watcher was watching, and how many watchers'
    #: streams showed each.
    listings_shown: Counter[str] = field(default_factory=Counter)
    #: When each of those listings was posted.
    posted_at: dict[str, float] = field(default_factory=dict)
    _pending: dict[str, _Pending] = field(default_factory=dict)

    def request(self, route: str, seconds: float) -> None:
        """A request to ``route`` succeeded in ``seconds`` (just now)."""
        self.latencies.setdefault(route, []).append(seconds)
        self.timeline.append((time.monotonic(), seconds))

    def error(self, route: str, what: str) -> None:
        """Something went wrong on ``route`` (a status, a refusal, a timeout, a cut stream)."""
        self.route_errors[route] += 1
        self.errors[f"{route}: {what}"] += 1

    def wrote(self, kind: WriteKind, token: str, replaces: str | None = None) -> None:
        """The server acknowledged a write whose text carries ``token``, and which
        overwrote the one that carried ``replaces`` (that one need not be kept)."""
        if replaces is not None:
            self.writes = [write for write in self.writes if write.token != replaces]
        self.writes.append(Write(kind, token))
        self.acknowledged[kind] += 1

    def expect(self, token: str, kind: Live, started: float, watchers: set[int]) -> None:
        """The streams of ``watchers`` (user numbers) should show ``token`` soon."""
        if not watchers:
            return  # nobody to show it (no watcher has its page open yet)
        self._pending[token] = _Pending(kind, started, set(watchers))
        if kind is Live.LISTING:
            self.listings_shown[token] += 0
            self.posted_at[token] = started

    def forget(self, token: str) -> None:
        """Expect ``token`` no more (its write failed)."""
        self._pending.pop(token, None)
        self.listings_shown.pop(token, None)

    def shown(self, token: str, watcher: int) -> None:
        """``watcher``'s stream showed ``token`` now (only the first time counts)."""
        pending = self._pending.get(token)
        if pending is None or watcher not in pending.watchers:
            return
        pending.watchers.discard(watcher)
        self.live.setdefault(pending.kind, []).append(time.monotonic() - pending.started)
        if pending.kind is Live.LISTING:
            self.listings_shown[token] += 1
        if not pending.watchers:
            del self._pending[token]

    def overdue(self, older_than: float) -> None:
        """Give up on updates older than ``older_than`` seconds: a missed chat message
        is an error, a listing some watcher never showed is only counted."""
        now = time.monotonic()
        for token, pending in list(self._pending.items()):
            if now - pending.started < older_than:
                continue
            del self._pending[token]
            if pending.kind is Live.MESSAGE:
                self.error("live", f"a chat message not shown within {older_than:g} s")

    def waiting(self, kind: Live) -> int:
        """How many updates of ``kind`` some stream has still to show."""
        return sum(1 for pending in self._pending.values() if pending.kind is kind)

    def rows(self) -> list[RouteRow]:
        """One row per route, in the order routes were first used."""
        routes = list(dict.fromkeys([*self.latencies, *self.route_errors]))
        return [
            RouteRow(route, self.route_errors[route], Spread.of(self.latencies.get(route, [])))
            for route in routes
        ]

    @property
    def requests(self) -> int:
        """Requests that succeeded."""
        return sum(map(len, self.latencies.values()))

    @property
    def error_count(self) -> int:
        """Errors of every kind."""
        return sum(self.errors.values())


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of the run: its requests' latencies and the servers' CPU meanwhile."""

    #: Seconds from the run's start.
    start: float
    end: float
    spread: Spread | None
    #: The servers' CPU time over the window's length (1.0: one core all the time).
    server_cpu: float


def windows(
    timeline: list[tuple[float, float]],
    cpu: list[tuple[float, float]],
    started: float,
    width: float,
) -> list[Window]:
    """The run cut into ``width``-second windows from ``started``: the requests that
    ended in each, and the servers' CPU use from ``cpu`` (time, CPU seconds so far)."""
    if not timeline:
        return []
    end = max(when for when, _ in timeline)
    count = int((end - started) // width) + 1
    found: list[Window] = []
    for number in range(count):
        low, high = started + number * width, started + (number + 1) * width
        inside = [seconds for when, seconds in timeline if low <= when < high]
        samples = [(when, used) for when, used in cpu if low <= when <= high]
        share = 0.0
        if len(samples) >= 2:
            (first, used_first), (last, used_last) = samples[0], samples[-1]
            share = (used_last - used_first) / (last - first) if last > first else 0.0
        found.append(Window(low - started, high - started, Spread.of(inside), share))
    return found
