"""The one family of user errors.

Every problem with what a user gave mazewb (a maze, a checkpoint, an intervention, a view state,
a setting, an analysis that does not apply) raises a subclass of :class:`MazewbError` whose message names the
problem. The CLI and the app catch exactly this family and show :func:`user_message`; anything
else is a bug: the CLI shows its traceback, the app logs it and shows an internal error.

The family subclasses ``ValueError`` so that ``except ValueError`` in user code keeps working;
mazewb's own front ends never catch plain ``ValueError`` as a user error.
"""

from __future__ import annotations

MAX_MESSAGE_CHARS = 500
"""Longest message shown to a user; longer ones are cut (with a note of how much was cut)."""


class MazewbError(ValueError):
    """Base of every user error: bad input, named in the message."""


class MazeError(MazewbError):
    """An illegal maze, edit or maze JSON (cheese on a wall, square outside the maze, ...)."""


class StateFormatError(MazewbError):
    """Bytes that are not a procgen 0.10.7 maze state."""


class CheckpointError(MazewbError):
    """A file or upload that is not a loadable policy checkpoint; the message says why."""


class InterventionError(MazewbError):
    """An ill-formed intervention, or one that does not fit the hook point it names."""


class StateError(MazewbError):
    """A view-state value (URL parameter, store, control, click) that does not make sense; the
    message names the field."""


class ConfigError(MazewbError):
    """A setting that does not make sense: a command-line option, a training configuration, a
    resumed run's saved state."""


class AnalysisError(MazewbError):
    """An analysis asked of a maze or policy it does not apply to (no decision square, ...)."""


def user_message(error: BaseException, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``error``'s message as one line of at most ``limit`` characters: newlines and other control
    characters escaped, so a crafted value cannot fake extra lines (a "Traceback", say)."""
    text = str(error)
    # Escape control characters (newline, carriage return, escape sequences) visibly.
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    if len(text) > limit:
        cut = len(text) - limit
        text = text[:limit] + f"... ({cut} more characters)"
    return text
