"""``mazewb lesson list | validate | export``: the built-in lessons, checking a lesson file, and
writing a lesson's handout (every number computed live from the loaded agent)."""

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
    va = sub.add_parser("validate", help="check a lesson file: one line per problem, exit status 2 if any")
    va.add_argument("file", type=Path)
    ex = sub.add_parser("export", help="write a self-contained HTML handout of a lesson")
    ex.add_argument("lesson", help="a built-in lesson's name or a lesson file")
    ex.add_argument("--html", type=Path, required=True, metavar="OUT", help="the HTML file to write")
    ex.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")


@command("lesson", "list, validate and export lessons (step-by-step tours with live numbers)")(_args)
def lesson(args: argparse.Namespace) -> int:
    from mazewb import lessons

    if args.lesson_command == "list":
        items = [{"name": x.name, "title": x.title, "steps": len(x.steps)} for x in lessons.builtin_lessons()]
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
