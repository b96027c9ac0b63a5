from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.fanout.process import ROOT
from benchmarks.fanout.run import FULL_CLIENTS, QUICK_CLIENTS, _raise_fd_limit, main, parse_args


def test_client_counts_default_to_full_or_quick() -> None:
    assert parse_args([]).clients == list(FULL_CLIENTS)
    assert parse_args(["--quick"]).clients == list(QUICK_CLIENTS)
    assert parse_args(["--quick", "--clients", "7,8"]).clients == [7, 8]


@pytest.mark.parametrize(
    "argv",
    [
        ["--clients", "5,x"],
        ["--clients", "0"],
        ["--clients", ""],
        ["--compression", "brotli"],
        ["--changes", "0"],
        ["--concurrency", "0"],
    ],
)
def test_bad_command_lines_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2


def test_fd_limit_too_low_is_a_clear_error() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard RLIMIT_NOFILE here")
    message = _raise_fd_limit(hard + 1)
    assert message is not None
    assert "RLIMIT_NOFILE hard limit" in message


def test_a_small_run_end_to_end(tmp_path: Path) -> None:
    """The real command: a raw server and a client process, 20 streams, 2 changes."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs")
    cpus = sorted(os.sched_getaffinity(0))
    out = tmp_path / "fanout.json"
    argv = [
        *("--clients", "20", "--changes", "2", "--settle", "0", "--pause", "0"),
        *("--targets", "raw,livepages", "--server-cpu", str(cpus[0])),
        *("--client-cpu", str(cpus[1]), "--json", str(out)),
        *("--livepages-app", "benchmarks.fanout.tests.targets.broken:create_app"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fanout", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "livepages: not available: NotImplementedError" in done.stdout
    runs = json.loads(out.read_text())["runs"]
    assert [(r["target"], r["compression"], r["status"]) for r in runs] == [
        ("raw", "none", "ok"),
        ("raw", "gzip", "ok"),
        ("livepages", "none", "not available"),
    ]
    for run in runs[:2]:
        assert len(run["changes"]) == 2
        assert run["summary"]["max"] > 0
        assert run["throughput_vs_raw"] == 1.0
    assert runs[1]["wire_bytes_per_patch"] < runs[0]["wire_bytes_per_patch"]


def test_unusable_cpus_are_refused_and_nothing_is_left_changed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    affinity = os.sched_getaffinity(0)
    assert main(["--client-cpu", "9999", "--targets", "raw"]) == 2
    assert "CPU(s) [9999] are not usable here" in capsys.readouterr().err
    assert os.sched_getaffinity(0) == affinity
    assert gc.isenabled()


def test_unknown_targets_are_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--targets", "raw,nginx"]) == 2
    assert "unknown target(s) nginx" in capsys.readouterr().err
