"""Page GETs per second: livepages against a plain Starlette route, same template.

``python -m benchmarks.pages [--quick] [--profile]``

Both targets render the same Jinja2 template with the same data (a product
table, about 5 KB of HTML) into a full document, and run under the same server
(uvicorn with httptools and uvloop, one process). livepages serves it as a
page (its router, page instance, injected render, document shell, tab id);
Starlette as a route that renders the template into an ``HTMLResponse`` from a
plain jinja2 ``Environment`` (the leanest way, so the strictest baseline). A
third target, ``lp-static``, is the livepages page with ``live = False``, to
show what being live costs a GET.

Each server is a separate process pinned to one CPU; this process, the load
client, pins itself to another. The client keeps N HTTP/1.1 keep-alive
connections busy (one request in flight each), counts the 200 responses whose
body holds the page's end marker during a fixed window after a warm-up, and
times each request. The two targets take turns, round after round, so that
background load falls on both alike; each is reported by its best round.

Besides requests per second, the table gives the server's CPU time per request,
read from the kernel: on a shared machine it moves less than the rate does.
``--profile`` runs requests through each app in-process (no server, no
sockets) under cProfile and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import jinja2
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from benchmarks.fanout.process import ServerProcess, free_port
from benchmarks.fanout.stats import percentile
from livepages import App, Page, Templates

__all__ = ["livepages_app", "livepages_static_app", "main", "starlette_app"]

#: The page body: a loop over the products. Both targets render this same source.
BODY = """\
<h1>Catalog</h1>
<p>{{ products|length }} products, {{ in_stock }} in stock.</p>
<table>
<thead><tr><th>#</th><th>Name</th><th>Price</th><th>Stock</th><th>Tags</th></tr></thead>
<tbody>
{% for product in products %}
<tr id="product-{{ product.id }}" class="{{ loop.cycle('odd', 'even') }}">\
<td>{{ product.id }}</td><td>{{ product.name }}</td>\
<td>{{ "%.2f"|format(product.price) }} €</td><td>{{ product.stock }}</td>\
<td>{{ product.tags|join(", ") }}</td></tr>
{% endfor %}
</tbody>
</table>
<footer data-bench-end>{{ products|length }} shown</footer>
"""

#: The Starlette document around the body: the same head as livepages' shell.
LAYOUT = """\
<!doctype html><html lang="en"><head><meta charset="utf-8">\
<meta name="viewport" content="width=device-width, initial-scale=1">\
<title>Catalog</title><script type="module" src="{{ datastar_url }}"></script></head>\
<body><main>{% include "body.html" %}</main></body></html>"""

#: Every good response holds this: the last element of the body.
MARKER = b"<footer data-bench-end>"
TEMPLATES = {"body.html": BODY, "layout.html": LAYOUT}
DATASTAR_URL = "https://cdn.jsdelivr.net/gh/starfederation/datastar@1.0.1/bundles/datastar.js"
GOAL = 0.8


@dataclass(frozen=True, slots=True)
class Product:
    """One row of the table."""

    id: int
    name: str
    price: float
    stock: int
    tags: tuple[str, ...]


PRODUCTS = [
    Product(i, f"Product <{i}> & Co", 3.5 * i + 0.99, (i * 7) % 13, ("new", f"tag{i % 5}"))
    for i in range(1, 36)
]


def context() -> dict[str, Any]:
    """The template data, the same for both targets."""
    return {"products": PRODUCTS, "in_stock": sum(1 for p in PRODUCTS if p.stock)}


# -- the targets (factories the server process calls) -----------------------------------


def _environment() -> jinja2.Environment:
    # The whitespace options livepages' Templates uses, so the HTML is the same.
    return jinja2.Environment(
        loader=jinja2.DictLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )


def livepages_app() -> App:
    """The page as a livepages app: live, as pages are by default."""
    return _livepages(live=True)


def livepages_static_app() -> App:
    """The same page with ``live = False``: no tab id, no live stream to open."""
    return _livepages(live=False)


def _livepages(live: bool) -> App:
    app = App(templates=Templates(loader=jinja2.DictLoader(TEMPLATES)))

    @app.page("/")
    class Catalog(Page):
        def title(self) -> str:
            return "Catalog"

        async def render(self) -> object:
            return self.template("body.html", **context())

    Catalog.live = live
    return app


def starlette_app() -> Starlette:
    """The page as a plain Starlette route rendering the template."""
    layout = _environment().get_template("layout.html")

    async def catalog(request: Request) -> Response:
        return HTMLResponse(layout.render(datastar_url=DATASTAR_URL, **context()))

    return Starlette(routes=[Route("/", catalog)])


TARGETS: dict[str, str] = {
    "starlette": "benchmarks.pages:starlette_app",
    "livepages": "benchmarks.pages:livepages_app",
    "lp-static": "benchmarks.pages:livepages_static_app",
}


# -- the load client ----------------------------------------------------------------------


class Load:
    """What the connections of one run share: the phase and the tallies."""

    __slots__ = ("bad", "failure", "latencies", "measuring", "ok", "running", "started", "stopped")

    def __init__(self) -> None:
        self.running = True
        self.measuring = False
        self.ok = 0
        self.bad = 0
        self.latencies: list[float] = []
        self.failure: str | None = None
        self.started = self.stopped = 0.0

    def start(self) -> None:
        """End the warm-up: count from now on."""
        self.measuring = True
        self.started = time.perf_counter()

    def stop(self) -> None:
        """End the window; connections close after their request in flight."""
        self.stopped = time.perf_counter()
        self.measuring = self.running = False

    def done(self, good: bool, seconds: float) -> None:
        """One response completed."""
        if not self.measuring:
            return
        if good:
            self.ok += 1
            self.latencies.append(seconds)
        else:
            self.bad += 1

    def fail(self, reason: str) -> None:
        """Give up the run (the first reason wins)."""
        if self.failure is None:
            self.failure = reason
        self.stop()


class Connection(asyncio.Protocol):
    """One keep-alive connection: send a GET, read the whole response, send again.

    Responses must carry Content-Length (both targets' do); anything else fails
    the run rather than being miscounted.
    """

    def __init__(self, load: Load, request: bytes) -> None:
        self.load = load
        self.request = request
        self.buffer = bytearray()
        self.status = 0
        self.body_start = -1
        self.length = 0
        self.sent = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if self.body_start < 0 and not self._read_head():
            return
        end = self.body_start + self.length
        if len(buffer) < end:
            return
        good = self.status == 200 and buffer.find(MARKER, self.body_start, end) >= 0
        self.load.done(good, time.perf_counter() - self.sent)
        del buffer[:end]
        self.body_start = -1
        if buffer:  # one request in flight: nothing may follow its response
            self.load.fail("the server sent more than one response")
        assert self.transport is not None
        if self.load.running:
            self.send()
        else:
            self.transport.close()

    def _read_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).lower() + b"\r\n"
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            self.load.fail("a response without Content-Length")
            return False
        self.status = int(head[9:12])
        self.length = int(head[start + 17 : head.index(b"\r\n", start + 2)])
        self.body_start = end + 4
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.load.running:
            self.load.fail(f"the server closed a connection ({exc or 'EOF'})")
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass(frozen=True, slots=True)
class Round:
    """One measured window against one target."""

    target: str
    requests: int
    seconds: float
    p50: float
    p99: float
    cpu_seconds: float
    rss_growth_kib: int

    @property
    def rate(self) -> float:
        """Good responses per second."""
        return self.requests / self.seconds

    @property
    def busy(self) -> float:
        """The share of the window the server spent on a CPU (1.0: never waited)."""
        return self.cpu_seconds / self.seconds

    @property
    def cpu_per_request(self) -> float:
        """Server CPU seconds per good response."""
        return self.cpu_seconds / self.requests


@dataclass(frozen=True, slots=True)
class Options:
    """How hard and how long to push."""

    connections: int
    warmup: float
    duration: float
    rounds: int


async def load_round(server: ServerProcess, target: str, options: Options) -> Round:
    """Drive ``server`` for one warm-up plus one measured window."""
    loop = asyncio.get_running_loop()
    load = Load()
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    connections: list[Connection] = []
    try:
        for _ in range(options.connections):
            _, connection = await loop.create_connection(
                lambda: Connection(load, request), "127.0.0.1", server.port
            )
            connections.append(connection)
        rss_before = server.rss_kib()
        await asyncio.sleep(options.warmup)
        cpu_before = server.cpu_seconds()
        load.start()
        await asyncio.sleep(options.duration)
        load.stop()
        cpu = server.cpu_seconds() - cpu_before
        rss_growth = server.rss_kib() - rss_before
        await asyncio.wait([c.closed for c in connections], timeout=5)
    finally:
        load.stop()
        for connection in connections:
            if connection.transport is not None:
                connection.transport.abort()
    if load.failure is not None:
        raise RuntimeError(f"{target}: {load.failure}")
    if load.bad or not load.ok:
        raise RuntimeError(f"{target}: {load.bad} bad responses, {load.ok} good")
    latencies = sorted(load.latencies)
    return Round(
        target,
        load.ok,
        load.stopped - load.started,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        cpu,
        rss_growth,
    )


async def fetch(port: int) -> tuple[int, bytes]:
    """One GET / on a fresh connection: the status and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head[9:12]), body


