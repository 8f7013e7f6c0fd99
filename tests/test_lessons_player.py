"""The lesson player's model, without a browser: URLs, validation, prev / next / reset / reveal,
and pages whose numbers are the library's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mazewb import load_policy
from mazewb.app.state import from_query
from mazewb.lessons import LessonError, lesson_library, load_lesson, render_step
from mazewb.lessons.player import (
    LessonPlayer,
    Position,
    go_to,
    next_step,
    parse_step,
    position_query,
    prev_step,
    reset_step,
    reveal_answer,
    split_query,
    with_view,
)


@pytest.fixture(scope="module")
def player() -> LessonPlayer:
    return LessonPlayer(lesson_library(), load_policy())


def test_split_query_keeps_the_view_parameters() -> None:
    assert split_query("?lesson=shards&step=3") == ("shards", "3", "")
    assert split_query("seed=95&lesson=lab-demo&cheese=4,4") == ("lab-demo", None, "?seed=95&cheese=4,4")
    assert split_query("") == (None, None, "")


def test_step_values_are_validated_or_clamped() -> None:
    assert parse_step("3", 9) == (3, "")
    assert parse_step(None, 9) == (1, "")
    k, notice = parse_step("99", 9)
    assert k == 9 and notice == "This lesson has steps 1 to 9; showing step 9 instead of 99."
    assert parse_step("0", 9)[0] == 1 and parse_step("-4", 9)[0] == 1
    with pytest.raises(LessonError, match="step must be a whole number from 1 to 9, got 'two'"):
        parse_step("two", 9)


def test_locate(player: LessonPlayer) -> None:
    assert player.locate("?seed=95") is None  # not a lesson link: the app as usual
    assert player.locate("?lesson=shards&step=3") == (Position("shards", 3), "")
    where, notice = player.locate("?lesson=shards&step=12")
    assert where.step == len(load_lesson("shards").steps) and "showing step 9" in notice
    assert player.locate("?lesson=shards") == (Position("shards", 1), "")
    with pytest.raises(LessonError, match="no lesson called 'shard'; this server has: lab-demo, shards"):
        player.locate("?lesson=shard&step=1")
    with pytest.raises(LessonError, match="shards, step 2: the link has unknown parameter"):
        player.locate("?lesson=shards&step=2&bogus=1")
    with pytest.raises(LessonError, match="seed must be a whole number"):
        player.locate("?lesson=shards&step=2&seed=x")
    where, _ = player.locate("?lesson=shards&step=2&seed=95&cheese=4,4")
    assert where.view == "?seed=95&cheese=4,4" and where.changed


def test_moves_are_pure_and_bounded() -> None:
    at = Position("shards", 3, view="?seed=7", revealed=True)
    assert next_step(at, 9) == Position("shards", 4)  # a new step: its own view, answer hidden
    assert prev_step(at, 9) == Position("shards", 2)
    assert next_step(Position("shards", 9), 9) == Position("shards", 9)
    assert prev_step(Position("shards", 1), 9) == Position("shards", 1)
    assert go_to(at, 50, 9).step == 9
    assert reset_step(at) == Position("shards", 3)
    assert reveal_answer(Position("shards", 3)).revealed
    assert position_query(Position("shards", 3)) == "?lesson=shards&step=3"
    assert position_query(at) == "?lesson=shards&step=3&seed=7"
    step_state = from_query("?seed=95&cheese=6,6")
    moved = replace(step_state, cheese=(4, 4))
    assert with_view(Position("shards", 1), moved, step_state).view == "?seed=95&cheese=4,4"
    assert with_view(Position("shards", 1, "?seed=1"), step_state, step_state).view == ""
    # the app's default view, when it differs from the step's, is still written down
    default = from_query("")
    assert position_query(with_view(Position("shards", 1), default, step_state)) == "?lesson=shards&step=1&seed=0"


def test_page_shows_the_step_with_the_library_numbers(player: LessonPlayer) -> None:
    lesson = load_lesson("lab-demo")
    page = player.open("?lesson=lab-demo&step=1", figures=False)
    assert page is not None and page.position == Position("lab-demo", 1)
    expected = render_step(lesson, 1, player.policy, figures=False)
    assert page.step.caption == expected.caption and page.step.numbers == expected.numbers
    assert page.state == from_query(lesson.steps[0].state) == expected.state
    assert not page.has_prev and page.has_next and page.steps == len(lesson.steps)
    assert page.answer == ""  # hidden until revealed
    assert page.query == page.step_query == "?lesson=lab-demo&step=1"
    assert ("shards", "Shards in a maze agent") in page.lessons
    revealed = player.page(reveal_answer(page.position), figures=False)
    assert revealed.answer == expected.answer and revealed.step is page.step  # rendered once, cached
    # the student moves the cheese: their view is shown, the step's text and numbers stay
    moved = replace(page.state, cheese=(4, 4))
    changed = player.page(with_view(page.position, moved, page.state), figures=False)
    assert changed.state == moved and changed.changed and changed.step.caption == expected.caption
    assert changed.query == "?lesson=lab-demo&step=1&seed=95&cheese=4,4"
    assert changed.step_query == "?lesson=lab-demo&step=1"
    back = player.page(reset_step(changed.position), figures=False)
    assert back.state == page.state and not back.changed


def test_docs_python_example_runs() -> None:
    import re
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "lessons.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), re.S)
    assert blocks
    namespace: dict = {}
    exec(compile(blocks[-1], "docs/lessons.md", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["page"].answer and namespace["later"] == Position("lab-demo", 2)


# --- the app's Lesson tab: its pure handlers (no browser) ----------------------------------------------


class _Services:
    """What the lesson panel asks of the server: the loaded agent, and its lessons."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self._policy = SimpleNamespace(policy=load_policy())
        self.lessons = lesson_library()

    def policy(self, checkpoint: str):  # noqa: ANN201
        assert checkpoint == "default"
        return self._policy


