"""Per-connection cost of live-stream compression: memory, ratio and time per event.

Each configuration runs in a fresh process that opens N compression contexts (N "connections"),
pushes the same sequence of near-identical Datastar events through every one of them, and
reads the growth of VmRSS while they are all still open. RSS, not tracemalloc, because the
contexts live in C allocations; after the events, because zstd and brotli allocate lazily.

    .venv/bin/python benchmarks/compression.py                  # the full table
    .venv/bin/python benchmarks/compression.py --connections 100 --workloads chat
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import msgspec
import zstandard

from livepages.compression import BrotliSettings, GzipSettings, StreamCompressor, ZstdSettings
from livepages.datastar import patch_elements

#: (encoding, parameters): the library-like defaults first, then smaller contexts.
CONFIGS: list[tuple[str, dict[str, int]]] = [
    ("gzip", {"level": 6, "wbits": 15, "mem_level": 8}),  # zlib's defaults
    ("gzip", {"level": 6, "wbits": 15, "mem_level": 4}),
    ("gzip", {"level": 6, "wbits": 13, "mem_level": 4}),  # livepages' default
    ("gzip", {"level": 9, "wbits": 13, "mem_level": 4}),
    ("gzip", {"level": 1, "wbits": 13, "mem_level": 4}),
    ("gzip", {"level": 6, "wbits": 12, "mem_level": 4}),
    ("zstd", {"level": 3, "window_log": 21}),  # about zstd's defaults for a stream
    ("zstd", {"level": 6, "window_log": 16}),
    ("zstd", {"level": 6, "window_log": 15}),
    ("zstd", {"level": 6, "window_log": 13}),
    ("zstd", {"level": 6, "window_log": 12}),  # ZstdSettings() (not offered by default)
    ("zstd", {"level": 3, "window_log": 12}),
    ("br", {"quality": 4, "lgwin": 22}),
    ("br", {"quality": 4, "lgwin": 16}),
    ("br", {"quality": 2, "lgwin": 16}),  # BrotliSettings() (not offered by default)
    ("br", {"quality": 1, "lgwin": 16}),
]

WORDS = ["the", "a", "live", "page", "stream", "patch", "morph", "signal", "datastar", "render"]


def chat_events(count: int) -> list[bytes]:
    """A chat room showing its last 20 messages (~3 KB); each event posts one more."""
    rng = random.Random(1)
    messages = [
        f'<li id="m{i}"><b class="user">user{rng.randint(1, 40)}</b> '
        f"<span>{' '.join(rng.choices(WORDS, k=rng.randint(6, 14)))}</span> "
        f'<time datetime="2026-11-21T12:{i % 60:02d}">12:{i % 60:02d}</time></li>'
        for i in range(count + 20)
    ]
    return [
        patch_elements(
            f'<main id="room"><h1>Room 42</h1><ul id="messages">{"".join(messages[k : k + 20])}'
            f'</ul><p id="count">{k + 20} messages</p></main>'
        )
        for k in range(count)
    ]


def board_events(count: int) -> list[bytes]:
    """A 50x50 board of cells (~3 KB) where each event flips a few cells."""
    rng = random.Random(2)
    cells = [[rng.random() < 0.3 for _ in range(50)] for _ in range(50)]
    events = []
    for _ in range(count):
        for _ in range(5):
            row, col = rng.randrange(50), rng.randrange(50)
            cells[row][col] = not cells[row][col]
        rows = "".join(
            f'<pre id="r{y}">{"".join("#" if on else "." for on in row)}</pre>'
            for y, row in enumerate(cells)
        )
        events.append(patch_elements(f'<div id="board">{rows}</div>'))
    return events


def table_events(count: int) -> list[bytes]:
    """A product list of 100 rows (~20 KB) whose stock figures change a little each event."""
    rng = random.Random(3)
    stock = [rng.randint(0, 500) for _ in range(100)]
    events = []
    for _ in range(count):
        for _ in range(3):
            stock[rng.randrange(100)] += rng.randint(-5, 5)
        rows = "".join(
            f'<tr id="p{i}"><td><a href="/products/{i}">Product {i}</a></td>'
            f'<td class="price">{(i * 37) % 200 + 0.99:.2f}</td><td class="stock">{n}</td>'
            f"<td><button data-on:click=\"@post('/products/{i}/_action/buy')\">Buy</button></td>"
            "</tr>"
            for i, n in enumerate(stock)
        )
        events.append(patch_elements(f'<table id="products"><tbody>{rows}</tbody></table>'))
    return events


WORKLOADS: dict[str, Callable[[int], list[bytes]]] = {
    "chat": chat_events,
    "board": board_events,
    "table": table_events,
}


def make_compressor(encoding: str, params: dict[str, int]) -> StreamCompressor:
    if encoding == "gzip":
        return msgspec.convert(params, GzipSettings).compressor()
    if encoding == "zstd":
        return msgspec.convert(params, ZstdSettings).compressor()
    return msgspec.convert(params, BrotliSettings).compressor()


def decompress(encoding: str, chunks: list[bytes]) -> bytes:
    """Decode a whole stream, to check that the benchmark measured working compression."""
    data = b"".join(chunks)
    if encoding == "gzip":
        return zlib.decompress(data, 16 + 15)
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    out: bytes = brotli.decompress(data)
    return out


def rss() -> int:
    """Resident set size of this process in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def measure(
    encoding: str, params: dict[str, int], workload: str, connections: int, count: int
) -> dict[str, Any]:
    """Run one configuration in this process and return its figures."""
    events = WORKLOADS[workload](count)
    probe = make_compressor(encoding, params)
    chunks = [probe.compress(event) for event in events]
    sizes = [len(chunk) for chunk in chunks]
    if decompress(encoding, [*chunks, probe.close()]) != b"".join(events):
        raise AssertionError(f"{encoding} {params} did not round-trip")
    del probe, chunks
    gc.collect()

    before = rss()
    compressors = [make_compressor(encoding, params) for _ in range(connections)]
    start = time.perf_counter()
    for event in events:
        for compressor in compressors:
            compressor.compress(event)
    elapsed = time.perf_counter() - start
    gc.collect()
    after = rss()
    return {
        "encoding": encoding,
        "params": params,
        "workload": workload,
        "event_bytes": sum(map(len, events)) // len(events),
        "kib_per_connection": (after - before) / connections / 1024,
        "first_bytes": sizes[0],
        "later_bytes": sum(sizes[1:]) / (len(sizes) - 1),
        "ratio": sum(map(len, events)) / sum(sizes),
        "us_per_event": elapsed / (connections * len(events)) * 1e6,
    }


