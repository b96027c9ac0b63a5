"""What read tracking costs a live render, and what the index holds per view.

Four measurements, each in this one process:

- ``render``: a live view of a real ``App`` renders (``View._render_once``: the
  page's ``render``, the Datastar event, the dedup), with the engine's read
  tracking on (as once a ``Store`` exists), and with it replaced by a do-nothing
  context manager (as before any ``Store`` exists); the two interleaved, the
  median of each kept.
- ``reads``: a render that records 0, 1 or 10 reads (no I/O: the cost of the
  recording alone), tracked and untracked.
- ``memory``: the index and the per-view tuples for 10,000 views, by
  tracemalloc, for three shapes of reads.
- ``store read``: one ``Collection.get`` from SQLite, for scale.

    .venv/bin/python -m benchmarks.tracking [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livepages import App, Page
from livepages.hooks import Rendered
from livepages.live import View
from livepages.reads import ReadIndex, enable, record
from livepages.store import Store
from livepages.testing import Client

VIEWS = 10_000


@dataclass
class Todo:
    id: int
    title: str


class FakeView:
    """A watcher with nothing else in it."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        self.reads: tuple[Hashable, ...] = ()

    def invalidate(self) -> None:
        pass


@contextlib.contextmanager
def untracked() -> Iterator[None]:
    """Replace the engine's read tracking with a context manager that does nothing."""
    original = ReadIndex.recording

    def recording(
        self: ReadIndex, watcher: Any, *, adding: bool = False
    ) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    ReadIndex.recording = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        ReadIndex.recording = original  # type: ignore[method-assign]


async def engine_renders(rounds: int, per_round: int) -> tuple[float, float]:
    """Median render time (µs) of a real view, tracked and untracked."""
    app = App()
    durations: list[float] = []

    @app.page("/")
    class Home(Page):
        def render(self) -> str:
            return "<ul>" + "".join(f"<li>item {i}</li>" for i in range(20)) + "</ul>"

    app.hooks.add(Rendered, lambda event: durations.append(event.duration))
    tracked: list[float] = []
    plain: list[float] = []
    async with Client(app) as client:
        page = await client.get("/")
        async with page.stream() as stream:
            await stream.next_event()
            view: View = next(iter(app.live.views.values()))
            for _ in range(rounds):
                for sink, patched in ((tracked, False), (plain, True)):
                    durations.clear()
                    with untracked() if patched else contextlib.nullcontext():
                        for _ in range(per_round):
                            view.invalidate()
                            assert view.task is not None
                            await view.task
                    sink.append(statistics.median(durations))
    return min(tracked) * 1e6, min(plain) * 1e6


def recorded_renders(reads: int, count: int) -> tuple[float, float]:
    """Time (ns) per render that records ``reads`` dependencies, tracked and untracked."""
    index = ReadIndex()
    view = FakeView()
    dependencies = [("todos", key) for key in range(reads)]

    def body() -> None:
        for dependency in dependencies:
            record(dependency)

    def tracked() -> None:
        for _ in range(count):
            with index.recording(view):
                body()

    def plain() -> None:
        for _ in range(count):
            body()

    return best_of(tracked, count), best_of(plain, count)


def best_of(run: Callable[[], None], count: int, repeats: int = 5) -> float:
    """The fastest of ``repeats`` runs, in ns per iteration."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - started)
    return min(times) / count


def index_memory(shape: str) -> float:
    """Bytes per view that the index and the views' tuples hold for ``VIEWS`` views."""
    views = [FakeView() for _ in range(VIEWS)]
    index = ReadIndex()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for number, view in enumerate(views):
        with index.recording(view):
            if shape == "one shared collection":
                record(("todos", None))
            elif shape == "one record each":
                record(("users", number))
            else:
                for key in range(10):
                    record(("items", number * 10 + key))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / VIEWS


async def store_read(count: int) -> float:
    """Time (µs) of one ``Collection.get`` from a SQLite file."""
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db")
        todos = store.collection("todos", Todo)
        await todos.put(Todo(1, "milk"))
        started = time.perf_counter()
        for _ in range(count):
            await todos.get(1)
        elapsed = time.perf_counter() - started
        await store.close()
    return elapsed / count * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: noisy figures")
    quick = parser.parse_args(argv).quick
    scale = 10 if quick else 1
    enable()  # as a Store does when it is made

    tracked, plain = asyncio.run(engine_renders(5 if quick else 15, 200))
    print("read tracking (livepages.reads)")
    print(f"  render of a live view: {plain:.1f} µs untracked, {tracked:.1f} µs tracked")
    for reads in (0, 1, 10):
        with_tracking, without = recorded_renders(reads, 200_000 // scale)
        print(
            f"  recording, {reads:>2} reads per render: {without:6.0f} ns untracked,"
            f" {with_tracking:6.0f} ns tracked (+{with_tracking - without:.0f} ns)"
        )
    for shape in ("one shared collection", "one record each", "ten records each"):
        print(f"  index, {VIEWS:,} views, {shape}: {index_memory(shape):.0f} bytes per view")
    print(
        f"  for scale, one store read (SQLite get): {asyncio.run(store_read(2000 // scale)):.0f} µs"
    )


if __name__ == "__main__":
    main()
