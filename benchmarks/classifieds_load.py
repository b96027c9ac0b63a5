"""Load test of ``examples/classifieds``: ``python -m benchmarks.classifieds_load``.

N virtual users sign up (some sign out and in again), browse, search, look at
listings, post listings and chat, each keeping one page's live stream open, for a
bounded time, against real server processes: one on the memory broker, or two on
one NATS with requests spread over both as by a load balancer without sticky
sessions (``--processes 1``, ``2``, or ``1,2`` for both in turn). The report gives
requests per second and p50/p99 per route, the live-update latency of chat messages
and new listings, the errors (which must be 0), the writes lost (acknowledged but
not in the database at the end; must be 0) and the servers' memory.

By default the operating system places the processes; with ``--pin`` the servers
(and nats-server) run on ``--server-cpu`` only and this load client on ``--client-cpu``
(on a machine shared with other work, pinning can leave the servers on the busier
CPU). The exit status is 1 when any run had an error or lost a write.
See benchmarks/README.md for the scenario and what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.util
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import uvloop

from benchmarks.classifieds.browser import Failed
from benchmarks.classifieds.deployment import DEFAULT_APP, Deployment, deploy
from benchmarks.classifieds.probe import PROBE_PATH, Probe
from benchmarks.classifieds.record import Live, Recorder, Spread, WriteKind, windows
from benchmarks.classifieds.report import Prepared, Result, format_report, to_json
from benchmarks.classifieds.users import TOKEN, Pair, Role, Run, VirtualUser, partner_of, role_of
from benchmarks.classifieds.verify import missing_writes
from benchmarks.fanout.run import describe

__all__ = ["main", "measure", "parse_args"]

#: How often the sampler looks at the servers' memory and at late live updates.
SAMPLE_EVERY = 1.0
#: The report's time windows (seconds).
WINDOW = 10.0
#: The event-loop lag probe's period.
LAG_PROBE = 0.1


def _processes(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 1, 2 or 1,2, got {text!r}") from None
    if not counts or any(count not in (1, 2) for count in counts):
        raise argparse.ArgumentTypeError(f"expected 1, 2 or 1,2, got {text!r}")
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.classifieds_load", description=__doc__
    )
    parser.add_argument("--users", type=int, default=500, help="virtual users (500)")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of load, ramp included (60)"
    )
    parser.add_argument("--processes", type=_processes, default=[1], help="1, 2 or 1,2 (1)")
    parser.add_argument(
        "--ramp", type=float, default=20.0, help="seconds over which users start (20)"
    )
    parser.add_argument(
        "--think", type=float, default=5.0, help="mean pause between a user's steps, s (5)"
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="a request's or update's deadline, s (30)"
    )
    parser.add_argument(
        "--app", default=DEFAULT_APP, help=f"the app, as livepages run names it ({DEFAULT_APP})"
    )
    parser.add_argument(
        "--checkout", type=Path, metavar="DIR",
        help="serve the app from this checkout (livepages from this one)",
    )  # fmt: skip
    parser.add_argument("--pin", action="store_true", help="pin servers and client to CPUs")
    parser.add_argument("--server-cpu", type=int, default=0, help="with --pin: the servers' (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="with --pin: the client's (1)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every run as JSON")
    parser.add_argument("--quick", action="store_true", help="50 users for 15 s: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.duration, args.ramp = 50, 15.0, 3.0
    if args.users < 1 or args.duration <= 0 or args.ramp < 0 or args.think <= 0:
        parser.error("--users, --duration and --think must be positive, --ramp not negative")
    if args.users > 9999:
        parser.error("at most 9999 users (the write tokens have four digits)")
    return args


class Sampler:
    """Samples the servers' memory every second, gives up on late live updates, and
    measures how late this client's own event loop wakes up (an overloaded client)."""

    def __init__(self, deployment: Deployment, recorder: Recorder, timeout: float) -> None:
        self.deployment = deployment
        self.recorder = recorder
        self.timeout = timeout
        self.peak = deployment.rss_kib()
        self.lags: list[float] = []
        #: (time, CPU seconds of all the servers so far), every second.
        self.cpu: list[tuple[float, float]] = [(time.monotonic(), sum(deployment.cpu_seconds()))]

    async def run(self) -> None:
        last = time.monotonic()
        while True:
            await self._probe(SAMPLE_EVERY)
            now = time.monotonic()
            if now - last >= SAMPLE_EVERY:
                last = now
                self.peak = [
                    max(a, b) for a, b in zip(self.peak, self.deployment.rss_kib(), strict=True)
                ]
                self.recorder.overdue(self.timeout)
                self.cpu.append((now, sum(self.deployment.cpu_seconds())))

    async def _probe(self, span: float) -> None:
        for _ in range(round(span / LAG_PROBE)):
            asked = time.monotonic()
            await asyncio.sleep(LAG_PROBE)
            self.lags.append(max(0.0, time.monotonic() - asked - LAG_PROBE))


