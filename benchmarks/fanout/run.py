"""The fan-out benchmark's command line: ``python -m benchmarks.fanout [--quick]``.

This process is the load client. It pins itself to one CPU, starts each target
as a separate process pinned to another, and runs every (clients, target,
compression) combination side by side in one go.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import resource
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import uvloop

from benchmarks import machine
from benchmarks.fanout.lineup import (
    DEFAULT_LIVEPAGES_APP,
    TARGET_NAMES,
    Target,
    build_lineup,
    with_source,
)
from benchmarks.fanout.measure import (
    ERROR,
    NOT_AVAILABLE,
    NOT_SUPPORTED,
    Result,
    Settings,
    measure,
)
from benchmarks.fanout.page import PageName
from benchmarks.fanout.report import format_table, legend, notes, to_json
from benchmarks.fanout.source import export_source, label_of

__all__ = ["describe", "main", "parse_args", "run_pinned"]

FULL_CLIENTS = (1_000, 5_000, 10_000)
QUICK_CLIENTS = (200, 1_000)
# File descriptors beyond one per stream: the probe, the change request, the
# interpreter's own files.
_FD_HEADROOM = 256


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 1000,5000, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("client counts must be positive")
    return counts


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line, with ``--quick`` resolved into client counts."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fanout",
        description="One state change fanned out to N open SSE streams, per server.",
    )
    parser.add_argument("--clients", type=_counts, help="comma-separated counts (1000,5000,10000)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 and 1000 clients")
    parser.add_argument(
        "--targets", type=_names, default=list(TARGET_NAMES), help=",".join(TARGET_NAMES)
    )
    parser.add_argument(
        "--compression", type=_names, default=["none", "gzip"], help="none,gzip (default both)"
    )
    parser.add_argument("--changes", type=int, default=5, help="changes per run (5)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per phase (60)")
    parser.add_argument("--concurrency", type=int, default=256, help="connects in flight (256)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before RSS")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--livepages-app", default=DEFAULT_LIVEPAGES_APP, help="module:factory of an ASGI app"
    )
    parser.add_argument(
        "--page",
        default=PageName.BOARD.value,
        choices=[page.value for page in PageName],
        help="board (2.7 KB f-string, default) or site (5 KB Jinja2 page greeting the viewer)",
    )
    parser.add_argument("--stario-python", help="a Python >= 3.12 that has stario")
    parser.add_argument(
        "--before",
        metavar="REF",
        default=os.environ.get("LIVEPAGES_BENCH_BEFORE") or None,
        help="also run each livepages target with livepages from REF (a git revision of "
        "this repository, or a folder): before and after side by side in one run "
        "(default: $LIVEPAGES_BENCH_BEFORE, which `make bench BEFORE=REF` sets)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.page = PageName(args.page)
    if args.clients is None:
        args.clients = list(QUICK_CLIENTS if args.quick else FULL_CLIENTS)
    bad = [c for c in args.compression if c not in ("none", "gzip")]
    if bad:
        parser.error(f"unknown compression {', '.join(bad)}; use none and/or gzip")
    if args.changes < 1 or args.concurrency < 1:
        parser.error("--changes and --concurrency must be at least 1")
    return args


def _raise_fd_limit(needed: int) -> str | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit; the error when that is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        return (
            f"RLIMIT_NOFILE hard limit is {hard}, below the {needed} file descriptors needed: "
            f"raise it (ulimit -Hn, or LimitNOFILE) or use fewer clients"
        )
    target = max(soft, needed) if hard == resource.RLIM_INFINITY else hard
    if target != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return None


def _pin(client_cpu: int, server_cpu: int) -> str | None:
    """Pin this process to ``client_cpu``; the error when the CPUs are not usable."""
    usable = os.sched_getaffinity(0)
    missing = sorted({client_cpu, server_cpu} - usable)
    if missing:
        return f"CPU(s) {missing} are not usable here (usable: {sorted(usable)})"
    os.sched_setaffinity(0, {client_cpu})
    return None


def describe(server_cpu: int, client_cpu: int) -> list[str]:
    """The machine, the server stack's versions, the pinning and the load: the report's head.

    Call it before pinning, which hides the other CPUs from this process.
    """
    lines = machine.describe()
    versions = ", ".join(f"{name} {_version(name)}" for name in ("httptools", "granian"))
    lines.append(f"also: {versions}")
    lines.append(
        f"pinning: servers on CPU {server_cpu}, load client on CPU {client_cpu}"
        + (" (shared!)" if server_cpu == client_cpu else "")
    )
    lines.append(f"load average at start: {Path('/proc/loadavg').read_text().strip()}")
    return lines


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


async def run_all(
    targets: Sequence[Target], counts: Sequence[int], compressions: Sequence[str], s: Settings
) -> list[Result]:
    """Every combination, targets side by side for each N; skips what cannot run."""
    results: list[Result] = []
    skip: set[tuple[str, str]] = set()
    for clients in counts:
        for target in targets:
            for compression in compressions:
                if (target.name, "*") in skip or (target.name, compression) in skip:
                    continue
                result = await measure(target, clients, compression == "gzip", s)
                results.append(result)
                # No use trying again at the next N.
                if result.status == NOT_AVAILABLE:
                    skip.add((target.name, "*"))
                elif result.status == NOT_SUPPORTED:
                    skip.add((target.name, compression))
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; 0 when every attempted run succeeded.

    Call it from synchronous code: it runs its own uvloop event loop. The CPU
    pinning and the disabled garbage collector are undone before it returns.
    """
    args = parse_args(argv)
    try:
        targets = build_lineup(args.targets, args.livepages_app, args.stario_python, args.page)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="fanout-before-") as scratch:
        if args.before is not None:
            try:
                src = export_source(args.before, Path(scratch))
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            targets = _with_before(targets, src, label_of(args.before))
        return _pinned(args, targets)


