"""The NATS benchmark: its summaries, and a tiny real run against a real nats-server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fixtures.nats import nats_server_path

from benchmarks.fanout.broker import (
    FANOUT_CLIENTS,
    LATENCY_CHANGES,
    LATENCY_CLIENTS,
    LatencyRow,
    latency_rows,
    nats_overhead,
    parse_args,
)
from benchmarks.fanout.measure import Result
from benchmarks.fanout.process import ROOT
from benchmarks.fanout.stats import ChangeStats


def test_sizes_default_to_full_or_quick() -> None:
    full = parse_args([])
    assert (full.latency_clients, full.changes, full.clients) == (
        LATENCY_CLIENTS,
        LATENCY_CHANGES,
        list(FANOUT_CLIENTS),
    )
    quick = parse_args(["--quick"])
    assert quick.latency_clients < LATENCY_CLIENTS
    assert max(quick.clients) < min(FANOUT_CLIENTS)


@pytest.mark.parametrize("argv", [["--changes", "0"], ["--clients", "0"], ["--clients", "x"]])
def test_bad_command_lines_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2


def _run(target: str, lasts: list[float]) -> Result:
    changes = [ChangeStats(10, last / 2, last, last) for last in lasts]
    return Result(target, 10, "none", changes=changes, cpu_us_per_patch=5.0)


def test_latency_is_the_last_streams_time_over_the_changes() -> None:
    # 100 changes: 1 ms to 100 ms. Nearest rank: p50 is the 50th, p99 the 99th.
    lasts = [n / 1000 for n in range(100, 0, -1)]
    failed = Result("livepages-nats", 10, "none", status="error", reason="boom")
    [row] = latency_rows([_run("livepages", lasts), failed])
    assert (row.target, row.clients, row.changes) == ("livepages", 10, 100)
    assert (row.p50, row.p99, row.max, row.cpu_us_per_patch) == (0.050, 0.099, 0.100, 5.0)
    assert row.stream_p50 == pytest.approx(0.02525)  # the median of the changes' medians


def test_nats_overhead_is_the_difference_and_the_ratio() -> None:
    memory = LatencyRow("livepages", 1000, 100, 0.010, 0.020, 0.030, 0.005, 1.0)
    nats = LatencyRow("livepages-nats", 1000, 100, 0.012, 0.030, 0.040, 0.006, 1.0)
    assert nats_overhead(memory, nats) == (
        "NATS adds +2.0 ms at p50 (1.20x) and +10.0 ms at p99 (1.50x) to the last stream's "
        "time (livepages-nats against livepages)"
    )


def test_a_tiny_run_end_to_end(tmp_path: Path) -> None:
    """The real command: nats-server, one and two app processes, 20 streams, a few changes."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    binary = nats_server_path()  # skips (fails under LIVEPAGES_REQUIRE_ALL) without one
    cpus = sorted(os.sched_getaffinity(0))
    out = tmp_path / "nats.json"
    argv = [
        *("--latency-clients", "20", "--changes", "4", "--clients", "20"),
        *("--fanout-changes", "2", "--settle", "0", "--pause", "0"),
        *("--server-cpu", str(cpus[0]), "--client-cpu", str(cpus[1]), "--json", str(out)),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout.broker", *argv],
        cwd=ROOT,
        env={**os.environ, "LIVEPAGES_NATS_SERVER": str(binary)},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "NATS adds" in done.stdout
    data = json.loads(out.read_text())
    assert [row["target"] for row in data["latency"]] == ["livepages", "livepages-nats"]
    assert all(row["changes"] == 4 and row["p99"] > 0 for row in data["latency"])
    runs = data["fanout_runs"]
    assert [(r["target"], r["clients"], r["status"]) for r in runs] == [
        ("livepages", 20, "ok"),
        ("livepages-nats-2p", 20, "ok"),
    ]
    # Every stream of both processes had each change (or the run would be an error).
    assert all(len(r["changes"]) == 2 for r in runs)
    assert runs[0]["throughput_vs_livepages"] == 1.0


def test_without_nats_server_it_says_so_and_succeeds(tmp_path: Path) -> None:
    missing = tmp_path / "no-nats-server"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout.broker", "--quick"],
        cwd=ROOT,
        env={**os.environ, "LIVEPAGES_NATS_SERVER": str(missing)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"not available: nats-server not found (looked at {missing})")
