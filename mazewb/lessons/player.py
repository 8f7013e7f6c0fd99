"""The lesson player as a pure model: where the student is (lesson, step, their own view, whether
the answer is shown), how the URL says it, what prev / next / reset / reveal do, and what the
page shows. No browser, no Dash: the app's lesson panel only draws a ``PlayerPage``.

The URL names the lesson and the step: ``?lesson=shards&step=3`` opens step 3 as its author
set it up. When the student changes the view (moves the cheese, switches tab, ...), their view
follows as the app's own view parameters: ``?lesson=shards&step=3&seed=95&cheese=4,4``; the
step's text stays (its numbers are those of the step's own view), and "reset this step" drops
the student's view again. The answer is not in the URL, so a projected link never gives it away.

    from mazewb.lessons.player import LessonPlayer, next_step
    player = LessonPlayer(lesson_library(), policy)
    where = player.locate("?lesson=shards&step=3")   # validated: unknown lesson, bad step
    page = player.page(where)                       # caption, numbers, view state, links
    page = player.page(next_step(where, page.steps))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from mazewb import analysis as an
from mazewb.analysis.cache import LRU
from mazewb.app.state import ViewState, from_query, to_query
from mazewb.errors import MazewbError, user_message
from mazewb.lessons.format import Lesson, LessonError
from mazewb.lessons.library import LessonLibrary
from mazewb.lessons.numbers import RANK_SEEDS, zoo_fingerprint
from mazewb.lessons.render import StepView, render_step, resolve_state
from mazewb.policy import ImpalaPolicy

LESSON_KEY = "lesson"
STEP_KEY = "step"
MAX_QUERY = 20_000


@dataclass(frozen=True)
class Position:
    """Where the student is. ``step`` is 1-based (as in the URL). ``view``: the student's own
    view as the app's URL query (``"?seed=..."``) when they changed it, ``""`` while the step's
    own view is shown. ``revealed``: the answer is shown."""

    lesson: str
    step: int = 1
    view: str = ""
    revealed: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.view)


def split_query(search: str | None) -> tuple[str | None, str | None, str]:
    """``(lesson, step, rest)`` of a URL query: the ``lesson`` and ``step`` values (None when
    absent) and the other parameters, in their order, as a query (``"?..."`` or ``""``)."""
    text = (search or "").lstrip("?")
    if len(text) > MAX_QUERY:
        raise LessonError("the link's query string is too long")
    lesson: str | None = None
    step: str | None = None
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key == LESSON_KEY:
            lesson = value
        elif key == STEP_KEY:
            step = value
        else:
            rest.append((key, value))
    return lesson, step, ("?" + urlencode(rest, safe=",_:/") if rest else "")


def parse_step(text: str | int | None, steps: int) -> tuple[int, str]:
    """The step a URL value names, clamped to ``1..steps``, and a notice when it was clamped;
    ``LessonError`` when it is not a whole number."""
    if text is None or text == "":
        return 1, ""
    try:
        k = int(str(text).strip()[:12])
    except ValueError:
        raise LessonError(f"step must be a whole number from 1 to {steps}, got {str(text)[:20]!r}") from None
    if 1 <= k <= steps:
        return k, ""
    clamped = min(max(k, 1), steps)
    return clamped, f"This lesson has steps 1 to {steps}; showing step {clamped} instead of {k}."


def position_query(where: Position) -> str:
    """The URL query of a position: ``?lesson=NAME&step=K`` then the student's view, if any.
    A changed view equal to the app's default view is written ``seed=0`` so that it is not
    mistaken for the step's own."""
    head = urlencode([(LESSON_KEY, where.lesson), (STEP_KEY, str(where.step))])
    if not where.view:
        return "?" + head
    view = where.view.lstrip("?") or "seed=0"
    return f"?{head}&{view}"


# --- moves: pure functions of a position -----------------------------------------------------------


def go_to(where: Position, k: int, steps: int) -> Position:
    """Step ``k`` (clamped to ``1..steps``) as its author set it up, answer hidden."""
    return Position(where.lesson, min(max(int(k), 1), steps))


def next_step(where: Position, steps: int) -> Position:
    return go_to(where, where.step + 1, steps)


def prev_step(where: Position, steps: int) -> Position:
    return go_to(where, where.step - 1, steps)


def reset_step(where: Position) -> Position:
    """This step again as its author set it up: the step's view, the answer hidden."""
    return Position(where.lesson, where.step)


def reveal_answer(where: Position, shown: bool = True) -> Position:
    return replace(where, revealed=shown)


def with_view(where: Position, state: ViewState, step_state: ViewState) -> Position:
    """The position after the student set the view to ``state`` (``step_state``: the step's
    own view): back to "unchanged" when it equals the step's view again."""
    return replace(where, view="" if state == step_state else to_query(state) or "?seed=0")


