"""Events encoded per second: livepages' SDK side by side with datastar-py.

Each row encodes one realistic input with both SDKs in the same run. livepages
returns ``bytes``; datastar-py returns ``str``, so its main column includes the
``.encode()`` a server must do before writing, and a second column shows the
``str`` alone. Before anything is timed, both events are parsed and compared so
that the two sides are known to produce the same event.

Run it with ``python -m benchmarks.sdk_encode [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from datastar_py import ServerSentEventGenerator

from benchmarks import machine
from livepages.datastar import patch_elements, patch_signals

__all__ = ["Case", "NotEquivalentError", "build_cases", "check_equivalent", "main", "measure"]

# Bound once, like livepages' module-level functions, so neither side pays an
# extra attribute lookup per call.
_ds_patch_elements = ServerSentEventGenerator.patch_elements
_ds_patch_signals = ServerSentEventGenerator.patch_signals

EventName = Literal["patch_elements", "patch_signals"]


class NotEquivalentError(Exception):
    """The two SDKs encoded a row differently, so timing it would mislead."""


@dataclass(frozen=True)
class Case:
    """One row of the table: an input and the three ways of encoding it."""

    event: EventName
    label: str
    payload: str | dict[str, Any]
    livepages: Callable[[], bytes]
    datastar_bytes: Callable[[], bytes]
    datastar_str: Callable[[], str]

    @property
    def size(self) -> int:
        """Input size in bytes: the HTML, or the compact JSON of the signals."""
        if isinstance(self.payload, str):
            return len(self.payload.encode())
        return len(json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode())

    @property
    def lines(self) -> int:
        return self.payload.count("\n") + 1 if isinstance(self.payload, str) else 1


def _elements_case(label: str, html: str) -> Case:
    return Case(
        event="patch_elements",
        label=label,
        payload=html,
        livepages=lambda: patch_elements(html),
        datastar_bytes=lambda: _ds_patch_elements(html).encode(),
        datastar_str=lambda: _ds_patch_elements(html),
    )


def _signals_case(label: str, signals: dict[str, Any]) -> Case:
    return Case(
        event="patch_signals",
        label=label,
        payload=signals,
        livepages=lambda: patch_signals(signals),
        datastar_bytes=lambda: _ds_patch_signals(signals).encode(),
        datastar_str=lambda: _ds_patch_signals(signals),
    )


# Inputs --------------------------------------------------------------------------------
#
# An orders table as a template would render it: autoescaped text, Datastar
# attributes and a few non-ASCII characters (names, the euro sign), as real pages
# have. Everything is derived from the row number, so every run sees the same bytes.

_CUSTOMERS = (
    "Zoë Martin",
    "Liam O&#39;Brien",
    "Aiko Tanaka",
    "José Álvarez",
    "Priya Natarajan",
    "Noah Smith",
)
_STATUSES = (("shipped", "Shipped"), ("pending", "Pending"), ("refunded", "Refunded"))
_PRODUCTS = ("Oat milk 2 L", "Espresso beans", "Ceramic mug", "Tea sampler", "Kettle")


def _order_nodes(n: int) -> list[str]:
    """One table row as nodes: each tag or text a pretty-printer would put on a line."""
    status, status_label = _STATUSES[n % len(_STATUSES)]
    day, hour, minute = 1 + n % 28, 8 + n % 12, (n * 7) % 60
    return [
        f'<tr id="order-{n}" class="order {status}">',
        '<td class="num">',
        f"{n}",
        "</td>",
        "<td>",
        f'<a href="/customers/{n % 97}">',
        _CUSTOMERS[n % len(_CUSTOMERS)],
        "</a>",
        "</td>",
        "<td>",
        f'<time datetime="2026-11-{day:02}T{hour:02}:{minute:02}">',
        f"{day} Nov, {hour:02}:{minute:02}",
        "</time>",
        "</td>",
        f'<td class="num">€{10 + (n * 37) % 490}.{n % 100:02}</td>',
        f'<td><span class="badge badge-{status}">{status_label}</span></td>',
        "<td>",
        f"<button data-on:click=\"@post('/orders/{n}/refund')\" data-indicator:busy{n}>",
        "Refund",
        "</button>",
        "</td>",
        "</tr>",
    ]


_TABLE_HEAD = [
    '<table id="orders" class="table table-striped">',
    "<thead>",
    "<tr><th>#</th><th>Customer</th><th>Placed</th><th>Total</th><th>Status</th><th></th></tr>",
    "</thead>",
    '<tbody id="orders-body">',
]
_TABLE_TAIL = ["</tbody>", "</table>"]


def _orders_table(approx_bytes: int) -> list[str]:
    """The nodes of a table whose one-line size is as close to ``approx_bytes`` as rows allow."""
    body: list[str] = []
    size = len("".join(_TABLE_HEAD + _TABLE_TAIL).encode())
    n = 1001
    while True:
        row = _order_nodes(n)
        row_size = len("".join(row).encode())
        # Stop where one more row would overshoot by more than we fall short.
        if size + row_size - approx_bytes > approx_bytes - size:
            return _TABLE_HEAD + body + _TABLE_TAIL
        body += row
        size += row_size
        n += 1


def _join_lines(nodes: list[str], lines: int) -> str:
    """Spread ``nodes`` evenly over ``lines`` lines (fewer if there are fewer nodes)."""
    lines = min(lines, len(nodes))
    return "\n".join(
        "".join(nodes[i * len(nodes) // lines : (i + 1) * len(nodes) // lines])
        for i in range(lines)
    )


def _small_signals() -> dict[str, Any]:
    return {"count": 42, "query": "zoë", "loading": False, "page": 3, "ratio": 0.75}


def _order_signals(n: int) -> dict[str, Any]:
    return {
        "id": n,
        "customer": {"name": _CUSTOMERS[n % len(_CUSTOMERS)], "email": f"c{n % 97}@example.com"},
        "items": [
            {
                "sku": f"SKU-{n * 3 + i:05}",
                "name": _PRODUCTS[(n + i) % 5],
                "qty": 1 + i,
                "price": 4.5,
            }
            for i in range(1 + n % 3)
        ],
        "tags": ["gift", "express"][: n % 3],
        "paid": n % 4 != 0,
        "note": None,
    }


def _large_signals(min_bytes: int) -> dict[str, Any]:
    """Nested signals (a page of orders plus filters) of at least ``min_bytes`` as JSON."""
    signals: dict[str, Any] = {
        "filters": {"status": ["shipped", "pending"], "from": "2026-11-01", "to": "2026-11-21"},
        "page": {"number": 1, "size": 50, "total": 1234},
        "orders": [],
    }
    n = 1001
    while len(json.dumps(signals, separators=(",", ":"), ensure_ascii=False)) < min_bytes:
        signals["orders"].append(_order_signals(n))
        n += 1
    return signals


def build_cases() -> list[Case]:
    """The rows of the table, in order."""
    small, large = _orders_table(1024), _orders_table(50 * 1024)
    return [
        _elements_case("1 KB, one line", "".join(small)),
        _elements_case("1 KB, ~40 lines", _join_lines(small, 40)),
        _elements_case("50 KB, one line", "".join(large)),
        _elements_case("50 KB, ~1,000 lines", _join_lines(large, 1000)),
        _signals_case("5 keys", _small_signals()),
        _signals_case("20 KB, nested", _large_signals(20 * 1024)),
    ]


# Equivalence -----------------------------------------------------------------------------


class Event(NamedTuple):
    """An SSE event as a browser's parser sees it."""

    type: str
    id: str | None
    retry: str | None
    data: list[tuple[str, str]]  # Datastar data lines: (key, value)