def describe(params: dict[str, int]) -> str:
    return " ".join(f"{name}={value}" for name, value in params.items())


def run_one(encoding: str, params: dict[str, int], workload: str, args: Any) -> dict[str, Any]:
    """Measure one configuration in a fresh process: freed C memory would blur the next RSS."""
    one = json.dumps([encoding, params, workload])
    output = subprocess.run(
        [
            *(sys.executable, __file__, "--one", one),
            *("--connections", str(args.connections), "--events", str(args.events)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--events", type=int, default=40, help="events per connection")
    parser.add_argument("--workloads", default="chat,board,table")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one configuration
    args = parser.parse_args()

    if args.one:
        encoding, params, workload = json.loads(args.one)
        print(json.dumps(measure(encoding, params, workload, args.connections, args.events)))
        return

    workloads = args.workloads.split(",")
    sizes = {name: len(WORKLOADS[name](1)[0]) for name in workloads}
    print(
        f"{args.connections} connections, {args.events} events each. KiB/conn: VmRSS growth "
        "per open context after the events (the largest over the workloads). Then, per "
        "workload, the mean compressed size of an event after the first, and the time to "
        "compress one event.\n"
    )
    columns = " | ".join(f"{name} ({sizes[name] / 1000:.1f} KB)" for name in workloads)
    print(f"| encoding | parameters | KiB/conn | {columns} |")
    print("|---|---|---:|" + "---:|" * len(workloads))
    for encoding, params in CONFIGS:
        rows = [run_one(encoding, params, workload, args) for workload in workloads]
        memory = max(row["kib_per_connection"] for row in rows)
        cells = " | ".join(
            f"{row['later_bytes']:.0f} B, {row['us_per_event']:.0f} µs" for row in rows
        )
        print(f"| {encoding} | {describe(params)} | {memory:.0f} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
