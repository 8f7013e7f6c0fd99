"""Lesson files: Markdown with a small ``key: value`` header per step, parsed into frozen data.

A lesson file looks like this (``docs/lessons.md`` documents every key)::

    title: Shards in a maze agent
    summary: One line saying what the lesson teaches.

    # Off distribution
    state: seed=95&tab=behaviour
    figures: field
    expect: p_top_right_first > 0.1
    confirmed: The corner pulls: it wins {p_top_right_first} of the time.
    otherwise: For this agent the corner barely pulls here ({p_top_right_first}).

    The caption, Markdown, with live numbers such as {p_cheese}.

    ## Look for
    What to look at in the figures.

    ## Question
    A question for the student.

    ## Answer
    Its answer.

Lines before the first ``# `` heading are the lesson's header. Each ``# `` heading starts a step;
the ``key: value`` lines right below it are the step's header, the text up to ``## Look for`` is
its caption. Parsing checks only the shape of the file; ``mazewb.lessons.validate`` checks the
states and placeholders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mazewb.errors import MazewbError

MAX_LESSON_BYTES = 256 * 1024
MAX_STEPS = 60
LESSON_KEYS = ("title", "summary")
STEP_KEYS = ("state", "compare", "figures", "channels", "expect", "confirmed", "otherwise")
SECTIONS = {"look for": "look_for", "question": "question", "answer": "answer"}
_KEY_LINE = re.compile(r"^([a-z_]+)\s*:\s*(.*)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class LessonError(MazewbError):
    """A lesson file that cannot be used: its message names the file, the line and the problem."""


@dataclass(frozen=True)
class Step:
    """One step of a lesson, as written (placeholders not yet filled)."""

    title: str
    state: str  # the view state as a URL query (the app's keys)
    caption: str
    look_for: str
    question: str
    answer: str
    compare: str = ""  # optional second view state; its numbers are {compare.NAME}
    figures: tuple[str, ...] | None = None  # None: the figures of the state's tab
    channels: int = 0  # >0: show live-ranked cheese channels (the top one as `ch`, the top N as `rtch`)
    expect: str = ""  # a condition on live numbers, e.g. "p_cheese_move_at_ds_steered < p_cheese_move_at_ds"
    confirmed: str = ""  # shown when the expectation holds for the loaded agent
    otherwise: str = ""  # shown when it does not
    line: int = 0  # line of the step's heading in its file

    def texts(self) -> tuple[tuple[str, str], ...]:
        """(label, text) of every text that may hold placeholders, in reading order."""
        return (
            ("title", self.title),
            ("caption", self.caption),
            ("look for", self.look_for),
            ("question", self.question),
            ("answer", self.answer),
            ("confirmed", self.confirmed),
            ("otherwise", self.otherwise),
        )


@dataclass(frozen=True)
class Lesson:
    name: str
    title: str
    summary: str
    steps: tuple[Step, ...]
    source: str = ""  # file name, for messages


def lesson_name(path: Path) -> str:
    """The lesson's name: its file name without ``.md``."""
    return path.name[: -len(".md")] if path.name.endswith(".md") else path.stem


def parse_lesson(text: str, name: str, source: str = "") -> tuple[Lesson | None, list[str]]:
    """The lesson in ``text`` and the problems found in its shape (one line each, naming the
    line); the lesson is None when a problem makes it unusable."""
    where = source or name
    problems: list[str] = []
    if len(text.encode("utf-8", "replace")) > MAX_LESSON_BYTES:
        return None, [f"{where}: the file is larger than {MAX_LESSON_BYTES // 1024} KiB"]
    if not _NAME.match(name):
        problems.append(f"{where}: the lesson name {name!r} must be lower-case letters, digits, '-' or '_'")
    lines = text.replace("\r\n", "\n").split("\n")
    header: dict[str, str] = {}
    steps: list[Step] = []
    i = 0
    while i < len(lines) and not lines[i].startswith("# "):
        line = lines[i].strip()
        if line and not line.startswith("<!--"):
            m = _KEY_LINE.match(line)
            if not m or m.group(1) not in LESSON_KEYS:
                problems.append(
                    f"{where}:{i + 1}: before the first '# ' step heading only {', '.join(LESSON_KEYS)} "
                    f"lines may appear, got {line[:60]!r}"
                )
            else:
                header[m.group(1)] = m.group(2).strip()
        i += 1
    if not header.get("title"):
        problems.append(f"{where}:1: the lesson needs a 'title: ...' line before its first step")
    starts = [k for k in range(i, len(lines)) if lines[k].startswith("# ")]
    if not starts:
        problems.append(f"{where}: the lesson has no steps (a step starts with a '# Title' line)")
    if len(starts) > MAX_STEPS:
        problems.append(f"{where}: {len(starts)} steps; at most {MAX_STEPS}")
        starts = starts[:MAX_STEPS]
    for n, begin in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        step = _parse_step(lines, begin, end, where, problems)
        if step is not None:
            steps.append(step)
    if problems and not steps:
        return None, problems
    lesson = Lesson(name, header.get("title", name), header.get("summary", ""), tuple(steps), where)
    return lesson, problems


