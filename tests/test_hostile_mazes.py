"""Hostile maze files: whatever the text, ``Maze.from_json`` gives a valid ``Maze`` or a
``MazeError`` whose message is one short line, never another exception (property-based)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mazewb import Maze
from mazewb.errors import MAX_MESSAGE_CHARS, MazeError, user_message
from mazewb.maze.grid import MAX_JSON_BYTES, MAX_JSON_DEPTH

MAX_LIBRARY_MESSAGE = 300
"""The library's own messages are short before the CLI's cut (user_message) even applies."""

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(FAST, max_examples=100)
KEYS = ("format", "size", "rows", "cheese", "mouse", "background", "seed")


@cache
def base_mazes() -> tuple[Maze, ...]:
    """Real procgen levels (13x13 and 25x25) and tiny hand-made ones."""
    tiny = Maze.from_strings(["C.#", ".#.", "M.."])
    corridor = Maze.from_strings(["####C", "####.", "####.", "####.", "M...."])
    return (Maze.from_seed(0), Maze.from_seed(17), tiny, corridor, corridor.without_cheese())


def check(text: str | bytes) -> Maze | None:
    """The property: a valid maze (that round-trips) or a MazeError with a short one-line message."""
    try:
        maze = Maze.from_json(text)
    except MazeError as error:
        message = str(error)
        assert "\n" not in message and "\r" not in message, message
        assert len(message) <= MAX_LIBRARY_MESSAGE, message
        shown = user_message(error)
        assert shown.isprintable() and len(shown) <= MAX_MESSAGE_CHARS + 40
        return None
    assert isinstance(maze, Maze)
    assert Maze.from_json(maze.to_json()) == maze
    assert maze.is_open(maze.mouse) and (maze.cheese is None or maze.is_open(maze.cheese))
    return maze


# ------------------------------------------------------------------ strategies
huge_ints = st.one_of(
    st.integers(-100, 100),
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, -1, -13, 25, 26, 2**31, 2**63, -(2**63), 10**19, 10**20]),
)
scalars = st.one_of(
    st.none(), st.booleans(), huge_ints, st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["#", ".", "C", "mazewb-maze-v1", "\n", "Traceback\n  x"]),
)  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def nested(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


MUTATIONS = ("value", "delete", "unknown", "deep", "square", "on-wall", "row-char", "row-length", "rows-count", "size")


@st.composite
def mutated_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A real maze's ``to_dict()`` with one to four mutations."""
    maze = draw(st.sampled_from(base_mazes()))
    data: dict[str, Any] = json.loads(maze.to_json())
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(MUTATIONS))
        key = draw(st.sampled_from(KEYS))
        if kind == "value":
            data[key] = draw(json_values)
        elif kind == "delete":
            data.pop(key, None)
        elif kind == "unknown":
            data[draw(st.text(min_size=1, max_size=40))] = draw(scalars)
        elif kind == "deep":
            data[key] = nested(data.get(key), draw(st.integers(1, 3 * MAX_JSON_DEPTH)))
        elif kind == "square":
            data[draw(st.sampled_from(["cheese", "mouse"]))] = [draw(huge_ints), draw(huge_ints)]
        elif kind == "on-wall" and isinstance(data.get("rows"), list):
            rows = data["rows"]
            walls = [
                (len(rows) - 1 - i, j)
                for i, r in enumerate(rows) if isinstance(r, str)
                for j, ch in enumerate(r) if ch == "#"
            ]  # fmt: skip
            if walls:
                data[draw(st.sampled_from(["cheese", "mouse"]))] = list(draw(st.sampled_from(walls)))
        elif kind == "row-char" and isinstance(data.get("rows"), list) and data["rows"]:
            i = draw(st.integers(0, len(data["rows"]) - 1))
            row = data["rows"][i]
            if isinstance(row, str) and row:
                j = draw(st.integers(0, len(row) - 1))
                ch = draw(st.sampled_from(["#", ".", "C", "M", " ", "\x00", "é", "\n"]))
                data["rows"][i] = row[:j] + ch + row[j + 1 :]
        elif kind == "row-length" and isinstance(data.get("rows"), list) and data["rows"]:
            i = draw(st.integers(0, len(data["rows"]) - 1))
            if isinstance(data["rows"][i], str):
                data["rows"][i] += "#" * draw(st.integers(0, 30))
        elif kind == "rows-count" and isinstance(data.get("rows"), list):
            data["rows"] = data["rows"][: draw(st.integers(0, len(data["rows"]) + 1))] + draw(
                st.lists(st.just("." * len(data["rows"])), max_size=2)
            )
        elif kind == "size":
            data["size"] = draw(st.one_of(huge_ints, scalars))
    return data


