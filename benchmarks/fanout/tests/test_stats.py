from __future__ import annotations

import pytest

from benchmarks.fanout.stats import ChangeStats, percentile, summarize


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([3.0], 0.5) == 3.0


@pytest.mark.parametrize(("values", "q"), [([], 0.5), ([1.0], 0.0), ([1.0], 1.5)])
def test_percentile_rejects_bad_input(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"percentile|q must"):
        percentile(values, q)


def test_change_stats_from_unsorted_latencies() -> None:
    stats = ChangeStats.from_latencies([0.4, 0.1, 0.3, 0.2])
    assert stats == ChangeStats(clients=4, p50=0.2, p99=0.4, max=0.4)
    assert stats.patches_per_second == pytest.approx(10.0)


def test_summarize_takes_medians_and_the_worst_max() -> None:
    changes = [
        ChangeStats(clients=10, p50=0.1, p99=0.2, max=1.0),
        ChangeStats(clients=10, p50=0.3, p99=0.4, max=2.0),
        ChangeStats(clients=10, p50=0.2, p99=0.9, max=5.0),
    ]
    summary = summarize(changes)
    assert summary.changes == 3
    assert summary.p50 == 0.2
    assert summary.p99 == 0.4
    assert summary.max == 2.0
    assert summary.worst_max == 5.0
    assert summary.patches_per_second == pytest.approx(5.0)


def test_summarize_needs_a_change() -> None:
    with pytest.raises(ValueError, match="no changes"):
        summarize([])
