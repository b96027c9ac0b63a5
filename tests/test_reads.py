"""Read tracking: what a render read is indexed, replaced at each render, and forgotten."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

import pytest

from livepages import reads
from livepages.reads import ReadIndex, enable, record, recording_active

enable()  # as a Store does when it is made


class FakeView:
    """A watcher that counts its invalidations."""

    def __init__(self) -> None:
        self.reads: tuple[Hashable, ...] = ()
        self.invalidated = 0

    def invalidate(self) -> None:
        self.invalidated += 1


def render(index: ReadIndex, view: FakeView, *reads: Hashable) -> None:
    with index.recording(view):
        for dependency in reads:
            record(dependency)


def render_failing(index: ReadIndex, view: FakeView, error: BaseException) -> None:
    """A render that reads ``("b", 1)``, then raises ``error``."""
    with index.recording(view):
        record(("b", 1))
        raise error


def test_a_change_invalidates_only_the_views_that_read_it() -> None:
    index = ReadIndex()
    x, y = FakeView(), FakeView()
    render(index, x, ("todos", 1))
    render(index, y, ("todos", 2))
    assert index.changed([("todos", 1)]) == 1
    assert (x.invalidated, y.invalidated) == (1, 0)
    assert index.changed([("todos", 3)]) == 0
    assert (x.invalidated, y.invalidated) == (1, 0)


def test_a_view_is_invalidated_once_per_change_whatever_it_read() -> None:
    index = ReadIndex()
    view = FakeView()
    render(index, view, ("todos", 1), ("todos", None), ("todos", 1))
    assert view.reads.count(("todos", 1)) == 1
    assert index.changed([("todos", None), ("todos", 1)]) == 1
    assert view.invalidated == 1


def test_each_render_replaces_what_the_view_depends_on() -> None:
    index = ReadIndex()
    view = FakeView()
    render(index, view, ("a", 1), ("b", 1))
    render(index, view, ("b", 1), ("c", 1))
    assert set(view.reads) == {("b", 1), ("c", 1)}
    assert index.changed([("a", 1)]) == 0
    assert index.changed([("c", 1)]) == 1
    render(index, view)  # reads nothing now
    assert view.reads == ()
    assert len(index) == 0


def test_a_render_of_a_part_adds_to_what_the_view_depends_on() -> None:
    index = ReadIndex()
    view = FakeView()
    render(index, view, ("a", 1))
    with index.recording(view, adding=True):  # one group of a personal view, say
        record(("b", 1))
    assert set(view.reads) == {("a", 1), ("b", 1)}
    assert index.changed([("a", 1)]) == 1


def test_a_read_is_indexed_while_the_render_still_runs() -> None:
    # A change committed after the read and before the render ends must reach the view.
    index = ReadIndex()
    view = FakeView()
    with index.recording(view):
        record(("todos", 1))
        assert index.changed([("todos", 1)]) == 1
    assert view.invalidated == 1


def test_a_failed_render_keeps_what_it_read_before_and_during() -> None:
    index = ReadIndex()
    view = FakeView()
    render(index, view, ("a", 1))
    with pytest.raises(ValueError, match="template"):
        render_failing(index, view, ValueError("the template failed"))
    assert set(view.reads) == {("a", 1), ("b", 1)}
    assert index.changed([("a", 1)]) == 1


def test_a_cancelled_render_leaves_nothing_indexed() -> None:
    index = ReadIndex()
    view = FakeView()
    render(index, view, ("a", 1))
    with pytest.raises(asyncio.CancelledError):
        render_failing(index, view, asyncio.CancelledError())
    assert view.reads == ()
    assert len(index) == 0


def test_forget_drops_a_view() -> None:
    index = ReadIndex()
    view, other = FakeView(), FakeView()
    render(index, view, ("a", 1), ("a", None))
    render(index, other, ("a", 1))
    index.forget(view)
    assert view.reads == ()
    assert index.watchers(("a", 1)) == {other}
    assert index.watchers(("a", None)) == frozenset()


def test_reads_outside_a_render_and_after_it_are_not_recorded() -> None:
    index = ReadIndex()
    view = FakeView()
    record(("a", 1))  # no render under way: nothing happens
    assert not recording_active()
    with index.recording(view) as recording:
        assert recording_active()
    assert recording is not None
    recording.add(("late", 1))  # a task the render started, reading after it ended
    assert view.reads == ()
    assert len(index) == 0


@pytest.mark.anyio
async def test_reads_in_tasks_a_render_awaits_count_for_it() -> None:
    index = ReadIndex()
    view = FakeView()

    async def part(key: int) -> None:
        await asyncio.sleep(0)
        record(("parts", key))

    with index.recording(view):
        await asyncio.gather(part(1), part(2))
    assert set(view.reads) == {("parts", 1), ("parts", 2)}


def test_nothing_is_recorded_before_a_data_source_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "_enabled", False)
    index = ReadIndex()
    view = FakeView()
    with index.recording(view):
        assert not recording_active()
        record(("a", 1))
    assert view.reads == ()
    assert len(index) == 0