def parse_event(raw: bytes) -> Event:
    """Parse one encoded event; both SDKs end lines with ``\\n`` only."""
    text = raw.decode()
    if not text.endswith("\n\n") or "\r" in text:
        raise NotEquivalentError(f"not a single \\n-terminated event: {text[:80]!r}")
    fields: dict[str, str] = {}
    data: list[tuple[str, str]] = []
    for line in text[:-2].split("\n"):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            key, _, rest = value.partition(" ")
            data.append((key, rest))
        else:
            fields[name] = value
    return Event(fields.get("event", ""), fields.get("id"), fields.get("retry"), data)


def _joined(event: Event, key: str) -> str:
    return "\n".join(value for name, value in event.data if name == key)


def check_equivalent(case: Case) -> None:
    """Raise NotEquivalentError unless both SDKs encode ``case`` to the same event.

    Element lines must match exactly and rebuild the input. Signals are compared
    as parsed JSON: the JSON text may differ (datastar-py escapes non-ASCII) while
    the merge patch the browser applies is the same.
    """
    if isinstance(case.payload, str) and case.payload.split("\n") != case.payload.splitlines():
        # datastar-py splits on str.splitlines(), which drops a trailing newline and
        # breaks at U+2028 and friends; livepages keeps both, as the SSE spec does.
        raise NotEquivalentError(
            f"{case.label}: str.splitlines() splits the input differently from \\n"
            " (a trailing newline, or U+2028 and the like)"
        )
    ours, theirs = parse_event(case.livepages()), parse_event(case.datastar_bytes())
    if (ours.type, ours.id, ours.retry) != (theirs.type, theirs.id, theirs.retry):
        raise NotEquivalentError(f"{case.label}: headers differ: {ours[:3]} != {theirs[:3]}")
    if case.event == "patch_elements":
        if ours.data != theirs.data or _joined(ours, "elements") != case.payload:
            raise NotEquivalentError(f"{case.label}: data lines differ")
        return
    options = [line for line in ours.data if line[0] != "signals"]
    if options != [line for line in theirs.data if line[0] != "signals"]:
        raise NotEquivalentError(f"{case.label}: signal options differ")
    for side, event in (("livepages", ours), ("datastar-py", theirs)):
        if json.loads(_joined(event, "signals")) != case.payload:
            raise NotEquivalentError(f"{case.label}: {side} signals do not decode to the input")