# --- the page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayerPage:
    """What the lesson panel shows at a position."""

    position: Position
    step: StepView  # the step with its live numbers (of the step's own view)
    state: ViewState  # the view to show: the student's when changed, else the step's
    notice: str  # e.g. the step number was out of range and was clamped; '' normally
    lessons: tuple[tuple[str, str], ...]  # (name, title) of every lesson, for a picker

    @property
    def steps(self) -> int:
        return self.step.steps

    @property
    def has_prev(self) -> bool:
        return self.position.step > 1

    @property
    def has_next(self) -> bool:
        return self.position.step < self.step.steps

    @property
    def changed(self) -> bool:
        return self.position.changed

    @property
    def answer(self) -> str:
        """The answer when revealed, else ''."""
        return self.step.answer if self.position.revealed else ""

    @property
    def query(self) -> str:
        return position_query(self.position)

    @property
    def step_query(self) -> str:
        """The link to this step as its author set it up (for a teacher to project)."""
        return position_query(reset_step(self.position))


class _Views:
    """Rendered steps per (weights, lesson, step, ranking levels, zoo, figures): a step is a pure
    function of those, and rendering one (a channel ranking, a steering grid, the zoo's common
    test) is the costly part of a lesson. Shared by all sessions; a ``StepView`` is frozen and its
    figures must not be mutated."""

    def __init__(self, size: int = 64) -> None:
        self._views: LRU[tuple, StepView] = LRU(size)

    def get(self, key: tuple, make: Callable[[], StepView]) -> StepView:
        view = self._views.get(key)
        if view is None:
            view = make()
            self._views.put(key, view)
        return view


VIEWS = _Views()


class LessonPlayer:
    """Lessons of ``library`` played on ``policy``."""

    def __init__(
        self,
        library: LessonLibrary,
        policy: ImpalaPolicy,
        *,
        rank_seeds: Sequence[int] = RANK_SEEDS,
        zoo: Path | None = None,
    ) -> None:
        self.library = library
        self.policy = policy
        self.rank_seeds = tuple(rank_seeds)
        self.zoo = zoo
        self._identity: str | None = None

    def lesson(self, name: str) -> Lesson:
        return self.library.get(name)

    def locate(self, search: str | None) -> tuple[Position, str] | None:
        """The position a URL query names and a notice (a clamped step), or None when it names
        no lesson. ``LessonError`` (one line) for an unknown lesson, a step that is not a whole
        number, or a student view the app cannot show."""
        name, step_text, rest = split_query(search)
        if name is None:
            return None
        lesson = self.library.get(name)
        k, notice = parse_step(step_text, len(lesson.steps))
        if rest:
            try:
                from_query(rest)
            except MazewbError as exc:
                raise LessonError(f"{lesson.name}, step {k}: {user_message(exc)}") from None
        return Position(lesson.name, k, rest), notice

    def step_state(self, name: str, k: int) -> ViewState:
        """The view step ``k`` of lesson ``name`` sets (live channels filled in), without
        rendering the step: what a player switches to on prev / next / reset."""
        lesson = self.lesson(name)
        k, _ = parse_step(k, len(lesson.steps))
        try:
            return resolve_state(lesson.steps[k - 1], self.policy, self.rank_seeds)
        except MazewbError as exc:
            raise LessonError(f"{lesson.name}, step {k}: {user_message(exc)}") from None

    def step_view(self, name: str, k: int, figures: bool = True) -> StepView:
        """Step ``k`` of lesson ``name`` rendered for this policy (cached)."""
        lesson = self.lesson(name)
        if self._identity is None:
            self._identity = an.policy_identity(self.policy)
        key = (self._identity, lesson, k, self.rank_seeds, zoo_fingerprint(self.zoo), figures)
        return VIEWS.get(
            key,
            lambda: render_step(lesson, k, self.policy, rank_seeds=self.rank_seeds, zoo=self.zoo, figures=figures),
        )

    def page(self, where: Position, notice: str = "", figures: bool = True) -> PlayerPage:
        """The page at ``where`` (its step clamped into range)."""
        lesson = self.lesson(where.lesson)
        k, clamp = parse_step(where.step, len(lesson.steps))
        where = replace(where, step=k)
        view = self.step_view(lesson.name, k, figures)
        state = from_query(where.view) if where.view else view.state
        lessons = tuple((x.name, x.title) for x in self.library.lessons.values())
        return PlayerPage(where, view, state, notice or clamp, lessons)

    def open(self, search: str | None, figures: bool = True) -> PlayerPage | None:
        """``locate`` then ``page``: the page a URL opens, None when it names no lesson."""
        found = self.locate(search)
        if found is None:
            return None
        return self.page(*found, figures=figures)
