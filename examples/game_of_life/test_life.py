"""The Game of Life rules, on the board alone."""

from __future__ import annotations

import random

import pytest

from examples.game_of_life.life import Board


def test_a_blinker_blinks() -> None:
    board = Board(5, {(1, 2), (2, 2), (3, 2)})
    board.step()
    assert board.alive == {(2, 1), (2, 2), (2, 3)}
    board.step()
    assert board.alive == {(1, 2), (2, 2), (3, 2)}
    assert board.generation == 2


def test_a_block_stays_still() -> None:
    block = {(1, 1), (1, 2), (2, 1), (2, 2)}
    board = Board(6, block)
    board.step()
    assert board.alive == block


def test_lonely_and_crowded_cells_die() -> None:
    board = Board(6, {(0, 0)})
    board.step()
    assert board.alive == set()
    crowded = {(2, 2), (1, 2), (3, 2), (2, 1), (2, 3)}  # the centre has 4 neighbours
    board = Board(6, crowded)
    board.step()
    assert (2, 2) not in board


def test_a_glider_wraps_around_the_edges() -> None:
    glider = {(1, 0), (2, 1), (0, 2), (1, 2), (2, 2)}
    board = Board(8, glider)
    for _ in range(4 * 8):  # a glider moves one cell diagonally every 4 steps
        board.step()
    assert board.alive == glider


def test_cells_are_listed_row_by_row() -> None:
    board = Board(3, {(2, 0), (0, 1)})
    assert list(board.cells()) == [False, False, True, True, False, False, False, False, False]


def test_paint_and_clear() -> None:
    board = Board(4)
    board.paint(3, 0)
    assert (3, 0) in board
    board.clear()
    assert board.alive == set()


@pytest.mark.parametrize(("x", "y"), [(-1, 0), (0, -1), (4, 0), (0, 4)])
def test_painting_off_the_board_is_refused(x: int, y: int) -> None:
    with pytest.raises(ValueError, match="off the 4x4 board"):
        Board(4).paint(x, y)


def test_randomize_is_seeded_and_fills_about_its_density() -> None:
    first, second = Board(50), Board(50)
    first.randomize(random.Random(7))
    second.randomize(random.Random(7))
    assert first.alive == second.alive
    assert 500 < len(first.alive) < 1000  # 30% of 2,500
