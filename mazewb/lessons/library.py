"""Finding and loading lessons: the built-in ones (package data, ``mazewb/lessons/builtin/*.md``)
and any lesson file or folder a teacher names."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from mazewb.lessons.format import MAX_LESSON_BYTES, Lesson, LessonError, lesson_name, parse_lesson
from mazewb.lessons.validate import lesson_problems


def _builtin_files() -> dict[str, str]:
    """name -> text of every built-in lesson."""
    folder = resources.files("mazewb.lessons") / "builtin"
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            out[entry.name[: -len(".md")]] = entry.read_text(encoding="utf-8")
    return out


def builtin_names() -> list[str]:
    return list(_builtin_files())


def parse_text(text: str, name: str, source: str = "") -> tuple[Lesson | None, list[str]]:
    """Parse and validate: the lesson (None if unusable) and every problem found."""
    lesson, problems = parse_lesson(text, name, source)
    if lesson is not None:
        problems = problems + lesson_problems(lesson)
    return lesson, problems


def check_file(path: str | Path) -> list[str]:
    """Every problem of the lesson file at ``path`` (empty: it is valid)."""
    path = Path(path)
    text = _read(path)
    return parse_text(text, lesson_name(path), str(path))[1]


def _read(path: Path) -> str:
    if not path.is_file():
        raise LessonError(f"{path}: no such lesson file")
    if path.stat().st_size > MAX_LESSON_BYTES:
        raise LessonError(f"{path}: the file is larger than {MAX_LESSON_BYTES // 1024} KiB")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LessonError(f"{path}: a lesson file must be UTF-8 text") from None


def _valid(lesson: Lesson | None, problems: list[str], where: str) -> Lesson:
    if problems or lesson is None:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise LessonError((problems[0] if problems else f"{where}: not a lesson") + more)
    return lesson


def load_lesson(name_or_path: str | Path) -> Lesson:
    """A built-in lesson by name, or a lesson file by path; raises ``LessonError`` with the first
    problem when it does not validate."""
    builtin = _builtin_files()
    key = str(name_or_path)
    if key in builtin:
        return _valid(*parse_text(builtin[key], key, f"{key}.md"), key)
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        raise LessonError(f"no built-in lesson {key!r} (built-in: {', '.join(builtin)}) and no such file")
    return _valid(*parse_text(_read(path), lesson_name(path), str(path)), str(path))


def builtin_lessons() -> list[Lesson]:
    return [load_lesson(name) for name in builtin_names()]


def lessons_in(folder: str | Path) -> list[Lesson]:
    """Every ``*.md`` lesson in ``folder`` (for ``serve --lessons DIR``); the first invalid one
    raises ``LessonError``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LessonError(f"{folder}: not a folder of lessons")
    return [load_lesson(path) for path in sorted(folder.glob("*.md"))[:100]]
