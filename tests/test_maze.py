"""The Maze value: construction, validation, edits, JSON, coordinates, graph facts."""

from __future__ import annotations

import json
import math

import pytest

from mazewb import Maze, MazeError
from mazewb.maze import geometry, graph


def test_from_strings_round_trip(fork: Maze) -> None:
    assert fork.size == 5
    assert fork.mouse == (0, 0)
    assert fork.cheese == (4, 0)  # top-left: row 4 is the top row
    assert fork.to_strings()[0] == "C.#.."
    assert Maze.from_strings(fork.to_strings()) == fork


def test_value_semantics(fork: Maze) -> None:
    same = Maze.from_strings(fork.to_strings())
    assert same == fork and hash(same) == hash(fork)
    moved = fork.with_cheese((0, 4))
    assert moved != fork and fork.cheese == (4, 0)  # the original is unchanged
    assert {fork: 1}[same] == 1
    with pytest.raises(AttributeError):
        fork.size = 3  # type: ignore[misc]


def test_open_cells_and_queries(corridor: Maze) -> None:
    cells = corridor.open_cells()
    assert cells[0] == (0, 0) and len(cells) == 9
    assert corridor.is_open((4, 4)) and not corridor.is_open((4, 0))
    assert not corridor.is_open((5, 0)) and not corridor.is_open((-1, 0))
    assert corridor.top_right == (4, 4)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.with_cheese((4, 0)), "wall"),
        (lambda m: m.with_cheese((7, 7)), "outside"),
        (lambda m: m.with_mouse((3, 1)), "wall"),
        (lambda m: m.with_mouse((-1, 0)), "outside"),
        (lambda m: m.with_cheese((0, 0)), "share"),
        (lambda m: m.with_wall((0, 0), True), "mouse"),
        (lambda m: m.with_wall((9, 0), True), "outside"),
        (lambda m: m.with_cheese("a"), "pair"),
    ],
)
def test_illegal_edits_name_the_problem(corridor: Maze, edit, message: str) -> None:
    with pytest.raises(MazeError, match=message):
        edit(corridor)
    assert issubclass(MazeError, ValueError)


def test_legal_edits(corridor: Maze) -> None:
    m = corridor.with_cheese((4, 4)).with_mouse((0, 2))
    assert m.cheese == (4, 4) and m.mouse == (0, 2)
    assert m.without_cheese().cheese is None
    opened = corridor.with_wall((1, 0), False)
    assert opened.is_open((1, 0))
    with pytest.raises(MazeError, match="cheese"):
        m.with_wall((4, 4), True)


def test_json_round_trip(fork: Maze) -> None:
    text = fork.to_json()
    assert Maze.from_json(text) == fork
    data = json.loads(text)
    assert data["rows"][0] == "..#.."  # walls only, top row first
    seeded = Maze.from_seed(4)
    assert Maze.from_json(seeded.to_json()).seed == 4


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "object"),
        ('{"format": "other"}', "format"),
        ('{"format": "mazewb-maze-v1", "size": 2, "rows": ["..", ".."]}', "missing mouse"),
        ('{"format": "mazewb-maze-v1", "size": 3, "rows": ["..", ".."], "mouse": [0, 0]}', "3 strings"),
        ('{"format": "mazewb-maze-v1", "size": 2, "rows": ["..", ".x"], "mouse": [0, 0]}', "only contain"),
        ('{"format": "mazewb-maze-v1", "size": 2, "rows": ["#.", ".."], "mouse": [0, 0], "cheese": [1, 0]}', "wall"),
        ('{"format": "mazewb-maze-v1", "size": 2, "rows": ["..", ".."], "mouse": [0, 0], "x": 1}', "unknown"),
        ('{"format": "mazewb-maze-v1", "size": 30, "rows": [], "mouse": [0, 0]}', "from 1 to 25, got 30"),
        ('{"format": "mazewb-maze-v1", "size": 3, "rows": [], "mouse": [0, 0]}', "3 strings"),
    ],
)
def test_malformed_json(text: str, message: str) -> None:
    with pytest.raises(MazeError, match=message):
        Maze.from_json(text)


