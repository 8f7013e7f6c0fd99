"""What the page shows when something fails: the user's error in its own words, anything else
as an internal error (its traceback goes to the server log, never to the page).

User errors are exactly the ``mazewb.errors.MazewbError`` family; a plain ``ValueError`` (or any
other exception) is a bug.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from dash import no_update

from mazewb.errors import MazewbError, user_message

log = logging.getLogger("mazewb.app")

INTERNAL = "Internal error: something went wrong on the server (the details are in its log)."


def explain(exc: BaseException) -> str:
    """A one-line message for the page."""
    if isinstance(exc, MazewbError):
        return user_message(exc)
    log.error("internal error in the app", exc_info=exc)
    return INTERNAL


def guarded(n_outputs: int, message_index: int, message_class_index: int | None = None) -> Callable:
    """Wrap a callback so that any exception becomes a message output (others: no_update)."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def inner(*args: Any) -> Any:
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - shown in the page, bugs logged
                out: list[Any] = [no_update] * n_outputs
                out[message_index] = explain(exc)
                if message_class_index is not None:
                    out[message_class_index] = "msg error"
                return tuple(out) if n_outputs > 1 else out[0]

        return inner

    return wrap
