"""``mazewb lesson list | validate | export | placeholders``: the lessons, checking a lesson file,
writing a lesson's handout (every number computed live from the loaded agent), and the numbers a
lesson may use (``docs/lessons.md``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mazewb.cli import command


def _args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="lesson_command", required=True)
    ls = sub.add_parser("list", help="list the built-in lessons (name, title, steps)")
    ls.add_argument("--json", action="store_true", help='print {"lessons": [{"name", "title", "steps"}, ...]}')
    ls.add_argument(
        "--lessons",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="also list the lessons of this folder, as `mazewb serve --lessons DIR` would (repeatable)",
    )
    va = sub.add_parser("validate", help="check a lesson file: one line per problem, exit status 2 if any")
    va.add_argument("file", type=Path)
    ex = sub.add_parser("export", help="write a self-contained HTML handout of a lesson")
    ex.add_argument("lesson", help="a built-in lesson's name or a lesson file")
    ex.add_argument("--html", type=Path, required=True, metavar="OUT", help="the HTML file to write")
    ex.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")
    ph = sub.add_parser("placeholders", help="list every {placeholder} a lesson's text may use")
    ph.add_argument("--markdown", action="store_true", help="as the Markdown table of docs/lessons.md")


@command("lesson", "list, validate and export lessons (step-by-step tours with live numbers)")(_args)
def lesson(args: argparse.Namespace) -> int:
    from mazewb import lessons

    if args.lesson_command == "list":
        found_all = lessons.lesson_library(args.lessons).lessons.values()
        items = [{"name": x.name, "title": x.title, "steps": len(x.steps)} for x in found_all]
        if args.json:
            print(json.dumps({"lessons": items}, indent=2))
        else:
            width = max((len(x["name"]) for x in items), default=4)
            for x in items:
                print(f"{x['name']:<{width}}  {x['steps']:>2} steps  {x['title']}")
        return 0
    if args.lesson_command == "validate":
        problems = lessons.check_file(args.file)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            return 2
        found = lessons.load_lesson(args.file)
        print(f"{args.file}: valid lesson {found.title!r}, {len(found.steps)} steps")
        return 0
    if args.lesson_command == "placeholders":
        if args.markdown:
            print(lessons.placeholder_table(), end="")
        else:
            width = max(len(name) for name, _, _ in lessons.placeholder_help())
            for name, kind, help_text in lessons.placeholder_help():
                print(f"{name:<{width}}  {kind:<8}  {help_text}")
        return 0
    from mazewb import load_policy
    from mazewb.lessons.export import handout_html

    found = lessons.load_lesson(args.lesson)
    policy = load_policy(args.checkpoint)

    def progress(k: int, n: int) -> None:
        print(f"step {k}/{n}: {found.steps[k - 1].title}", file=sys.stderr)

    text = handout_html(found, policy, progress=progress)
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(text, encoding="utf-8")
    print(f"wrote {args.html} ({len(text.encode()) / 1e6:.1f} MB, {len(found.steps)} steps)")
    return 0