def _users(count: int, run: Run) -> list[VirtualUser]:
    roles = [role_of(number, count) for number in range(count)]
    pairs: dict[int, Pair] = {}
    users = []
    for number, role in enumerate(roles):
        pair = None
        if role is Role.SELLER:
            pair = pairs[number] = Pair()
        elif role is Role.BUYER:
            pair = pairs[partner_of(number)]
        users.append(VirtualUser(number, role, pair, run))
    return users


def _counted(errors: Sequence[str], prefix: str) -> dict[str, int]:
    return {prefix + what: count for what, count in Counter(errors).items()}


#: How many accounts are made at once before the run (each costs a password hash).
PREPARE_CONCURRENCY = 4


async def _prepare(users: Sequence[VirtualUser]) -> Prepared:
    """The accounts and sessions of the users who are not new, made before the run."""
    recorder, gate = Recorder(), asyncio.Semaphore(PREPARE_CONCURRENCY)
    started = time.monotonic()

    async def one(user: VirtualUser) -> None:
        async with gate:
            with contextlib.suppress(Failed):
                await user.prepare(recorder)

    await asyncio.gather(*map(one, users))
    errors = {f"before the run: {what}": count for what, count in recorder.errors.items()}
    return Prepared(recorder.requests // 2, time.monotonic() - started, errors)


async def _start(user: VirtualUser, delay: float) -> None:
    await asyncio.sleep(delay)
    await user.live()


#: How long the end of a run waits for new listings to reach the watchers' streams.
LISTING_SETTLE = 5.0


async def _settle(recorder: Recorder, within: float) -> None:
    """Wait for the chat messages still on their way (at most ``within`` seconds) and the
    last listings (at most ``LISTING_SETTLE``), then count the missing messages as
    errors."""
    for _ in range(round(within / LAG_PROBE)):
        if not recorder.waiting(Live.MESSAGE):
            break
        await asyncio.sleep(LAG_PROBE)
    for _ in range(round(LISTING_SETTLE / LAG_PROBE)):
        if not recorder.waiting(Live.LISTING):
            break
        await asyncio.sleep(LAG_PROBE)
    recorder.overdue(0.0)


def _load() -> str:
    return (
        Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__().strip("[]").replace("'", "")
    )


async def measure(args: argparse.Namespace, processes: int) -> Result:
    """One run of ``args.users`` users on ``processes`` app processes."""
    load_start = _load()
    recorder = Recorder()
    cpu = args.server_cpu if args.pin else None
    async with deploy(processes, args.app, cpu, args.checkout) as deployment:
        rss_start, cpu_start = deployment.rss_kib(), deployment.cpu_seconds()
        run = Run(deployment.bases, recorder, 0.0, args.think, args.timeout)
        users = _users(args.users, run)
        prepared = await _prepare(users)
        started, client_cpu = time.monotonic(), time.process_time()
        run.deadline = started + args.duration
        probe = Probe([base + PROBE_PATH for base in deployment.bases], args.timeout)
        sampler = Sampler(deployment, recorder, args.timeout)
        sampling = asyncio.create_task(sampler.run())
        try:
            step = args.ramp / args.users
            await asyncio.gather(
                *(_start(user, number * step) for number, user in enumerate(users))
            )
            await _settle(recorder, args.timeout)
            probe_times, probe_errors = await probe.stop()
            elapsed = time.monotonic() - started
            client = (time.process_time() - client_cpu) / elapsed
            cpu_end = deployment.cpu_seconds()
            rss_end = deployment.rss_kib()
            for user in users:
                await user.leave()
        finally:
            await probe.stop()
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        log = deployment.log_tail()
        await deployment.stop()  # before reading the database: every write is in
        lost = missing_writes(deployment.database, recorder.writes, TOKEN)
    return Result(
        users=args.users,
        duration=args.duration,
        processes=processes,
        broker="memory broker" if processes == 1 else "NATS",
        elapsed=elapsed,
        requests=recorder.requests,
        rows=recorder.rows(),
        errors={**prepared.errors, **dict(recorder.errors), **_counted(probe_errors, "probe: ")},
        listings=recorder.acknowledged[WriteKind.LISTING],
        messages=recorder.acknowledged[WriteKind.MESSAGE],
        edits=recorder.acknowledged[WriteKind.EDIT],
        lost=[f"{write.kind.value} {write.token}" for write in lost],
        message_latency=Spread.of(recorder.live.get(Live.MESSAGE, [])),
        listing_latency=Spread.of(recorder.live.get(Live.LISTING, [])),
        listings_seen=sum(1 for shown in recorder.listings_shown.values() if shown),
        listings_watched=len(recorder.listings_shown),
        listings_unseen=[
            f"{token} (posted at {recorder.posted_at[token] - started:.1f} s)"
            for token, shown in recorder.listings_shown.items()
            if not shown
        ],
        rss_start=rss_start,
        rss_peak=[max(a, b) for a, b in zip(sampler.peak, rss_end, strict=True)],
        rss_end=rss_end,
        server_cpu=[(end - start) / elapsed for start, end in zip(cpu_start, cpu_end, strict=True)],
        client_cpu=client,
        loop_lag=Spread.of(sampler.lags),
        probe=Spread.of(probe_times),
        load_start=load_start,
        load_end=_load(),
        server_log=log,
        prepared=prepared,
        windows=windows(recorder.timeline, sampler.cpu, started, WINDOW),
    )


def _available(app: str, checkout: Path | None) -> str | None:
    """Why ``app`` cannot be served here, or ``None``."""
    if checkout is not None:
        return None  # the server finds it there; a wrong path fails at start
    module = app.partition(":")[0]
    try:
        found = importlib.util.find_spec(module)
    except ModuleNotFoundError:
        found = None
    return None if found is not None else f"no module {module} (the example is not here yet)"


def _machine(args: argparse.Namespace) -> list[str]:
    """The report's head: the machine, the versions, the pinning and the load now."""
    machine = describe(args.server_cpu, args.client_cpu)
    if args.pin:
        return machine
    unpinned = "pinning: none (the servers, nats-server and this client go where the OS puts them)"
    return [unpinned if line.startswith("pinning:") else line for line in machine]


def _now(machine: list[str]) -> list[str]:
    """``machine`` with this moment's date and load average (one run after another)."""
    now = {
        "date:": f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}",
        "load average at start:": f"load average at start: {_load()}",
    }
    return [next((v for k, v in now.items() if line.startswith(k)), line) for line in machine]


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the load test once per process count; 1 if any run had errors or lost writes."""
    args = parse_args(argv)
    missing = _available(args.app, args.checkout)
    if missing is not None:
        print(f"not available: {missing}")
        return 0
    machine = _machine(args)  # before pinning, which hides the other CPUs
    usable = os.sched_getaffinity(0)
    if args.pin and not {args.server_cpu, args.client_cpu} <= usable:
        print(
            f"error: CPUs {args.server_cpu} and {args.client_cpu} are not both usable here",
            file=sys.stderr,
        )
        return 2
    results = []
    # Stopped by SIGTERM (a CI timeout), exit as on Ctrl-C: the servers' atexit hook
    # stops them instead of leaving them running.
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        if args.pin:
            os.sched_setaffinity(0, {args.client_cpu})
        for processes in args.processes:
            head = _now(machine)
            result = uvloop.run(measure(args, processes))
            print(format_report(head, result) + "\n", flush=True)
            results.append(result)
    finally:
        os.sched_setaffinity(0, usable)
        signal.signal(signal.SIGTERM, previous)
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(machine, results), indent=2) + "\n")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
