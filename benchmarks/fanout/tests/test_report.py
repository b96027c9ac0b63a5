from __future__ import annotations

import json

from benchmarks.fanout.measure import Result
from benchmarks.fanout.report import HEADERS, format_table, legend, notes, to_json
from benchmarks.fanout.stats import ChangeStats, summarize


def _ok(target: str, clients: int, compression: str, last: float) -> Result:
    changes = [ChangeStats(clients, last / 2, last * 0.9, last)]
    return Result(
        target,
        clients,
        compression,
        summary=summarize(changes),
        changes=changes,
        connect_seconds=0.25,
        connect_cpu_us_per_stream=120.0,
        rss_kib_per_stream=1.5,
        cpu_us_per_patch=9.0,
        wire_bytes_per_patch=2765.0,
        client_cpu_us_per_patch=3.0,
    )


RESULTS = [
    _ok("raw", 1000, "none", 0.010),
    _ok("starlette", 1000, "none", 0.040),
    _ok("raw", 1000, "gzip", 0.020),
    Result("starlette", 1000, "gzip", status="not supported", reason="answers plain"),
    Result("livepages", 1000, "none", status="not available", reason="placeholder"),
    Result("livepages", 5000, "none", status="not available", reason="placeholder"),
    Result("raw", 5000, "none", status="error", reason="only 3 of 5000 streams"),
]


def test_table_has_a_row_per_measured_run_and_the_ratio_to_raw() -> None:
    lines = format_table(RESULTS).splitlines()
    assert lines[0].split("  ")[0] == "target"
    assert all(header in lines[0] for header in HEADERS)
    rows = [line.split() for line in lines[2:]]
    assert [row[:3] for row in rows] == [
        ["raw", "1,000", "none"],
        ["starlette", "1,000", "none"],
        ["raw", "1,000", "gzip"],
    ]
    assert rows[0][8] == "1.00"
    assert rows[1][8] == "0.25"
    assert rows[1][7] == "25,000"  # patches/s: 1000 / 0.040 s
    assert rows[1][9] == "0.25"  # connect s
    assert rows[1][10] == "120"  # connect CPU µs per stream


def test_notes_list_each_unavailable_target_once_and_every_error() -> None:
    assert notes(RESULTS) == [
        "starlette/gzip compression: not supported: answers plain",
        "livepages: not available: placeholder",
        "raw N=5000 none: error: only 3 of 5000 streams",
    ]


def test_json_holds_every_run_with_its_ratio() -> None:
    data = to_json(RESULTS, ["cpu: test"], {"changes": 1})
    text = json.dumps(data)
    runs = json.loads(text)["runs"]
    assert len(runs) == len(RESULTS)
    assert runs[1]["throughput_vs_raw"] == 0.25
    assert runs[1]["summary"]["max"] == 0.040
    assert runs[3]["status"] == "not supported"
    assert runs[3]["throughput_vs_raw"] is None


def test_legend_names_the_number_of_changes() -> None:
    assert "median over 5 changes" in legend(5)
