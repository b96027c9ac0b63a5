"""The results as a text table (with a ratio against ``raw``) and as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from benchmarks.fanout.measure import ERROR, NOT_AVAILABLE, OK, Result

__all__ = [
    "HEADERS",
    "align",
    "format_table",
    "legend",
    "notes",
    "throughput_ratio",
    "to_json",
]

HEADERS = (
    "target",
    "N",
    "comp",
    "p50 ms",
    "p99 ms",
    "max ms",
    "worst ms",
    "patches/s",
    "vs raw",
    "connect s",
    "connect CPU µs",
    "RSS KiB/stream",
    "CPU µs/patch",
    "wire B/patch",
    "client µs/patch",
)


def legend(changes: int) -> str:
    """What the columns mean, printed above the table."""
    return (
        f"One change fanned out to N idle SSE streams; times are from the change request to "
        f"each stream's complete event, the median over {changes} changes (worst: the slowest "
        "last client of all). patches/s = N / last client; vs raw = patches/s over raw's at the "
        "same N and compression; connect s = time to open the N streams, each until its first "
        "event; connect CPU µs = server CPU time over that / N; RSS KiB/stream = server RSS "
        "growth with N idle streams / N; "
        "CPU µs/patch = server CPU time over the changes / patches; wire B/patch = bytes "
        "received per patch; client µs/patch = the load client's own CPU per patch."
    )


def throughput_ratio(
    result: Result, results: Sequence[Result], baseline: str = "raw"
) -> float | None:
    """``result``'s patches/s over ``baseline``'s (raw's), for the same N and compression."""
    if result.summary is None:
        return None
    for other in results:
        if (
            other.target == baseline
            and other.clients == result.clients
            and other.compression == result.compression
            and other.summary is not None
        ):
            return result.summary.patches_per_second / other.summary.patches_per_second
    return None


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _row(result: Result, results: Sequence[Result], baseline: str) -> list[str]:
    s = result.summary
    assert s is not None
    ratio = throughput_ratio(result, results, baseline)
    return [
        result.target,
        f"{result.clients:,}",
        result.compression,
        _number(s.p50 * 1000),
        _number(s.p99 * 1000),
        _number(s.max * 1000),
        _number(s.worst_max * 1000),
        _number(s.patches_per_second, 0),
        "-" if ratio is None else f"{ratio:.2f}",
        _number(result.connect_seconds, 2),
        _number(result.connect_cpu_us_per_stream, 0),
        _number(result.rss_kib_per_stream),
        _number(result.cpu_us_per_patch),
        _number(result.wire_bytes_per_patch, 0),
        _number(result.client_cpu_us_per_patch),
    ]


def format_table(results: Sequence[Result], baseline: str = "raw") -> str:
    """The measured runs as an aligned text table, one row per run.

    The ratio column compares each run's patches/s with ``baseline``'s (raw's).
    """
    headers = [f"vs {baseline}" if header == "vs raw" else header for header in HEADERS]
    rows = [_row(r, results, baseline) for r in results if r.status == OK]
    return align(headers, rows, left=3)


def align(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    """A text table: the first ``left`` columns aligned left, the others (numbers) right."""
    table = [list(headers), *map(list, rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for number, row in enumerate(table):
        cells = [
            cell.ljust(width) if i < left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def notes(results: Sequence[Result]) -> list[str]:
    """One line per target (and compression) that was not measured, and per error."""
    seen: set[str] = set()
    lines = []
    for result in results:
        if result.status == OK:
            continue
        if result.status == ERROR:
            lines.append(
                f"{result.target} N={result.clients} {result.compression}: error: {result.reason}"
            )
            continue
        key = result.target if result.status == NOT_AVAILABLE else result.target + "/gzip"
        if key not in seen:
            seen.add(key)
            what = result.target if result.status == NOT_AVAILABLE else f"{key} compression"
            lines.append(f"{what}: {result.status}: {result.reason}")
    return lines


def to_json(
    results: Sequence[Result], machine: list[str], settings: dict[str, Any], baseline: str = "raw"
) -> Any:
    """Everything measured, as JSON-ready data (times in seconds).

    Each run has ``throughput_vs_<baseline>``, its patches/s over the baseline's.
    """
    runs = []
    for result in results:
        run = dataclasses.asdict(result)
        run[f"throughput_vs_{baseline}"] = throughput_ratio(result, results, baseline)
        runs.append(run)
    return {"machine": machine, "settings": settings, "runs": runs}