def test_sizes_odd_and_even() -> None:
    for size in (1, 2, 4, 7, 25):
        m = Maze(size, tuple((False,) * size for _ in range(size)), None)
        assert len(m.open_cells()) == size * size
    with pytest.raises(MazeError, match="size"):
        Maze(26, tuple((False,) * 26 for _ in range(26)), None)


def test_geometry_conversions() -> None:
    # A 25x25 maze fills the world; a 13x13 one has a margin of 6 tiles.
    assert geometry.square_to_world((0, 0), 25) == (0, 0)
    assert geometry.square_to_world((0, 0), 13) == (6, 6)
    # The bottom-left square is at the bottom of the image.
    prow, pcol = geometry.square_to_pixel_centre((0, 0), 25)
    assert prow == pytest.approx(24.5 * 2.56) and pcol == pytest.approx(0.5 * 2.56)
    # The reference formula for 16x16 cells.
    for size in (3, 13, 25):
        for r in range(size):
            for c in range(size):
                wr, wc = geometry.square_to_world((r, c), size)
                expected = (math.floor(((24 - wr) + 0.5) * 2.56 / 4), math.floor((wc + 0.5) * 2.56 / 4))
                assert geometry.square_to_cell((r, c), size, 16) == expected
                assert (r, c) in geometry.cell_to_squares(expected, size, 16)
    # Pixel -> square inverts square -> pixel centre in both image sizes.
    for pixels in (64, 512):
        for sq in [(0, 0), (3, 7), (12, 12)]:
            assert geometry.pixel_to_square(*geometry.square_to_pixel_centre(sq, 13, pixels), 13, pixels) == sq


def test_graph_facts(fork: Maze, corridor: Maze) -> None:
    assert graph.shortest_path(fork, (0, 0), (4, 0)) == [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0)]
    assert graph.path_distance(fork, (0, 0), (4, 4)) == 8
    assert graph.path_distance(corridor.with_wall((0, 2), True), (0, 0), (4, 4)) == math.inf
    assert graph.euclidean((0, 0), (3, 4)) == 5
    assert graph.decision_square(fork) == (0, 0)
    # Cheese on the way to the top-right square: no decision square.
    assert graph.decision_square(corridor.with_cheese((2, 4))) is None
    assert graph.decision_square(fork.with_cheese((2, 2))) is None  # on the way to T
    assert graph.decision_square(fork.with_cheese((0, 4))) == (0, 2)
    assert graph.cheese_reachable(fork)
    assert not graph.cheese_reachable(fork.with_wall((1, 0), True))
    assert graph.top_right_region(corridor, 2) == {(3, 4), (4, 4)}
    assert graph.first_move_towards(fork, (0, 0), (4, 0)) == "UP"
    moves = graph.optimal_moves(fork, (4, 4))
    assert moves[(0, 0)] == "RIGHT" and moves[(0, 2)] == "UP" and moves[(4, 3)] == "RIGHT"
    assert graph.step(corridor, (0, 0), "UP") == (0, 0)  # blocked


def test_from_seed_matches_procgen_facts() -> None:
    for seed in range(30):
        m = Maze.from_seed(seed)
        assert m.size % 2 == 1 and 3 <= m.size <= 25
        assert m.mouse == (0, 0) and m.cheese is not None
        # Kruskal on even squares: both-even open, both-odd walls, the open squares form a tree.
        for r in range(m.size):
            for c in range(m.size):
                if r % 2 == 0 and c % 2 == 0:
                    assert m.is_open((r, c))
                if r % 2 == 1 and c % 2 == 1:
                    assert not m.is_open((r, c))
        opens = m.open_cells()
        edges = sum(len(graph.neighbours(m, sq)) for sq in opens) // 2
        assert edges == len(opens) - 1
        assert len(graph.distances_from(m, (0, 0))) == len(opens)
