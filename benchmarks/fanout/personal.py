"""``python -m benchmarks.fanout.personal``: the personalised-page scenario of ``make bench``.

The 5 KB site page (``--page site``) greeting each viewer by name, at 1,000 and
10,000 viewers, in one run: the raw floor, Starlette + datastar-py rendering per
client, livepages' shared page (no name), livepages' personal page (its render
takes the ``Tab``; shared with holes, ``livepages.personal``) and the same page
rendered per viewer (``personal_holes=False``). Uncompressed, so that the
figures show rendering and writing, not gzip. Extra arguments go to
``benchmarks.fanout`` (``--clients 1000``, ``--before REF``, ``--json PATH``).
"""

from __future__ import annotations

import sys

from benchmarks.fanout.run import main as fanout

__all__ = ["TARGETS", "main"]

TARGETS = "raw,starlette-personal,livepages,livepages-personal,livepages-per-viewer"


def main(argv: list[str] | None = None) -> int:
    """Run the scenario; ``--quick`` runs 1,000 viewers only."""
    argv = list(sys.argv[1:] if argv is None else argv)
    clients = "1000" if "--quick" in argv else "1000,10000"
    argv = [a for a in argv if a != "--quick"]
    base = ["--page", "site", "--compression", "none", "--targets", TARGETS]
    return fanout([*base, "--clients", clients, *argv])


if __name__ == "__main__":
    raise SystemExit(main())
