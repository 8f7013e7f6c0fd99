"""Lessons: step-by-step tours of the workbench whose every number is computed live from the
loaded agent.

    from mazewb import load_policy
    from mazewb.lessons import load_lesson, render_step
    lesson = load_lesson("shards")              # a built-in lesson, or a path to a .md file
    view = render_step(lesson, 1, load_policy())  # step 1: caption with live numbers, figures
    print(view.caption, view.query)

Lesson files are Markdown with a small header per step (``docs/lessons.md``). ``render_step``
makes one step live; ``mazewb.lessons.player`` is the player's model (position, URL, prev /
next / reset / reveal) that the app's lesson panel draws.
"""

from mazewb.lessons.format import Lesson, LessonError, Step, parse_lesson
from mazewb.lessons.library import (
    LessonLibrary,
    builtin_lessons,
    builtin_names,
    check_file,
    lesson_library,
    lessons_in,
    load_lesson,
    parse_text,
)
from mazewb.lessons.numbers import (
    PLACEHOLDERS,
    RANK_SEEDS,
    ZOO_SEEDS,
    StepContext,
    format_value,
    placeholder_help,
    placeholder_table,
)
from mazewb.lessons.render import FIGURES, StepFigure, StepView, render_step, resolve_state
from mazewb.lessons.steer import steer_interventions
from mazewb.lessons.validate import lesson_problems

__all__ = [
    "FIGURES",
    "PLACEHOLDERS",
    "RANK_SEEDS",
    "Lesson",
    "LessonError",
    "LessonLibrary",
    "Step",
    "StepContext",
    "StepFigure",
    "StepView",
    "ZOO_SEEDS",
    "builtin_lessons",
    "builtin_names",
    "check_file",
    "format_value",
    "lesson_library",
    "lesson_problems",
    "lessons_in",
    "load_lesson",
    "parse_lesson",
    "parse_text",
    "placeholder_help",
    "placeholder_table",
    "render_step",
    "resolve_state",
    "steer_interventions",
]
