"""The Game of Life itself: a board on a torus, with no web in sight.

Kept apart from the app so it can be tested (and read) on its own.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

__all__ = ["Board", "Cell"]

Cell = tuple[int, int]

_NEIGHBOURS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]


class Board:
    """A ``size`` x ``size`` board whose edges wrap around; the live cells are a set.

    A set of live cells makes a step cost in proportion to the live cells, not
    the board's area: a step counts each live cell's neighbours once.
    """

    def __init__(self, size: int, alive: set[Cell] | None = None) -> None:
        self.size = size
        self.alive: set[Cell] = set(alive or ())
        self.generation = 0

    def __contains__(self, cell: Cell) -> bool:
        return cell in self.alive

    def cells(self) -> Iterator[bool]:
        """Every cell, row by row, as alive or not."""
        alive, size = self.alive, self.size
        return ((x, y) in alive for y in range(size) for x in range(size))

    def step(self) -> None:
        """Move one generation on: birth on 3 neighbours, survival on 2 or 3."""
        size = self.size
        counts = Counter(
            ((x + dx) % size, (y + dy) % size) for x, y in self.alive for dx, dy in _NEIGHBOURS
        )
        self.alive = {
            cell for cell, n in counts.items() if n == 3 or (n == 2 and cell in self.alive)
        }
        self.generation += 1

    def paint(self, x: int, y: int) -> None:
        """Bring a cell to life; ``ValueError`` if it is off the board."""
        if not (0 <= x < self.size and 0 <= y < self.size):
            raise ValueError(f"({x}, {y}) is off the {self.size}x{self.size} board")
        self.alive.add((x, y))

    def clear(self) -> None:
        """Kill every cell."""
        self.alive.clear()

    def randomize(self, rng: random.Random, density: float = 0.3) -> None:
        """Fill the board with random soup, each cell alive with probability ``density``."""
        self.alive = {
            (x, y) for y in range(self.size) for x in range(self.size) if rng.random() < density
        }
