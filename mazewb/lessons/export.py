"""The handout: a lesson as one self-contained HTML page (captions with their live numbers, each
step's figures as embedded plotly figures, plotly.js inlined), for students to read after class.
It needs no network: nothing is fetched when the page opens."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import plotly.io as pio
from plotly.offline import get_plotlyjs

from mazewb.lessons.format import Lesson
from mazewb.lessons.numbers import RANK_SEEDS, agent_file_name
from mazewb.lessons.render import StepView, render_step
from mazewb.policy import ImpalaPolicy

_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"\*([^*]+)\*"), r"<em>\1</em>"),
]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
section.step { border-top: 1px solid #ccc; padding-top: 1rem; margin-top: 2rem; }
.notice { border-left: 4px solid #888; padding: 0.3rem 0.8rem; background: #f6f6f6; }
.notice.unexpected { border-color: #d62728; background: #fdf0f0; }
details { margin: 0.5rem 0; } summary { cursor: pointer; font-weight: 600; }
code { background: #f2f2f2; padding: 0 0.2rem; }
"""


def markdown_html(text: str) -> str:
    """The small Markdown subset lesson text uses: paragraphs, ``- `` lists, `code`, **bold**,
    *italics*. Everything else is escaped, so a lesson cannot inject markup into the handout."""
    blocks = [b for b in re.split(r"\n\s*\n", text.strip()) if b.strip()]
    out = []
    for block in blocks:
        lines = [line.strip() for line in block.split("\n")]
        if all(line.startswith(("- ", "* ")) for line in lines):
            items = "".join(f"<li>{_inline(line[2:])}</li>" for line in lines)
            out.append(f"<ul>{items}</ul>")
        else:
            out.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(out)


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text


def _step_html(view: StepView) -> str:
    parts = [f'<section class="step" id="step-{view.k}">', f"<h2>{view.k}. {html.escape(view.title)}</h2>"]
    parts.append(markdown_html(view.caption))
    if view.notice:
        cls = "notice" if view.expected else "notice unexpected"
        parts.append(f'<div class="{cls}">{markdown_html(view.notice)}</div>')
    for fig in view.figures:
        parts.append(pio.to_html(fig.figure, full_html=False, include_plotlyjs=False, default_width="100%"))
    parts.append(f"<h3>Look for</h3>{markdown_html(view.look_for)}")
    parts.append(f"<h3>Question</h3>{markdown_html(view.question)}")
    parts.append(f"<details><summary>Answer</summary>{markdown_html(view.answer)}</details>")
    parts.append(f'<p class="meta">View in the workbench: <code>{html.escape(view.query or "?")}</code></p>')
    parts.append("</section>")
    return "\n".join(parts)


def handout_html(
    lesson: Lesson,
    policy: ImpalaPolicy,
    *,
    rank_seeds: Sequence[int] = RANK_SEEDS,
    progress: Callable[[int, int], None] | None = None,
) -> str:
    """The whole handout as one HTML document, every step rendered now for ``policy``."""
    card = policy.card or {}
    views = []
    for k in range(1, len(lesson.steps) + 1):
        if progress is not None:
            progress(k, len(lesson.steps))
        views.append(render_step(lesson, k, policy, rank_seeds=rank_seeds))
    agent = html.escape(agent_file_name(policy))
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(lesson.title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head><body>'
    )
    intro = [f"<h1>{html.escape(lesson.title)}</h1>"]
    intro.append(
        f'<p class="meta">Every number below was computed from the agent {agent} '
        f"(sha256 {html.escape(str(card.get('sha256', '?'))[:12])}) on {when}.</p>"
    )
    if lesson.summary:
        intro.append(markdown_html(lesson.summary))
    return head + "\n".join(intro) + "\n".join(_step_html(v) for v in views) + "</body></html>\n"
