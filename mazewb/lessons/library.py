"""Finding and loading lessons: the built-in ones (package data, ``mazewb/lessons/builtin/*.md``)
and any lesson file or folder a teacher names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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


MAX_FOLDER_LESSONS = 100


def lessons_in(folder: str | Path) -> list[Lesson]:
    """Every ``*.md`` lesson in ``folder`` (not its subfolders), sorted by name; the first invalid
    one raises ``LessonError`` with its first problem (file and line), as does a folder that
    does not exist, holds no lesson file, or holds more than ``MAX_FOLDER_LESSONS``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LessonError(f"{folder}: not a folder of lessons")
    paths = sorted(p for p in folder.glob("*.md") if p.is_file())
    if not paths:
        raise LessonError(f"{folder}: no lesson files (*.md) in this folder")
    if len(paths) > MAX_FOLDER_LESSONS:
        raise LessonError(f"{folder}: {len(paths)} lesson files; at most {MAX_FOLDER_LESSONS} per folder")
    return [_valid(*parse_text(_read(path), lesson_name(path), str(path)), str(path)) for path in paths]


@dataclass(frozen=True)
class LessonLibrary:
    """The lessons a server offers: the built-in ones, then those of the extra folders
    (``mazewb serve --lessons DIR``), by name. Names are unique: a folder lesson named like a
    built-in one, or like one in another folder, is an error, so that ``?lesson=NAME`` means
    the same lesson wherever the name is known (copy a built-in lesson under a new name to
    change it)."""

    lessons: dict[str, Lesson] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # name -> "built-in" or the file's path

    def names(self) -> list[str]:
        return list(self.lessons)

    def get(self, name: str) -> Lesson:
        """The lesson called ``name``; ``LessonError`` listing the known names otherwise."""
        if name not in self.lessons:
            known = ", ".join(self.lessons) or "none"
            raise LessonError(f"no lesson called {str(name)[:64]!r}; this server has: {known}")
        return self.lessons[name]

    def __contains__(self, name: object) -> bool:
        return name in self.lessons

    def __len__(self) -> int:
        return len(self.lessons)


def lesson_library(folders: Sequence[str | Path] = (), *, builtin: bool = True) -> LessonLibrary:
    """The built-in lessons (unless ``builtin=False``) and every lesson of ``folders``; raises
    ``LessonError`` with one clear line for an invalid file or a name used twice."""
    lessons: dict[str, Lesson] = {}
    origins: dict[str, str] = {}
    if builtin:
        for lesson in builtin_lessons():
            lessons[lesson.name] = lesson
            origins[lesson.name] = "built-in"
    for folder in folders:
        for lesson in lessons_in(folder):
            if lesson.name in lessons:
                other = origins[lesson.name]
                what = "a built-in lesson" if other == "built-in" else f"the lesson {other}"
                raise LessonError(
                    f"{lesson.source}: the name {lesson.name!r} is already taken by {what}; "
                    "rename the file (a lesson's name is its file name)"
                )
            lessons[lesson.name] = lesson
            origins[lesson.name] = lesson.source
    return LessonLibrary(lessons, origins)