async def check_same_page(servers: dict[str, ServerProcess]) -> dict[str, int]:
    """Each target's page size; RuntimeError unless both hold the same rendered body."""
    expected = _environment().get_template("body.html").render(**context()).encode()
    sizes = {}
    for name, server in servers.items():
        status, body = await fetch(server.port)
        if status != 200 or expected not in body or MARKER not in body:
            raise RuntimeError(f"{name} did not serve the expected page (status {status})")
        sizes[name] = len(body)
    return sizes


async def run(options: Options, server_cpu: int) -> tuple[list[Round], dict[str, int]]:
    """Start both servers, check them, then alternate rounds; stop them by PID."""
    servers: dict[str, ServerProcess] = {}
    try:
        for name, spec in TARGETS.items():
            port = free_port()
            servers[name] = ServerProcess(_serve_command(spec, port), port, server_cpu)
        for server in servers.values():
            await server.wait_ready(timeout=30)
        sizes = await check_same_page(servers)
        rounds = []
        for _ in range(options.rounds):
            for name, server in servers.items():
                rounds.append(await load_round(server, name, options))
        return rounds, sizes
    finally:
        for server in servers.values():
            await server.stop()


def _serve_command(spec: str, port: int) -> list[str]:
    return [sys.executable, "-m", "benchmarks.fanout.serve", "--app", spec, "--port", str(port)]


