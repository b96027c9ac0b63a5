"""The load test's report: markdown tables for people, and JSON for tools."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.classifieds.record import RouteRow, Spread, Window

__all__ = ["Prepared", "Result", "format_report", "to_json"]


@dataclass(frozen=True)
class Prepared:
    """The accounts made before the run: how many, in how long, and the errors."""

    accounts: int
    seconds: float
    errors: dict[str, int]


@dataclass(frozen=True)
class Result:
    """What one run measured (times in seconds, memory in KiB)."""

    users: int
    duration: float
    processes: int
    broker: str
    #: Wall time from the first user's start to the last user's end.
    elapsed: float
    requests: int
    rows: list[RouteRow]
    errors: dict[str, int]
    listings: int
    messages: int
    edits: int
    lost: list[str]
    message_latency: Spread | None
    listing_latency: Spread | None
    #: Listings that at least one watcher's stream showed, of those posted while
    #: some watcher was watching.
    listings_seen: int
    listings_watched: int
    #: The listings that no watcher's stream showed, and when they were posted.
    listings_unseen: list[str]
    rss_start: list[int]
    rss_peak: list[int]
    rss_end: list[int]
    server_cpu: list[float]
    client_cpu: float
    loop_lag: Spread | None
    #: The idle probe's times (``benchmarks.classifieds.probe``).
    probe: Spread | None
    load_start: str
    load_end: str
    server_log: list[str]
    prepared: Prepared
    windows: list[Window]

    @property
    def error_count(self) -> int:
        """Errors of every kind."""
        return sum(self.errors.values())

    @property
    def ok(self) -> bool:
        """No error and no lost write: what the load test requires."""
        return self.error_count == 0 and not self.lost


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def _mib(values: Sequence[int]) -> str:
    return " + ".join(f"{kib / 1024:.0f}" for kib in values) + " MiB"


def _spread(spread: Spread | None) -> str:
    if spread is None:
        return "none measured"
    return (
        f"p50 {_ms(spread.p50)} ms, p99 {_ms(spread.p99)} ms, max {_ms(spread.max)} ms"
        f" ({spread.count})"
    )


def route_table(result: Result) -> list[str]:
    """One markdown row per route: requests, errors, requests/s and latencies."""
    lines = [
        "| route | requests | errors | req/s | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result.rows:
        spread = row.spread
        count = spread.count if spread else 0
        rate = f"{count / result.elapsed:.1f}" if result.elapsed > 0 else "-"
        times = [_ms(spread.p50), _ms(spread.p99), _ms(spread.max)] if spread else ["-"] * 3
        lines.append(
            f"| `{row.route}` | {count} | {row.errors} | {rate} | " + " | ".join(times) + " |"
        )
    return lines


def summary_table(result: Result) -> list[str]:
    """The run's figures as a two-column markdown table."""
    rate = result.requests / result.elapsed if result.elapsed > 0 else 0.0
    cpu = ", ".join(f"{share * 100:.0f}%" for share in result.server_cpu)
    rows = [
        ("virtual users", f"{result.users}"),
        (
            "accounts made before the run",
            f"{result.prepared.accounts} in {result.prepared.seconds:.1f} s"
            f" ({sum(result.prepared.errors.values())} errors, counted below)",
        ),
        ("app processes", f"{result.processes} ({result.broker})"),
        (
            "run",
            f"{result.duration:g} s asked, {result.elapsed:.1f} s from first start to last end",
        ),
        ("requests", f"{result.requests} ({rate:.1f} per second)"),
        ("**errors**", f"**{result.error_count}**"),
        (
            "writes acknowledged",
            f"{result.listings} listings, {result.messages} chat messages,"
            f" {result.edits} listing edits",
        ),
        ("**lost writes**", f"**{len(result.lost)}**"),
        ("live update: chat message", _spread(result.message_latency)),
        ("live update: new listing", _spread(result.listing_latency)),
        (
            "listings shown live by a watcher",
            f"{result.listings_seen} of {result.listings_watched}",
        ),
        (
            "server RSS start / peak / end",
            " / ".join(map(_mib, (result.rss_start, result.rss_peak, result.rss_end))),
        ),
        ("server CPU (of one core, per process)", cpu),
        ("load client CPU (of one core)", f"{result.client_cpu * 100:.0f}%"),
        ("load client event-loop lag", _spread(result.loop_lag)),
        ("idle probe's GET /signin, from a process of its own", _spread(result.probe)),
        ("load average at start / end", f"{result.load_start} / {result.load_end}"),
    ]
    return ["| figure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]


def window_table(result: Result) -> list[str]:
    """The run over time: requests, latencies and the servers' CPU per window."""
    lines = [
        "| seconds | requests | req/s | p50 ms | p99 ms | server CPU |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for window in result.windows:
        spread, width = window.spread, window.end - window.start
        count = spread.count if spread else 0
        times = f"{_ms(spread.p50)} | {_ms(spread.p99)}" if spread else "- | -"
        lines.append(
            f"| {window.start:.0f}-{window.end:.0f} | {count} | {count / width:.1f} | {times}"
            f" | {window.server_cpu * 100:.0f}% |"
        )
    return lines


def format_report(machine: Sequence[str], result: Result) -> str:
    """The whole report of one run, in markdown."""
    title = (
        f"## classifieds: {result.users} users, {result.duration:g} s,"
        f" {result.processes} process{'es' if result.processes > 1 else ''} ({result.broker})"
    )
    lines = [title, "", *(f"    {line}" for line in machine), ""]
    lines += [*route_table(result), "", *summary_table(result), "", *window_table(result)]
    if result.errors:
        lines += ["", "Errors:", ""]
        lines += [f"- {count} x {what}" for what, count in sorted(result.errors.items())]
    if result.listings_unseen:
        shown = ", ".join(result.listings_unseen[:10])
        lines += ["", f"Listings no watcher's stream showed (first 10): {shown}"]
    if result.lost:
        lines += [
            "",
            f"Lost writes (first 20 of {len(result.lost)}): " + ", ".join(result.lost[:20]),
        ]
    if result.server_log and not result.ok:
        lines += [
            "",
            "The servers' last lines:",
            "",
            *(f"    {line}" for line in result.server_log),
        ]
    return "\n".join(lines)


def to_json(machine: Sequence[str], results: Sequence[Result]) -> Any:
    """Every run, JSON-ready (seconds, KiB)."""
    runs = []
    for result in results:
        run = dataclasses.asdict(result)
        run["error_count"] = result.error_count
        run["requests_per_second"] = result.requests / result.elapsed if result.elapsed else 0
        runs.append(run)
    return {"machine": list(machine), "runs": runs}