def _with_before(targets: list[Target], src: Path, label: str) -> list[Target]:
    """Each livepages target preceded by the same target on the other source."""
    lineup: list[Target] = []
    for target in targets:
        if target.name.startswith("livepages"):
            lineup.append(with_source(target, src, label))
        lineup.append(target)
    return lineup


def _pinned(args: argparse.Namespace, targets: list[Target]) -> int:
    description = describe(args.server_cpu, args.client_cpu)
    return run_pinned(
        args.client_cpu,
        args.server_cpu,
        max(args.clients),
        lambda: _run(args, targets, description),
    )


def run_pinned(client_cpu: int, server_cpu: int, clients: int, body: Callable[[], int]) -> int:
    """Run ``body`` as the load client of up to ``clients`` streams; its exit status.

    This process is pinned to ``client_cpu`` and its file limit raised meanwhile
    (2, with a message, when the CPUs or the limit do not allow it), and its
    garbage collector is off; all is undone before it returns.
    """
    affinity, gc_enabled = os.sched_getaffinity(0), gc.isenabled()
    try:
        error = _pin(client_cpu, server_cpu) or _raise_fd_limit(clients + _FD_HEADROOM)
        if error is not None:
            print(f"error: {error}", file=sys.stderr)
            return 2
        # The client's own collections would stall its timestamps mid-change; it
        # collects between runs instead (in measure).
        gc.disable()
        return body()
    finally:
        os.sched_setaffinity(0, affinity)
        if gc_enabled:
            gc.enable()


def _run(args: argparse.Namespace, targets: list[Target], description: list[str]) -> int:
    settings = Settings(
        changes=args.changes,
        phase_timeout=args.timeout,
        concurrency=args.concurrency,
        pause=args.pause,
        settle=args.settle,
        server_cpu=args.server_cpu,
    )
    print("\n".join(description), flush=True)
    results: list[Result] = uvloop.run(run_all(targets, args.clients, args.compression, settings))
    print()
    print(legend(settings.changes))
    print(format_table(results))
    for line in notes(results):
        print(line)
    if args.json is not None:
        run_settings: dict[str, Any] = dataclasses.asdict(settings)
        run_settings.update(
            clients=args.clients,
            targets=args.targets,
            compression=args.compression,
            client_cpu=args.client_cpu,
            page=args.page.value,
        )
        data = to_json(results, description, run_settings)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"results written to {args.json}")
    return 1 if any(r.status == ERROR for r in results) else 0