def _parse_step(lines: list[str], begin: int, end: int, where: str, problems: list[str]) -> Step | None:
    title = lines[begin][2:].strip()
    at = f"{where}:{begin + 1}"
    if not title:
        problems.append(f"{at}: the step heading has no title")
    keys: dict[str, str] = {}
    k = begin + 1
    while k < end and lines[k].strip():
        m = _KEY_LINE.match(lines[k].strip())
        if not m:
            problems.append(
                f"{where}:{k + 1}: expected a 'key: value' line in the step header (end the header with a "
                f"blank line), got {lines[k].strip()[:60]!r}"
            )
        elif m.group(1) not in STEP_KEYS:
            problems.append(f"{where}:{k + 1}: unknown step key {m.group(1)!r}; known: {', '.join(STEP_KEYS)}")
        elif m.group(1) in keys:
            problems.append(f"{where}:{k + 1}: the key {m.group(1)!r} appears twice in this step")
        else:
            keys[m.group(1)] = m.group(2).strip()
        k += 1
    parts: dict[str, list[str]] = {"caption": []}
    current = "caption"
    for j in range(k, end):
        line = lines[j]
        if line.startswith("## "):
            heading = line[3:].strip().lower()
            if heading not in SECTIONS:
                problems.append(
                    f"{where}:{j + 1}: unknown section {line[3:].strip()!r}; a step has "
                    "'## Look for', '## Question' and '## Answer'"
                )
                continue
            current = SECTIONS[heading]
            if current in parts:
                problems.append(f"{where}:{j + 1}: the section {line[3:].strip()!r} appears twice in this step")
            parts[current] = []
            continue
        parts[current].append(line)
    text = {key: "\n".join(value).strip() for key, value in parts.items()}
    for key, label in (("caption", "caption"), ("look_for", "'## Look for'"), ("question", "'## Question'")):
        if not text.get(key):
            problems.append(f"{at}: step {title!r} has no {label} text")
    if not text.get("answer"):
        problems.append(f"{at}: step {title!r} has no '## Answer' text")
    if "state" not in keys:
        problems.append(f"{at}: step {title!r} has no 'state:' line (the view, as a URL query)")
    figures: tuple[str, ...] | None = None
    if "figures" in keys:
        figures = tuple(f.strip() for f in keys["figures"].split(",") if f.strip())
    channels = 0
    if "channels" in keys:
        m = re.fullmatch(r"top(?:\s+(\d+))?", keys["channels"])
        if not m or not 1 <= int(m.group(1) or 1) <= 16:
            problems.append(f"{at}: 'channels:' must be 'top' or 'top N' with N from 1 to 16, got {keys['channels']!r}")
        else:
            channels = int(m.group(1) or 1)
    if keys.get("expect") and not keys.get("otherwise"):
        problems.append(f"{at}: step {title!r} has 'expect:' but no 'otherwise:' text for when it fails")
    if (keys.get("confirmed") or keys.get("otherwise")) and not keys.get("expect"):
        problems.append(f"{at}: step {title!r} has 'confirmed:'/'otherwise:' text but no 'expect:' condition")
    return Step(
        title=title,
        state=keys.get("state", ""),
        compare=keys.get("compare", ""),
        caption=text.get("caption", ""),
        look_for=text.get("look_for", ""),
        question=text.get("question", ""),
        answer=text.get("answer", ""),
        figures=figures,
        channels=channels,
        expect=keys.get("expect", ""),
        confirmed=keys.get("confirmed", ""),
        otherwise=keys.get("otherwise", ""),
        line=begin + 1,
    )