# -- the report -----------------------------------------------------------------------------


def best_rounds(rounds: Sequence[Round]) -> dict[str, Round]:
    """Each target's fastest round: the one least disturbed by other work."""
    best: dict[str, Round] = {}
    for r in rounds:
        if r.target not in best or r.rate > best[r.target].rate:
            best[r.target] = r
    return best


def format_report(rounds: Sequence[Round], sizes: dict[str, int], options: Options) -> list[str]:
    """The table, best round per target, with ratios against Starlette."""
    best = best_rounds(rounds)
    base = best["starlette"]
    growth = {name: sum(r.rss_growth_kib for r in rounds if r.target == name) for name in best}
    lines = [
        f"{options.connections} connections, {options.warmup:g} s warm-up, "
        f"{options.duration:g} s measured, best of {options.rounds} round(s) per target",
        "",
        f"{'target':<10} {'bytes':>6} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'busy':>5} {'CPU us/req':>10} {'ratio':>6} {'CPU ratio':>9} {'RSS +KiB':>9}",
    ]
    for name, r in best.items():
        lines.append(
            f"{name:<10} {sizes[name]:>6} {r.rate:>8,.0f} {r.p50 * 1e3:>7.2f} {r.p99 * 1e3:>7.2f} "
            f"{r.busy:>5.0%} {r.cpu_per_request * 1e6:>10.0f} {r.rate / base.rate:>6.2f} "
            f"{base.cpu_per_request / r.cpu_per_request:>9.2f} {growth[name]:>9,}"
        )
    ratio = best["livepages"].rate / base.rate
    verdict = "met" if ratio >= GOAL else "NOT met"
    lines += [
        "",
        "busy: server CPU time over the window (below ~90%, the server waited for a CPU or "
        "the network and req/s understates it); CPU us/req: server CPU time per response.",
        "ratio: req/s against Starlette's; CPU ratio: Starlette's CPU per request over this "
        "target's (both: higher is better; on a busy machine trust the CPU ratio more).",
        "RSS +KiB: how much the server's memory grew over all its rounds (a leak shows here).",
        "lp-static: the livepages page with live = False (no tab id, no live stream).",
        f"goal livepages >= {GOAL:g}x Starlette req/s: {verdict} ({ratio:.2f}x).",
        "All rounds (req/s, CPU us/req): "
        + ", ".join(f"{r.target} {r.rate:,.0f} {r.cpu_per_request * 1e6:.0f}" for r in rounds)
        + ". Shared machines are noisy: compare runs only side by side.",
    ]
    return lines


