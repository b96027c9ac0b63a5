"""Latency statistics: per change, then across the changes of one run."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ChangeStats", "Summary", "percentile", "summarize"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-quantile (0 < q <= 1) of values sorted ascending."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class ChangeStats:
    """One change: seconds from the trigger until each client had the new event."""

    clients: int
    p50: float
    p99: float
    max: float

    @classmethod
    def from_latencies(cls, latencies: Sequence[float]) -> ChangeStats:
        """Summarize one change's per-client latencies (seconds)."""
        ordered = sorted(latencies)
        return cls(len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.99), ordered[-1])

    @property
    def patches_per_second(self) -> float:
        """Clients served per second until the last one had the patch."""
        return self.clients / self.max if self.max > 0 else math.inf


@dataclass(frozen=True)
class Summary:
    """The median of each statistic over a run's changes, and the worst ``max``."""

    changes: int
    p50: float
    p99: float
    max: float
    worst_max: float
    patches_per_second: float


def summarize(changes: Sequence[ChangeStats]) -> Summary:
    """Combine the changes of one run: medians, plus the worst last-client time."""
    if not changes:
        raise ValueError("no changes to summarize")
    return Summary(
        changes=len(changes),
        p50=statistics.median(c.p50 for c in changes),
        p99=statistics.median(c.p99 for c in changes),
        max=statistics.median(c.max for c in changes),
        worst_max=max(c.max for c in changes),
        patches_per_second=statistics.median(c.patches_per_second for c in changes),
    )
