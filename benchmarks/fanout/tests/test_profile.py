from __future__ import annotations

import pytest

from benchmarks.fanout.page import PAGE_ENV
from benchmarks.fanout.profile import Collections, main


@pytest.mark.parametrize("app", ["livepages", "livepages-personal"])
def test_a_profile_connects_changes_and_says_where_memory_goes(
    app: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PAGE_ENV, "board")  # main sets it; the fixture puts it back
    assert main(["--app", app, "--page", "site", "--clients", "20", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "connect 10 streams:" in out
    assert "one change to 21 streams:" in out
    assert "B per stream (Python objects only)" in out
    assert "by file:" in out
    assert "function calls" in out


def test_collections_count_each_generation() -> None:
    collections = Collections()
    collections("start", {"generation": 2})
    collections("stop", {"generation": 2})
    assert collections.count == [0, 0, 1]
    assert str(collections).startswith("gen0 0x 0 ms, gen1 0x 0 ms, gen2 1x")