# -- profiling in process -----------------------------------------------------------------------


def asgi_get(app: ASGIApp) -> Callable[[], Any]:
    """A coroutine function that sends one GET / through ``app`` and checks the answer."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def get() -> None:
        body = bytearray()

        async def send(message: Message) -> None:
            body.extend(message.get("body", b""))

        await app(dict(scope), receive, send)
        if MARKER not in body:
            raise RuntimeError("the app did not render the page")

    return get


def profile(requests: int, top: int) -> list[str]:
    """Time, then cProfile, ``requests`` in-process GETs through each target.

    The timing runs without the profiler (best of 3), so the difference between
    the two targets is the framework's own cost per request, server excluded.
    The profiles list the costliest functions overall and livepages' own.
    """
    lines = []
    for name, factory in (("starlette", starlette_app), ("livepages", livepages_app)):
        get = asgi_get(factory())
        profiler = cProfile.Profile()

        async def timed(
            get: Callable[[], Any] = get, profiler: cProfile.Profile = profiler
        ) -> float:
            for _ in range(100):  # warm the template cache
                await get()
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(requests):
                    await get()
                best = min(best, time.perf_counter() - started)
            profiler.enable()
            for _ in range(requests):
                await get()
            profiler.disable()
            return best / requests

        seconds = uvloop.run(timed())
        lines.append(f"\n### {name}: {seconds * 1e6:.0f} us per request in process\n")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
        stats.print_stats(top)
        if name == "livepages":
            stats.sort_stats("cumulative").print_stats(r"src/livepages", top)
        lines.append(out.getvalue())
    return lines


# -- the command line ---------------------------------------------------------------------------


def _cpus() -> tuple[int, int, str]:
    """The server's CPU, the client's, and a note when they have to share one."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) == 1:
        return usable[0], usable[0], "only one usable CPU: server and client share it"
    return usable[0], usable[1], ""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; non-zero if a target misbehaves."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pages", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one short round per target")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="also profile in process")
    args = parser.parse_args(argv)
    if args.connections < 1:
        parser.error("--connections must be at least 1")
    if args.quick:
        options = Options(args.connections, warmup=0.5, duration=2.0, rounds=1)
    else:
        options = Options(args.connections, warmup=1.0, duration=5.0, rounds=3)

    server_cpu, client_cpu, note = _cpus()
    print(f"server on CPU {server_cpu}, load client on CPU {client_cpu}. {note}".rstrip())
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {client_cpu})
    try:
        try:
            rounds, sizes = uvloop.run(run(options, server_cpu))
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("\n".join(format_report(rounds, sizes, options)), flush=True)
        if args.profile:
            print("\n".join(profile(300 if args.quick else 2000, top=25)))
    finally:
        os.sched_setaffinity(0, saved)
    return 0


if __name__ == "__main__":
    sys.exit(main())
