"""Reading user files and JSON with bounds checked before parsing.

``json.loads`` has no limits: text nested 100,000 deep raises ``RecursionError``, a 5,000-digit
integer raises a plain ``ValueError``, and a large file is read whole. These helpers check the
size in bytes, the nesting depth and the length of every integer first, and raise the caller's
error type (a member of the :mod:`mazewb.errors` family) with a one-line message.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mazewb.errors import MazewbError

_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def read_file_bounded(path: str | Path, max_bytes: int, error: type[MazewbError], what: str) -> bytes:
    """The bytes of the file at ``path``; ``error`` if it cannot be read or holds more than
    ``max_bytes`` (never more than ``max_bytes + 1`` bytes are read)."""
    try:
        with Path(path).open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {str(path)!r}: {exc.strerror or type(exc).__name__}") from None
    if len(data) > max_bytes:
        raise error(f"{what} {str(path)!r} is over the limit of {max_bytes:,} bytes")
    return data


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[`` / ``{`` in JSON text, brackets inside strings not counted.
    Vectorised and linear in the length: no recursion, no backtracking."""
    b = np.frombuffer(data, dtype=np.uint8)
    if b.size == 0:
        return 0
    backslash = b == ord("\\")
    index = np.arange(b.size)
    # Length of the run of backslashes ending at each position: a quote is escaped when the run
    # just before it is odd. (Outside strings a backslash is invalid JSON; the parser stops there.)
    last_other = np.maximum.accumulate(np.where(backslash, -1, index))
    run = index - last_other
    escaped = np.zeros(b.size, dtype=bool)
    escaped[1:] = backslash[:-1] & (run[:-1] % 2 == 1)
    quote = (b == ord('"')) & ~escaped
    inside = (np.cumsum(quote) % 2 == 1) | quote
    steps = np.where(inside, 0, _OPEN[b]).astype(np.int64)
    return int(np.cumsum(steps).max(initial=0))


def loads_bounded(
    text: str | bytes | bytearray,
    *,
    error: type[MazewbError],
    what: str,
    max_bytes: int,
    max_depth: int,
    max_int_digits: int = 20,
) -> Any:
    """``json.loads(text)`` after checking its size, nesting depth and integer lengths; every
    problem (including invalid JSON) raises ``error`` naming ``what``."""
    if isinstance(text, str):
        if len(text) > max_bytes:  # each character is at least one byte
            raise error(f"{what} is over the limit of {max_bytes:,} bytes")
        data = text.encode("utf-8", "surrogatepass")
    elif isinstance(text, (bytes, bytearray)):
        data = bytes(text)
    else:
        raise error(f"{what} must be text, got {type(text).__name__}")
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data):,} bytes, over the limit of {max_bytes:,}")
    depth = json_depth(data)
    if depth > max_depth:
        raise error(f"{what} is nested {depth:,} levels deep, more than the limit of {max_depth}")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_int_digits:
            raise error(f"{what} has an integer of {len(digits):,} digits, more than {max_int_digits}")
        return int(digits)

    try:
        return json.loads(data, parse_int=bounded_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # not reached after the depth check; kept as a backstop
        raise error(f"{what} is nested too deeply") from None
