"""Shared fixtures: tiny hand-made mazes and real procgen levels."""

from __future__ import annotations

import pytest

from mazewb import Maze


@pytest.fixture
def corridor() -> Maze:
    """A 5x5 maze whose only route is a corridor along the bottom then up the right side."""
    return Maze.from_strings(
        """
        ####.
        ####.
        ####.
        ####.
        M....
        """
    )


@pytest.fixture
def fork() -> Maze:
    """A 5x5 maze with a fork: up the left side to the cheese, or right then up to the top-right."""
    return Maze.from_strings(
        """
        C.#..
        .##.#
        .#..#
        .#.##
        M....
        """
    )
