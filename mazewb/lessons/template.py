"""Placeholders in lesson text (``{p_cheese}``; ``{{`` and ``}}`` for literal braces) and
expectations (``p_cheese_move_at_ds_steered < p_cheese_move_at_ds and p_cheese > 0.5``)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from mazewb.lessons.format import Step
from mazewb.lessons.numbers import NUMERIC, PLACEHOLDERS, Placeholder

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)$")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_COMPARISON = re.compile(r"^\s*(\S+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


COMPARE = "compare."


def lookup(name: str) -> Placeholder | None:
    """The placeholder ``name`` stands for: ``compare.NAME`` is NAME on the step's compare state."""
    return PLACEHOLDERS.get(name.removeprefix(COMPARE))


def placeholders_in(text: str) -> tuple[list[str], list[str]]:
    """The placeholder names ``text`` uses, and its problems (unknown names, stray braces)."""
    names: list[str] = []
    problems: list[str] = []
    for m in _TOKEN.finditer(text):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        if m.group(1) is None:
            problems.append(f"a stray {token!r} (write {token * 2} for a literal brace)")
            continue
        name = m.group(1).strip()
        if lookup(name) is None:
            problems.append(f"unknown placeholder {{{name}}}" + _suggest(name))
        else:
            names.append(name)
    return names, problems


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{name}`` replaced by ``values[name]`` and ``{{``/``}}`` by braces."""

    def sub(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        return values[m.group(1).strip()]

    return _TOKEN.sub(sub, text)


def _suggest(name: str) -> str:
    import difflib

    prefix = COMPARE if name.startswith(COMPARE) else ""
    close = difflib.get_close_matches(name.removeprefix(COMPARE), list(PLACEHOLDERS), n=1)
    return f" (did you mean {{{prefix}{close[0]}}}?)" if close else ""


@dataclass(frozen=True)
class Comparison:
    left: str  # a placeholder name or a number
    op: str
    right: str


def parse_expectation(text: str) -> tuple[list[Comparison], list[str]]:
    """``A OP B [and A OP B ...]`` where A and B are numeric placeholders (without braces) or
    numbers, OP one of < <= > >= == !=; returns the comparisons and the problems."""
    comparisons: list[Comparison] = []
    problems: list[str] = []
    for part in re.split(r"\s+and\s+", text.strip()):
        m = _COMPARISON.match(part)
        if not m:
            problems.append(f"expectation {part!r} is not 'A < B' (operators < <= > >= == !=; join with 'and')")
            continue
        left, op, right = m.group(1), m.group(2), m.group(3)
        for operand in (left, right):
            if _NUMBER.match(operand):
                continue
            p = lookup(operand)
            if p is None:
                problems.append(f"expectation uses unknown number {operand!r}" + _suggest(operand))
            elif p.kind not in NUMERIC:
                problems.append(f"expectation compares {operand!r}, which is {p.kind}, not a number")
        if _NUMBER.match(left) and _NUMBER.match(right):
            problems.append(f"expectation {part!r} compares two constants")
        comparisons.append(Comparison(left, op, right))
    return comparisons, problems


def expectation_names(comparisons: list[Comparison]) -> list[str]:
    return [x for c in comparisons for x in (c.left, c.right) if not _NUMBER.match(x)]


def holds(comparisons: list[Comparison], shown: dict[str, float]) -> bool:
    """Whether every comparison holds, on the numbers as shown (``shown``: name -> value)."""

    def value(x: str) -> float:
        return float(x) if _NUMBER.match(x) else shown[x]

    return all(OPERATORS[c.op](value(c.left), value(c.right)) for c in comparisons)


def step_placeholders(step: Step) -> tuple[list[str], list[Comparison], list[str]]:
    """Every placeholder name ``step`` uses (its texts, then its expectation; each once, known
    ones only), its expectation's comparisons, and its problems, each labelled with where it is
    (``caption: unknown placeholder {p_chese} ...``)."""
    names: list[str] = []
    problems: list[str] = []
    for label, text in step.texts():
        found, text_problems = placeholders_in(text)
        problems += [f"{label}: {p}" for p in text_problems]
        names += found
    comparisons: list[Comparison] = []
    if step.expect:
        comparisons, expect_problems = parse_expectation(step.expect)
        problems += [f"expect: {p}" for p in expect_problems]
        names += [n for n in expectation_names(comparisons) if lookup(n) is not None]
    return list(dict.fromkeys(names)), comparisons, problems
