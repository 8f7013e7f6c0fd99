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


# --- lesson folders (serve --lessons DIR) -------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "lessons.md"


def _docs_example() -> str:
    text = DOCS.read_text()
    block = text.split("<!-- example:begin -->", 1)[1].split("<!-- example:end -->", 1)[0]
    return block.split("```markdown\n", 1)[1].rsplit("```", 1)[0]


def test_lesson_folder_adds_lessons_and_refuses_clashes(tmp_path: Path) -> None:
    from mazewb.lessons.library import lesson_library

    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "corner-pull.md").write_text(_docs_example())
    library = lesson_library([folder])
    assert library.names()[: len(builtin_names())] == builtin_names()  # built-ins first
    assert library.get("corner-pull").title == "The corner pull in two steps"
    assert library.origins["corner-pull"] == str(folder / "corner-pull.md")
    with pytest.raises(LessonError, match="no lesson called 'nope'; this server has: lab-demo, shards, corner-pull"):
        library.get("nope")
    # the same name in a second folder, or a built-in name: refused, naming both
    other = tmp_path / "other"
    other.mkdir()
    (other / "corner-pull.md").write_text(_docs_example())
    with pytest.raises(
        LessonError, match=r"other/corner-pull\.md: the name 'corner-pull' is already taken by the lesson"
    ):
        lesson_library([folder, other])
    (other / "corner-pull.md").rename(other / "shards.md")
    with pytest.raises(LessonError, match=r"shards\.md: the name 'shards' is already taken by a built-in lesson"):
        lesson_library([other])
    # an invalid file: its first problem, with file and line, on one line
    (other / "shards.md").unlink()
    (other / "broken.md").write_text(
        "title: Broken\n\n# One\nstate: seed=95\n\nSee {p_chese}.\n\n## Look for\nx\n## Question\ny\n## Answer\nz\n"
    )
    with pytest.raises(LessonError) as err:
        lesson_library([other])
    message = str(err.value)
    assert "broken.md:3: step 1 (One): caption: unknown placeholder {p_chese} (did you mean {p_cheese}?)" in message
    assert "\n" not in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LessonError, match="no lesson files"):
        lesson_library([empty])
    with pytest.raises(LessonError, match="not a folder of lessons"):
        lesson_library([tmp_path / "missing"])


def test_lesson_list_with_a_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "corner-pull.md").write_text(_docs_example())
    assert main(["lesson", "list", "--json", "--lessons", str(tmp_path)]) == 0
    listed = {entry["name"]: entry["steps"] for entry in json.loads(capsys.readouterr().out)["lessons"]}
    assert listed["corner-pull"] == 2 and "shards" in listed


# --- docs/lessons.md cannot drift from the code ---------------------------------------------------------


def test_docs_list_every_placeholder_key_and_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mazewb.lessons.format import LESSON_KEYS, STEP_KEYS
    from mazewb.lessons.numbers import PLACEHOLDERS, placeholder_table
    from mazewb.lessons.render import FIGURES

    text = DOCS.read_text()
    table = text.split("<!-- placeholders:begin -->\n", 1)[1].split("<!-- placeholders:end -->", 1)[0]
    assert table == placeholder_table(), "regenerate with: mazewb lesson placeholders --markdown"
    for name in PLACEHOLDERS:
        assert f"| `{{{name}}}` |" in table
    for key in (*LESSON_KEYS, *STEP_KEYS):
        assert f"| `{key}` |" in text, key
    for kind in FIGURES:
        assert f"| `{kind}` |" in text, kind
    for command in ("list", "validate", "export", "placeholders"):
        assert f"`mazewb lesson {command}" in text
    assert "`mazewb serve --lessons DIR`" in text
    assert main(["lesson", "placeholders", "--markdown"]) == 0
    assert capsys.readouterr().out == placeholder_table()
    example = tmp_path / "example.md"
    example.write_text(_docs_example())
    assert check_file(example) == []


# --- where shards come from: the zoo ---------------------------------------------------------------------

_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"
ZOO_AGENT = _CHECKPOINTS / "zoo" / "region1.pt"
"""The zoo's region-1 agent."""


def test_zoo_step_says_so_without_a_zoo(tmp_path: Path) -> None:
    lesson = load_lesson("shards")
    k = next(i for i, s in enumerate(lesson.steps, 1) if s.title == "Where shards come from")
    view = render_step(lesson, k, load_policy(), zoo=tmp_path / "no-zoo")
    assert view.expected is False
    assert view.notice.startswith("No agents trained on other cheese regions are installed")
    assert view.figures == ()  # nothing to draw, and the text says why
    assert view.numbers["zoo_regions"] == "1"


def test_zoo_step_numbers_are_the_common_test(tmp_path: Path) -> None:
    import shutil

    from mazewb.lessons.numbers import COMMON_REGION, ZOO_SEEDS
    from mazewb.train.evaluate import MazeProbs, maze_rows, off_distribution_mazes

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    shutil.copy(ZOO_AGENT, zoo / "region1.pt")
    policy = load_policy()
    lesson = load_lesson("shards")
    k = next(i for i, s in enumerate(lesson.steps, 1) if s.title == "Where shards come from")
    view = render_step(lesson, k, policy, zoo=zoo)
    mazes = off_distribution_mazes(list(ZOO_SEEDS), COMMON_REGION)
    assert [m.seed for m in mazes] == list(ZOO_SEEDS)  # every level of the test qualifies
    probs = MazeProbs(mazes)
    region1 = load_policy(zoo / "region1.pt")
    p_small = maze_rows(probs, probs.probs(region1), True)["p_top_right"].mean()
    p_large = maze_rows(probs, probs.probs(policy), True)["p_top_right"].mean()
    assert view.numbers["zoo_regions"] == "2" and "region1.pt (region 1)" in view.numbers["zoo_agents"]
    assert view.numbers["zoo_p_top_right_smallest_region"] == f"{p_small:.3f}"
    assert view.numbers["zoo_p_top_right_largest_region"] == f"{p_large:.3f}"
    assert view.expected is bool(round(p_small, 3) > round(p_large, 3))
    assert [f.kind for f in view.figures] == ["zoo"]
    assert list(view.figures[0].figure.data[0].x) == [1, 5]
