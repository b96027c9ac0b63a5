from __future__ import annotations

import time

import pytest

from benchmarks.classifieds.record import Live, Recorder, Spread, WriteKind, windows


def test_requests_and_errors_are_kept_per_route_in_first_use_order() -> None:
    recorder = Recorder()
    recorder.request("GET /", 0.010)
    recorder.error("POST /sell/_action/post", "status 500")
    recorder.request("GET /", 0.030)
    rows = recorder.rows()
    assert [row.route for row in rows] == ["GET /", "POST /sell/_action/post"]
    assert rows[0].spread == Spread(2, 0.010, 0.030, 0.030)
    assert (rows[1].errors, rows[1].spread) == (1, None)
    assert recorder.requests == 2
    assert recorder.error_count == 1
    assert recorder.errors == {"POST /sell/_action/post: status 500": 1}


def test_a_live_update_counts_once_per_watcher_then_is_done() -> None:
    recorder = Recorder()
    recorder.expect("ltk0001n00001", Live.MESSAGE, time.monotonic(), {2})
    recorder.shown("ltk0001n00001", 3)  # not a watcher of it
    assert recorder.waiting(Live.MESSAGE) == 1
    recorder.shown("ltk0001n00001", 2)
    recorder.shown("ltk0001n00001", 2)  # a re-render shows it again: not counted
    assert len(recorder.live[Live.MESSAGE]) == 1
    assert recorder.waiting(Live.MESSAGE) == 0


def test_a_chat_message_never_shown_is_an_error_and_a_listing_only_a_count() -> None:
    recorder = Recorder()
    started = time.monotonic() - 60
    recorder.expect("ltk0001n00001", Live.MESSAGE, started, {2})
    recorder.expect("ltk0003n00001", Live.LISTING, started, {9, 19})
    recorder.shown("ltk0003n00001", 9)
    recorder.overdue(30.0)
    assert recorder.errors == {"live: a chat message not shown within 30 s": 1}
    assert recorder.listings_shown == {"ltk0003n00001": 1}
    assert recorder.waiting(Live.LISTING) == 0


def test_updates_within_the_deadline_are_still_awaited() -> None:
    recorder = Recorder()
    recorder.expect("ltk0001n00001", Live.MESSAGE, time.monotonic(), {2})
    recorder.overdue(30.0)
    assert recorder.error_count == 0
    assert recorder.waiting(Live.MESSAGE) == 1


def test_no_watcher_means_nothing_is_awaited() -> None:
    recorder = Recorder()
    recorder.expect("ltk0003n00001", Live.LISTING, time.monotonic(), set())
    assert recorder.waiting(Live.LISTING) == 0
    assert recorder.listings_shown == {}


def test_a_failed_write_is_forgotten() -> None:
    recorder = Recorder()
    recorder.expect("ltk0001n00001", Live.MESSAGE, time.monotonic() - 60, {2})
    recorder.forget("ltk0001n00001")
    recorder.overdue(30.0)
    assert recorder.error_count == 0


def test_writes_are_kept_in_order() -> None:
    recorder = Recorder()
    recorder.wrote(WriteKind.LISTING, "ltk0001n00001")
    recorder.wrote(WriteKind.MESSAGE, "ltk0001n00002")
    assert [w.kind for w in recorder.writes] == [WriteKind.LISTING, WriteKind.MESSAGE]


def test_a_spread_of_nothing_is_none() -> None:
    assert Spread.of([]) is None
    assert Spread.of([3.0, 1.0, 2.0]) == Spread(3, 2.0, 3.0, 3.0)


def test_windows_cut_the_run_by_when_requests_ended() -> None:
    timeline = [(100.5, 0.010), (101.0, 0.030), (112.0, 0.200)]
    cpu = [(100.0, 5.0), (105.0, 7.5), (110.0, 10.0), (120.0, 11.0)]
    found = windows(timeline, cpu, started=100.0, width=10.0)
    assert [(w.start, w.end) for w in found] == [(0.0, 10.0), (10.0, 20.0)]
    assert found[0].spread == Spread(2, 0.010, 0.030, 0.030)
    assert found[0].server_cpu == pytest.approx(0.5)
    assert found[1].spread == Spread(1, 0.200, 0.200, 0.200)
    assert found[1].server_cpu == pytest.approx(0.1)
    assert windows([], cpu, started=100.0, width=10.0) == []


def test_an_edit_replaces_the_previous_edit_of_its_listing() -> None:
    recorder = Recorder()
    recorder.wrote(WriteKind.LISTING, "ltk0001n00001")
    recorder.wrote(WriteKind.EDIT, "ltk0001n00002")
    recorder.wrote(WriteKind.EDIT, "ltk0001n00003", replaces="ltk0001n00002")
    assert [w.token for w in recorder.writes] == ["ltk0001n00001", "ltk0001n00003"]
    assert recorder.acknowledged == {WriteKind.LISTING: 1, WriteKind.EDIT: 2}