@pytest.fixture(scope="module")
def services() -> _Services:
    return _Services()


def test_lesson_links_open_the_step(services: _Services) -> None:
    from mazewb.app.panel import Outcome
    from mazewb.app.panels import lesson as panel

    def link(query: str) -> Outcome:
        out = panel.on_link(from_query(query), services)
        return out if isinstance(out, Outcome) else Outcome(out)

    step = from_query(load_lesson("lab-demo").steps[1].state)
    out = link("?lesson=lab-demo&step=2")
    assert not out.error and out.state.lesson == "lab-demo" and out.state.lesson_step == 2
    assert out.state.seed == step.seed and out.state.steer == step.steer and out.state.tab == "lesson"
    assert link("?lesson=lab-demo&step=2&tab=lesson").state == out.state
    # the student's own view of a step is kept
    out = link("?lesson=lab-demo&step=2&seed=7")
    assert out.state.seed == 7 and out.state.lesson_step == 2
    # a step beyond the lesson: its last, said in the notice line
    out = link("?lesson=lab-demo&step=40")
    assert out.state.lesson_step == 5 and "showing step 5 instead of 40" in out.message and not out.error
    # an unknown lesson: the view as linked, without the lesson, and one line saying why
    out = link("?lesson=nope&step=1&seed=3")
    assert out.error and "no lesson called 'nope'" in out.message and out.state.lesson == "" and out.state.seed == 3
    from mazewb.errors import StateError

    with pytest.raises(StateError, match="lesson must be a lesson name"):
        from_query("?lesson=Bad%20Name")


def test_lesson_buttons_are_pure_handlers(services: _Services) -> None:
    from mazewb.app.panel import EventContext
    from mazewb.app.panels import lesson as panel

    c = EventContext({}, services)
    start = panel.on_start(from_query(""), 1, EventContext({f"{panel.PICKER}.value": "lab-demo"}, services))
    assert (start.lesson, start.lesson_step, start.tab) == ("lab-demo", 1, "lesson")
    assert panel.on_prev(start, 1, c) == start  # no step before the first
    second = panel.on_next(start, 1, c)
    assert second.lesson_step == 2 and second.seed == from_query(load_lesson("lab-demo").steps[1].state).seed
    moved = replace(second, cheese=(0, 0), tab="steer")
    assert panel.on_reset(moved, 1, c) == second
    assert panel.on_to_tab(second, 1, c).tab == "behaviour"  # the tab step 2 of lab-demo was written for
    from mazewb.errors import MazewbError

    with pytest.raises(MazewbError, match="choose a lesson first"):
        panel.on_start(second, 1, c)
    assert panel.on_leave(second, 1, c).lesson == ""


def test_serve_refuses_an_invalid_lesson_folder(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    from mazewb.cli import main

    (tmp_path / "shards.md").write_text("title: Mine\n")
    assert main(["serve", "--lessons", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "shards.md" in err and "Traceback" not in err