# Timing ----------------------------------------------------------------------------------


def _loops_for(timer: timeit.Timer, target: float) -> int:
    """How many calls take about ``target`` seconds, found as timeit's autorange does."""
    number = 1
    while True:
        elapsed = timer.timeit(number)
        # A tenth of the target is long enough for the clock to extrapolate from.
        if elapsed >= target / 10:
            return max(1, math.ceil(number * target / elapsed))
        number *= 10


def measure(
    functions: Sequence[Callable[[], object]], *, target: float = 0.2, repeat: int = 5
) -> list[float]:
    """Calls per second of each function: the best of ``repeat`` runs of ~``target`` s.

    Runs are interleaved (a, b, c, a, b, c, ...) so that load from other processes
    falls on every function alike. As with timeit, garbage collection is off
    while timing.
    """
    timers = [timeit.Timer(function) for function in functions]
    loops = [_loops_for(timer, target) for timer in timers]
    best = [math.inf] * len(timers)
    for _ in range(repeat):
        for i, (timer, number) in enumerate(zip(timers, loops, strict=True)):
            best[i] = min(best[i], timer.timeit(number) / number)
    return [1 / seconds for seconds in best]


# Report ----------------------------------------------------------------------------------

_HEADER = (
    "event",
    "input",
    "bytes",
    "lines",
    "livepages ev/s",
    "datastar-py +encode ev/s",
    "ratio",
    "datastar-py str ev/s",
    "ratio (str)",
)
_LEFT_COLUMNS = 2  # the rest are numbers, aligned right


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table whose columns line up in plain text too."""
    widths = [max(len(row[i]) for row in [_HEADER, *rows]) for i in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.ljust(width) if i < _LEFT_COLUMNS else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "-" * width if i < _LEFT_COLUMNS else "-" * (width - 1) + ":"
        for i, width in enumerate(widths)
    )
    return [line(_HEADER), "| " + " | ".join(rule) + " |", *(line(row) for row in rows)]


def _row(case: Case, livepages: float, datastar_bytes: float, datastar_str: float) -> list[str]:
    return [
        case.event,
        case.label,
        f"{case.size:,}",
        f"{case.lines:,}",
        f"{livepages:,.0f}",
        f"{datastar_bytes:,.0f}",
        f"{livepages / datastar_bytes:.2f}x",
        f"{datastar_str:,.0f}",
        f"{livepages / datastar_str:.2f}x",
    ]


def main(argv: list[str] | None = None) -> int:
    """Check that both SDKs agree on every row, time them and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sdk_encode",
        description="Datastar events encoded per second: livepages vs datastar-py.",
    )
    parser.add_argument("--quick", action="store_true", help="shorter, noisier runs (a smoke test)")
    args = parser.parse_args(argv)
    target, repeat = (0.05, 3) if args.quick else (0.2, 5)

    cases = build_cases()
    try:
        for case in cases:
            check_equivalent(case)
    except NotEquivalentError as error:
        print(f"sdk_encode: not comparing like with like: {error}", file=sys.stderr)
        return 1

    print(f"sdk_encode: best of {repeat} runs of ~{target:g} s per cell, GC off while timing")
    rows = []
    for case in cases:
        rates = measure(
            [case.livepages, case.datastar_bytes, case.datastar_str], target=target, repeat=repeat
        )
        rows.append(_row(case, *rates))
    print("\n".join(_table(rows)))
    print("ratio = livepages ev/s / datastar-py ev/s: above 1.00x livepages is faster.")
    return 0


if __name__ == "__main__":
    print("\n".join(machine.describe()) + "\n")
    sys.exit(main())
