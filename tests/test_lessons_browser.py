"""The lesson player in a real browser: every step of the built-in lesson opened by its link
(``?lesson=shards&step=K``) shows its caption, its figures and the library's numbers; the answer
is revealed on a click; next and reset work. One server and one headless Chromium for the module
(Playwright with Debian's ``chromium``); waits for page elements, never for fixed times.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest

from mazewb import load_policy
from mazewb.lessons import load_lesson, render_step

playwright_api = pytest.importorskip("playwright.sync_api")

from browser import checked_page, launched, needs_chromium, served  # noqa: E402

TIMEOUT_MS = 90_000
LESSON = "shards"

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server():  # noqa: ANN201
    """The app on a free port in a background thread, on the bundled agent (the lesson's)."""
    from mazewb.app.server import create_app

    with served(create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    with launched() as b:
        yield b


@pytest.fixture(scope="module")
def page(browser):  # noqa: ANN001, ANN201
    with checked_page(browser, TIMEOUT_MS) as pg:
        playwright_api.expect.set_options(timeout=TIMEOUT_MS)
        yield pg


def _plain(markdown: str) -> str:
    """Markdown as the browser shows it: no emphasis marks, whitespace collapsed."""
    text = re.sub(r"\*\*(.+?)\*\*", r"\1", markdown)
    text = re.sub(r"(?<![\w*])\*(\S[^*]*?)\*(?!\w)", r"\1", text)
    return " ".join(text.replace("`", "").split())


def _shown(pg, selector: str) -> str:  # noqa: ANN001
    return " ".join(pg.locator(selector).inner_text().split())


def _open(pg, server: str, query: str, k: int, steps: int) -> None:  # noqa: ANN001
    pg.goto(server + "/" + query)
    playwright_api.expect(pg.locator("#lesson-head")).to_have_text(re.compile(rf"^Step {k} of {steps}: "))


def test_every_step_shows_its_caption_figures_and_the_library_numbers(page, server) -> None:  # noqa: ANN001
    lesson = load_lesson(LESSON)
    policy = load_policy()
    n = len(lesson.steps)
    for k in range(1, n + 1):
        view = render_step(lesson, k, policy, figures=False)  # the library's numbers, computed here
        _open(page, server, f"?lesson={LESSON}&step={k}", k, n)
        playwright_api.expect(page.locator("#lesson-head")).to_have_text(f"Step {k} of {n}: {view.title}")
        caption = _shown(page, "#lesson-caption")
        assert caption == _plain(view.caption), f"step {k}: caption differs"
        step = lesson.steps[k - 1]
        used = [name for name in view.numbers if "{" + name + "}" in step.caption]
        for name in used:
            assert view.numbers[name] in caption, f"step {k}: {{{name}}} = {view.numbers[name]} not shown"
        assert _shown(page, "#lesson-notice") == _plain(view.notice)
        expected_figures = len(render_step(lesson, k, policy, figures=True).figures) if k == n else None
        plots = page.locator("#lesson-figures .js-plotly-plot")
        if expected_figures == 0:
            assert plots.count() == 0  # the zoo step without a zoo: no figure, and its text says why
        else:
            page.wait_for_function(
                """() => { const gs = document.querySelectorAll('#lesson-figures .js-plotly-plot');
                           return gs.length > 0 && [...gs].every(g => g.data && g.data.length > 0); }"""
            )
        query = parse_qs(urlparse(page.url).query)
        assert query["lesson"] == [LESSON] and query["step"] == [str(k)]
        # the step set the live view: the address holds the step's own view
        for key, values in parse_qs(view.query.lstrip("?")).items():
            if key != "tab":
                assert query.get(key) == values, f"step {k}: {key}"


def test_reveal_next_and_reset(page, server) -> None:  # noqa: ANN001
    lesson = load_lesson("lab-demo")
    n = len(lesson.steps)
    policy = load_policy()
    first = render_step(lesson, 1, policy, figures=False)
    # the picker: choose a lesson, press Start
    page.goto(server + "/?tab=lesson")
    page.click("#lesson-picker")
    page.get_by_role("option", name=lesson.title).click()
    page.click("#lesson-start")
    playwright_api.expect(page.locator("#lesson-head")).to_have_text(f"Step 1 of {n}: {first.title}")
    page.wait_for_url(re.compile(r"lesson=lab-demo"))
    answer = page.locator("#lesson-answer")
    playwright_api.expect(answer).to_be_hidden()
    page.click("#lesson-reveal")
    playwright_api.expect(answer).to_be_visible()
    assert _shown(page, "#lesson-answer") == _plain(first.answer)
    page.click("#lesson-next")
    playwright_api.expect(page.locator("#lesson-head")).to_have_text(re.compile(rf"^Step 2 of {n}: "))
    playwright_api.expect(answer).to_be_hidden()  # a new step starts with its answer hidden
    page.wait_for_url(re.compile(r"lesson=lab-demo.*step=2|step=2.*lesson=lab-demo"))
    second = render_step(lesson, 2, policy, figures=False)
    step_seed = parse_qs(second.query.lstrip("?"))["seed"][0]
    # the student changes the view: the step says so; reset brings the step's view back
    seed_box = page.locator("#seed")
    seed_box.fill("7")
    seed_box.press("Enter")
    page.wait_for_url(re.compile(r"seed=7"))
    playwright_api.expect(page.locator("#lesson-changed")).to_contain_text("You have changed the view")
    playwright_api.expect(page.locator("#lesson-head")).to_have_text(re.compile(rf"^Step 2 of {n}: "))
    page.click("#lesson-reset")
    page.wait_for_url(re.compile(rf"seed={step_seed}(&|$)"))
    playwright_api.expect(page.locator("#lesson-changed")).to_have_text("")
    playwright_api.expect(seed_box).to_have_value(step_seed)
