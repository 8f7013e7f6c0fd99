"""The one place where squares are converted to world tiles, image pixels and activation cells.

Conventions (see the architecture notes):

- A **square** is ``(row, col)`` in the maze's own ``size x size`` grid; ``(0, 0)`` is the
  bottom-left square (where the mouse starts) and rows grow upwards.
- A **world tile** is ``(wrow, wcol)`` in procgen's 25 x 25 world; the maze is centred in it
  with a wall margin of ``(25 - size) // 2`` tiles; ``wrow = 0`` is the bottom row (procgen's y).
- An **image pixel** ``(prow, pcol)`` runs top-down like any image: world row 24 is image row 0.
  The 64x64 observation has 2.56 pixels per tile, the 512x512 frame 20.48.
- An **activation cell** ``(arow, acol)`` of a layer with an ``R x R`` map also runs top-down;
  a tile's centre falls in cell ``floor(pixel_centre * R / 64)``. The map is many-to-one and not
  aligned with tiles, so a value "at a square" is the value of the cell holding its centre.
"""

from __future__ import annotations

from mazewb.errors import MazeError

WORLD_DIM = 25
OBS_PIXELS = 64
FRAME_PIXELS = 512

Square = tuple[int, int]


def margin(size: int) -> int:
    """Tiles of wall padding left/below a maze of ``size`` squares in the 25x25 world."""
    return (WORLD_DIM - size) // 2


def square_to_world(square: Square, size: int) -> tuple[int, int]:
    """Maze square -> world tile ``(wrow, wcol)``, both counted from the bottom-left."""
    m = margin(size)
    return square[0] + m, square[1] + m


def world_to_square(tile: tuple[int, int], size: int) -> Square:
    """World tile -> maze square (may lie outside the maze for padding tiles)."""
    m = margin(size)
    return tile[0] - m, tile[1] - m


def world_to_pixel_centre(tile: tuple[int, int], pixels: int = OBS_PIXELS) -> tuple[float, float]:
    """Centre of a world tile in image pixel coordinates (rows top-down), as floats."""
    per_tile = pixels / WORLD_DIM
    return (WORLD_DIM - 1 - tile[0] + 0.5) * per_tile, (tile[1] + 0.5) * per_tile


def square_to_pixel_centre(square: Square, size: int, pixels: int = OBS_PIXELS) -> tuple[float, float]:
    """Centre of a maze square in image pixels ``(prow, pcol)``, rows top-down."""
    return world_to_pixel_centre(square_to_world(square, size), pixels)


def square_to_cell(square: Square, size: int, resolution: int) -> tuple[int, int]:
    """The activation cell ``(arow, acol)`` of an ``resolution x resolution`` map holding the
    centre of a maze square (rows top-down, like the image)."""
    prow, pcol = square_to_pixel_centre(square, size, OBS_PIXELS)
    scale = resolution / OBS_PIXELS
    return int(prow * scale), int(pcol * scale)


def cell_to_squares(cell: tuple[int, int], size: int, resolution: int) -> list[Square]:
    """All maze squares whose centres fall in an activation cell (empty for padding-only cells)."""
    return [(r, c) for r in range(size) for c in range(size) if square_to_cell((r, c), size, resolution) == tuple(cell)]


def pixel_to_square(prow: float, pcol: float, size: int, pixels: int) -> Square:
    """An image position (rows top-down, in pixels of a ``pixels``-wide image) -> maze square.

    The result may lie outside the maze (padding); callers check with ``Maze.in_bounds``.
    """
    per_tile = pixels / WORLD_DIM
    wrow = WORLD_DIM - 1 - int(prow // per_tile)
    wcol = int(pcol // per_tile)
    return world_to_square((wrow, wcol), size)


def top_right_region_span(size: int, region: int) -> tuple[int, int]:
    """First and last index (rows and columns alike) of the maze's top-right ``region x region``
    squares, counted as Langosco et al.'s ``rand_region`` (and ``mazewb.env``) places the cheese:
    ``region`` clipped to the maze's size, 0 meaning the top-right square alone."""
    if region < 0:
        raise MazeError(f"the cheese region must be a non-negative number of squares, got {region}")
    n = max(1, min(region, size))
    return size - n, size - 1
