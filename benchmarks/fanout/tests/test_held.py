from __future__ import annotations

import pytest

from benchmarks.fanout.held import main


def test_held_counts_what_idle_streams_keep_under_uvicorn(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--app", "livepages", "--streams", "20", "--top", "3"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("20 idle streams under uvicorn: ")
    per_stream = int(first.split(": ")[1].split(" B")[0].replace(",", ""))
    assert per_stream > 0  # each stream keeps at least uvicorn's protocol objects
    assert "httptools_impl.py" in out
    assert "tracked objects by type:" in out