# ------------------------------------------------------------------ properties
@FAST
@given(mutated_dicts())
def test_mutated_maze_json_is_a_maze_or_a_short_maze_error(data: dict[str, Any]) -> None:
    check(json.dumps(data))


@QUICK
@given(st.sampled_from(range(5)), st.data())
def test_mangled_maze_text_is_a_maze_or_a_short_maze_error(which: int, draw: st.DataObject) -> None:
    """Byte-level damage: truncation, flipped bytes, inserted brackets and digits, invalid UTF-8."""
    text = bytearray(base_mazes()[which].to_json().encode())
    for _ in range(draw.draw(st.integers(1, 5))):
        at = draw.draw(st.integers(0, len(text)))
        kind = draw.draw(st.sampled_from(["cut", "flip", "insert"]))
        if kind == "cut":
            del text[at:]
        elif kind == "flip" and at < len(text):
            text[at] = draw.draw(st.integers(0, 255))
        else:
            junk = draw.draw(st.sampled_from([b"[" * 50, b"{", b"9" * 40, b"\xff\xfe", b'"\\', b"NaN", b"-", b"\n"]))
            text[at:at] = junk
    check(bytes(text))


@QUICK
@given(json_values)
def test_any_json_value_is_a_maze_or_a_short_maze_error(value: Any) -> None:
    check(json.dumps(value))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("[" * 100_000 + "]" * 100_000, "over the limit of 65,536 bytes"),
        ("[" * 30_000 + "]" * 30_000, "nested 30,000 levels deep"),
        ('{"size": ' + "9" * 5000 + "}", "integer of 5,000 digits"),
        ('{"size": -' + "9" * 5000 + "}", "integer of 5,001 digits"),
        ('"' + "\\\\" * 20 + '["]', None),  # escaped backslashes before a quote: brackets in a string
    ],
)
def test_bounds_before_parsing(text: str, pattern: str | None) -> None:
    with pytest.raises(MazeError, match=pattern):
        Maze.from_json(text)


def test_the_issues_mazes() -> None:
    base = json.loads(base_mazes()[0].to_json())
    with pytest.raises(MazeError, match="'size' must be an integer from 1 to 25, got -13"):
        Maze.from_json(json.dumps({**base, "size": -13}))
    with pytest.raises(MazeError) as info:
        Maze.from_json(json.dumps({**base, "evil\nTraceback (most recent call last):": 1}))
    assert "\n" not in str(info.value) and "evil\\nTraceback" in str(info.value)
    many = json.dumps({**base, **{f"k{i}": 0 for i in range(5000)}})
    assert len(many) < MAX_JSON_BYTES
    with pytest.raises(MazeError, match=r"unknown keys: .* and 4995 more") as info:
        Maze.from_json(many)
    assert len(str(info.value)) < 200
    with pytest.raises(MazeError, match="cannot be placed on a wall"):
        Maze.from_json(json.dumps({**base, "cheese": [1, 1]}))  # procgen's odd squares are walls


def test_maze_files_are_read_bounded(tmp_path) -> None:  # noqa: ANN001
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_JSON_BYTES + 1))
    with pytest.raises(MazeError, match="over the limit"):
        Maze.from_file(big)
    with pytest.raises(MazeError, match="cannot read maze file"):
        Maze.from_file(tmp_path / "missing.json")
    with pytest.raises(MazeError, match="cannot read maze file"):
        Maze.from_file(tmp_path)
    assert Maze.from_file(_write(tmp_path / "ok.json", base_mazes()[2].to_json())) == base_mazes()[2]


def _write(path, text: str):  # noqa: ANN001, ANN202
    path.write_text(text)
    return path
