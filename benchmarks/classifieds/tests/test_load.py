"""The whole load test, briefly, against the real example: it runs and finds nothing wrong.

These need ``examples.classifieds`` (the app under test) and skip without it; the
two-process run needs nats-server too (skipped without it, failed under
LIVEPAGES_REQUIRE_ALL=1, as the NATS tests are).
"""

from __future__ import annotations

import importlib.util

import pytest
from tests.fixtures.nats import nats_server_path

from benchmarks.classifieds.report import format_report
from benchmarks.classifieds_load import measure, parse_args

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        importlib.util.find_spec("examples.classifieds") is None,
        reason="examples.classifieds (the app under test) is not in this checkout",
    ),
]


async def run(processes: int) -> None:
    # Ten users: two pairs that chat, one who signs up, one who signs in, one watcher.
    args = parse_args(
        ["--users", "10", "--duration", "4", "--ramp", "0.5", "--think", "0.3",
         "--timeout", "20"]
    )  # fmt: skip
    result = await measure(args, processes)
    report = format_report(["machine: test"], result)
    assert result.errors == {}, report
    assert result.lost == [], report
    assert result.listings > 0, report
    assert result.messages > 0, report
    assert result.message_latency is not None, report
    assert result.prepared.accounts == 9, report
    routes = {row.route for row in result.rows}
    assert {"POST /signup/_action/signup", "POST /signin/_action/signin"} <= routes, report
    assert {"POST /chats/{id}/_action/send", "GET /chats/{id}/_live (stream)"} <= routes, report
    assert all(kib > 10_000 for kib in result.rss_peak), report
    assert len(result.rss_peak) == processes


async def test_one_process_serves_ten_users_without_an_error_or_a_lost_write() -> None:
    await run(1)


async def test_two_processes_on_nats_serve_ten_users_without_an_error_or_a_lost_write() -> None:
    nats_server_path()  # skips (or fails under LIVEPAGES_REQUIRE_ALL) without nats-server
    await run(2)
