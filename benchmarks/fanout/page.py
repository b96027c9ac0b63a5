"""The page every target serves: a board of cells with a counter in it.

All targets render the same HTML so that they send the same bytes, and the load
client finds the counter in an event with :func:`find_counter`. The counter is
the board's first attribute so that the search stops early in a 2.7 KB event.
"""

from __future__ import annotations

__all__ = ["COUNTER_MARK", "find_counter", "render"]

COUNTER_MARK = b'data-counter="'

# The cells never change: only the counter does, as in a real page where one
# value moves in a large view (and which is what makes compression pay).
_CELLS = "".join(f'<li class="cell" id="cell-{i:02d}">cell {i:02d}</li>' for i in range(62))


def render(counter: int) -> str:
    """The board for ``counter``: one element with ``id="board"``, about 2.7 KB, one line."""
    return (
        f'<div id="board" data-counter="{counter}">'
        f'<h1>Counter <span id="counter">{counter}</span></h1>'
        f'<ul class="cells">{_CELLS}</ul></div>'
    )


def find_counter(data: bytes, start: int = 0, end: int | None = None) -> int | None:
    """The counter in ``data[start:end]`` (one event), or None when it has none."""
    stop = len(data) if end is None else end
    i = data.find(COUNTER_MARK, start, stop)
    if i < 0:
        return None
    i += len(COUNTER_MARK)
    j = data.find(b'"', i, stop)
    if j < 0:
        return None
    digits = data[i:j]
    return int(digits) if digits.isdigit() else None
