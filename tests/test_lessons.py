"""Lessons: the built-in ones validate, their numbers are the library's, bad files get clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mazewb import load_policy
from mazewb.analysis import outcomes
from mazewb.app.state import from_query, seed_maze
from mazewb.cli import main
from mazewb.lessons.format import LessonError
from mazewb.lessons.library import builtin_names, check_file, load_lesson
from mazewb.lessons.render import render_step


def test_every_builtin_lesson_validates() -> None:
    assert {"shards", "lab-demo"} <= set(builtin_names())
    for name in builtin_names():
        lesson = load_lesson(name)
        assert len(lesson.steps) >= (8 if name == "shards" else 4)


def test_lesson_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lesson", "list", "--json"]) == 0
    listed = {entry["name"]: entry["steps"] for entry in json.loads(capsys.readouterr().out)["lessons"]}
    assert listed["shards"] == len(load_lesson("shards").steps)


def test_broken_lesson_file_gets_one_line_per_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("title: x\n\n# Step\nstate: seed=abc\n\nHello\n")
    problems = check_file(bad)
    assert any("seed must be a whole number" in p for p in problems)
    assert main(["lesson", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "seed must be a whole number" in err and "Traceback" not in err
    with pytest.raises(LessonError):
        load_lesson(bad)


def test_step_numbers_are_the_library_numbers() -> None:
    policy = load_policy()
    lesson = load_lesson("lab-demo")
    view = render_step(lesson, 1, policy, figures=False)
    state = from_query(view.query)
    maze = seed_maze(state.seed)
    if isinstance(state.cheese, tuple):
        maze = maze.with_cheese(state.cheese)
    expected = f"{outcomes(policy, maze).p_cheese:.3f}"
    assert expected in view.caption
    assert "{" not in view.caption  # every placeholder filled


def test_handout_export(tmp_path: Path) -> None:
    out = tmp_path / "lab.html"
    assert main(["lesson", "export", "lab-demo", "--html", str(out)]) == 0
    html = out.read_text()
    for step in load_lesson("lab-demo").steps:
        assert step.title in html
