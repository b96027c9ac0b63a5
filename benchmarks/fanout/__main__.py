"""``python -m benchmarks.fanout``: see :mod:`benchmarks.fanout.run`."""

from __future__ import annotations

from benchmarks.fanout.run import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
