"""Browser tests: the real workbench served on 127.0.0.1, driven by headless Chromium (Playwright
with Debian's ``chromium``). Each test waits for page elements, never for fixed times.

Skipped when Playwright or a Chromium binary is missing (``apt-get install chromium``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mazewb import Maze
from mazewb.maze.geometry import FRAME_PIXELS, square_to_pixel_centre

playwright_api = pytest.importorskip("playwright.sync_api")

from browser import checked_page, launched, needs_chromium, served  # noqa: E402

TIMEOUT_MS = 60_000
SEED = 3  # a 5x5 level: fast vector fields (cheese at (2, 2), decision square (0, 2))

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # noqa: ANN001, ANN201
    """The app on a free port in a background thread, with a small random-init agent."""
    from mazewb.app.server import create_app
    from mazewb.policy import make_placeholder_checkpoint

    ckpt = make_placeholder_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", seed=1)
    with served(create_app(str(ckpt))) as url:
        yield url


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    with launched() as b:
        yield b


@pytest.fixture
def page(browser):  # noqa: ANN001, ANN201
    with checked_page(browser, TIMEOUT_MS) as pg:
        yield pg


def figure_data(pg, graph_id: str) -> str:  # noqa: ANN001
    """The plotted traces of a dcc.Graph, as JSON (to compare figures)."""
    return pg.evaluate(
        """(id) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
                     return gd && gd.data ? JSON.stringify(gd.data.map(t => [t.type, t.x, t.y, t.z])) : null; }""",
        graph_id,
    )


def wait_for_figure(pg, graph_id: str, min_traces: int = 2) -> str:  # noqa: ANN001
    """Wait until a graph shows a real figure (not the placeholder); returns its data."""
    pg.wait_for_function(
        """([id, n]) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
                          return gd && gd.data && gd.data.length >= n; }""",
        arg=[graph_id, min_traces],
    )
    return figure_data(pg, graph_id)


def wait_for_change(pg, graph_id: str, before: str) -> str:  # noqa: ANN001
    pg.wait_for_function(
        """([id, before]) => { const gd = document.querySelector('#' + id + ' .js-plotly-plot');
                 return gd && gd.data && JSON.stringify(gd.data.map(t => [t.type, t.x, t.y, t.z])) !== before; }""",
        arg=[graph_id, before],
    )
    return figure_data(pg, graph_id)


def click_square(pg, square: tuple[int, int], size: int) -> None:  # noqa: ANN001
    """Click the centre of a maze square on the maze panel (the 512x512 frame's plot area)."""
    box = pg.locator("#maze-graph .nsewdrag").first.bounding_box()
    prow, pcol = square_to_pixel_centre(square, size, FRAME_PIXELS)
    pg.mouse.click(box["x"] + pcol / FRAME_PIXELS * box["width"], box["y"] + prow / FRAME_PIXELS * box["height"])


def open_app(pg, server: str, query: str = "") -> None:  # noqa: ANN001
    pg.goto(server + "/" + query)
    pg.wait_for_selector("#maze-info b")


def test_load_page_and_change_seed(page, server) -> None:  # noqa: ANN001
    open_app(page, server)
    playwright_api.expect(page.locator("#maze-info")).to_contain_text("seed 0")
    playwright_api.expect(page.locator("#untrained-banner")).to_contain_text("UNTRAINED")
    first = wait_for_figure(page, "vf-graph")
    page.fill("#seed", str(SEED))
    page.press("#seed", "Enter")
    playwright_api.expect(page.locator("#maze-info")).to_contain_text(f"seed {SEED}")
    assert f"seed={SEED}" in page.url
    wait_for_change(page, "vf-graph", first)
    page.click("#seed-next")
    playwright_api.expect(page.locator("#maze-info")).to_contain_text(f"seed {SEED + 1}")


def test_click_moves_cheese_and_vector_field_changes(page, server) -> None:  # noqa: ANN001
    open_app(page, server, f"?seed={SEED}")
    playwright_api.expect(page.locator("#maze-info")).to_contain_text("cheese (2, 2)")
    before = wait_for_figure(page, "vf-graph")
    click_square(page, (4, 4), 5)  # the top-right square of the 5x5 maze
    playwright_api.expect(page.locator("#maze-info")).to_contain_text("cheese (4, 4)")
    assert "cheese=4,4" in page.url
    after = wait_for_change(page, "vf-graph", before)
    assert after != before


def test_cheese_vector_shows_diff(page, server) -> None:  # noqa: ANN001
    open_app(page, server, f"?seed={SEED}&tab=steer")
    wait_for_figure(page, "steer-original")
    page.click("#preset-cheese")
    playwright_api.expect(page.locator("#steer-outcomes")).to_contain_text("patched")
    wait_for_figure(page, "steer-diff", min_traces=3)
    playwright_api.expect(page.locator("#steer-message")).to_contain_text("cheese vector × -1")
    assert "cv=-1" in page.url
    with page.expect_download() as download:  # client-side export of the visible figures
        page.click("#export-svg")
    assert download.value.suggested_filename.endswith(".svg")
    assert "<svg" in Path(download.value.path()).read_text()[:2000]


def test_shared_url_reproduces_the_view(page, server, browser) -> None:  # noqa: ANN001
    open_app(page, server, f"?seed={SEED}")
    before = wait_for_figure(page, "vf-graph")
    page.check("input[value='wall']")
    click_square(page, (1, 0), 5)  # open the wall above the start
    page.wait_for_function("() => window.location.search.includes('walls=1,0')")
    shown = wait_for_change(page, "vf-graph", before)
    info = page.inner_text("#maze-info")
    shared = page.url

    other = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    other.set_default_timeout(TIMEOUT_MS)
    try:
        other.goto(shared)
        other.wait_for_selector("#maze-info b")
        playwright_api.expect(other.locator("#maze-info")).to_have_text(info)
        other.wait_for_function(
            """(want) => { const gd = document.querySelector('#vf-graph .js-plotly-plot');
                     return gd && gd.data && JSON.stringify(gd.data.map(t => [t.type, t.x, t.y, t.z])) === want; }""",
            arg=shown,
        )
        assert other.url == shared
    finally:
        other.context.close()


def test_malformed_maze_json_shows_error(page, server, tmp_path) -> None:  # noqa: ANN001
    open_app(page, server, f"?seed={SEED}")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "mazewb-maze-v1", "size": 3, "rows": ["...", ".#", "..."], "mouse": [0, 0]}))
    page.set_input_files("#import-maze input[type=file]", str(bad))
    playwright_api.expect(page.locator("#notice")).to_contain_text("Could not import bad.json")
    playwright_api.expect(page.locator("#notice")).to_contain_text("rows")
    # the view is unchanged
    playwright_api.expect(page.locator("#maze-info")).to_contain_text(f"seed {SEED}")
    with page.expect_download() as download:
        page.click("#export-maze")
    exported = Maze.from_json(Path(download.value.path()).read_text())
    assert exported.seed == SEED and exported.size == 5
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    page.set_input_files("#import-maze input[type=file]", str(garbage))
    playwright_api.expect(page.locator("#notice")).to_contain_text("not valid JSON")


def test_statistics_run_in_the_background_with_progress_cancel_and_csv(page, server, browser) -> None:  # noqa: ANN001
    open_app(page, server, "?tab=stats&sn=400")
    page.click("#stats-run")
    playwright_api.expect(page.locator("#stats-status")).to_contain_text("qualifying mazes")
    # Another user meanwhile gets their own view, computed while the job runs.
    other = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    other.set_default_timeout(TIMEOUT_MS)
    try:
        open_app(other, server, f"?seed={SEED}")
        wait_for_figure(other, "vf-graph")
        playwright_api.expect(other.locator("#maze-info")).to_contain_text(f"seed {SEED}")
        assert "done" not in page.inner_text("#stats-status")
    finally:
        other.context.close()
    page.click("#stats-cancel")
    playwright_api.expect(page.locator("#stats-status")).to_have_text("cancelled")
    page.fill("#stats-n", "10")
    page.press("#stats-n", "Enter")
    page.wait_for_function("() => window.location.search.includes('sn=10')")
    page.click("#stats-run")
    playwright_api.expect(page.locator("#stats-status")).to_contain_text("done", timeout=120_000)
    playwright_api.expect(page.locator("#stats-table")).to_contain_text("held-out accuracy")
    with page.expect_download() as download:
        page.click("#stats-download-btn")
    text = Path(download.value.path()).read_text()
    assert text.splitlines()[0].startswith("seed,") and len(text.splitlines()) == 11


def test_activations_and_a_bad_checkpoint_upload(page, server, tmp_path) -> None:  # noqa: ANN001
    open_app(page, server, f"?seed={SEED}&tab=activations&ch=5")
    wait_for_figure(page, "act-graph")
    playwright_api.expect(page.locator("#layer-info")).to_contain_text("32 channels of 16x16 cells")
    playwright_api.expect(page.locator("#act-graph")).to_contain_text("channel 5")
    page.click("#attr-run")
    wait_for_figure(page, "attr-graph")
    wait_for_figure(page, "attr-channels-graph", min_traces=1)
    playwright_api.expect(page.locator("#attr-message")).to_contain_text("completeness gap")
    playwright_api.expect(page.locator("#attr-graph")).to_contain_text("attribution to P(")
    before = figure_data(page, "attr-channels-graph")
    page.click("#attr-baseline")  # another baseline: the attribution follows
    page.click("text=zero activations")
    wait_for_change(page, "attr-channels-graph", before)
    page.click("#tabs >> text=Model")
    playwright_api.expect(page.locator("#model-card")).to_contain_text("UNTRAINED")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    page.set_input_files("#ckpt-upload input[type=file]", str(junk))
    playwright_api.expect(page.locator("#notice")).to_contain_text("junk.pt")
    playwright_api.expect(page.locator("#notice")).to_have_class("notice error")


def test_a_server_reachable_from_elsewhere_refuses_checkpoint_paths(page, tmp_path) -> None:  # noqa: ANN001
    """An app made for a non-loopback host (served here on 127.0.0.1 for the test) says in the
    page that loading by server path is off, from a link and from the Model tab."""
    from mazewb.app.server import create_app
    from mazewb.policy import make_placeholder_checkpoint

    ckpt = make_placeholder_checkpoint(tmp_path / "other.pt", seed=2)
    with served(create_app(str(ckpt), host="0.0.0.0")) as url:
        open_app(page, url, f"?ckpt=path:{ckpt}&tab=model")
        playwright_api.expect(page.locator("#notice")).to_have_class("notice error")
        playwright_api.expect(page.locator("#notice")).to_contain_text("switched off")
        playwright_api.expect(page.locator("#ckpt-path-off")).to_contain_text("--allow-path-loading")
        page.fill("#ckpt-path", str(ckpt))
        page.click("#ckpt-load")  # a new message, the refusal itself
        playwright_api.expect(page.locator("#notice")).to_have_text(re.compile(r"^Loading a checkpoint by its path"))
        playwright_api.expect(page.locator("#model-card")).to_contain_text("bundled agent")


def retype(pg, box: str, value: str) -> None:  # noqa: ANN001
    """Select a box's text, type ``value`` and press Enter, as a user does."""
    pg.click(box, click_count=3)
    pg.keyboard.type(value)
    pg.keyboard.press("Enter")


def test_retyping_the_value_a_box_shows_still_counts(page, server) -> None:  # noqa: ANN001
    """After next / random / Size / a preset / Clear all changed a box, typing the value it shows
    (or the value it had before) and pressing Enter takes effect."""
    open_app(page, server, f"?seed={SEED}")
    page.click("#seed-next")
    playwright_api.expect(page.locator("#maze-info")).to_contain_text(f"seed {SEED + 1}")
    playwright_api.expect(page.locator("#seed")).to_have_value(str(SEED + 1))
    page.click("#remove-cheese")  # an edit
    page.wait_for_function("() => window.location.search.includes('cheese=none')")
    retype(page, "#seed", str(SEED + 1))  # the value the box shows: back to the level as generated
    page.wait_for_function("() => !window.location.search.includes('cheese=none')")
    playwright_api.expect(page.locator("#maze-info")).not_to_contain_text("cheese none")
    retype(page, "#seed", str(SEED))  # the value the box had before 'next'
    playwright_api.expect(page.locator("#maze-info")).to_contain_text(f"seed {SEED} ")
    # The size menu moves the seed box too.
    page.click("#size")
    page.get_by_role("option", name="7x7", exact=True).click()
    playwright_api.expect(page.locator("#maze-info")).to_contain_text("7x7 maze")
    shown = page.input_value("#seed")
    page.click("#remove-cheese")
    page.wait_for_function("() => window.location.search.includes('cheese=none')")
    retype(page, "#seed", shown)
    page.wait_for_function("() => !window.location.search.includes('cheese=none')")
    # Coefficient boxes after a preset and after Clear all.
    page.click("#tabs >> text=Steer & patch")
    retype(page, "#cv-coeff", "2")
    page.wait_for_function("() => window.location.search.includes('cv=2')")
    page.click("#preset-cheese")
    page.wait_for_function("() => window.location.search.includes('cv=-1')")
    playwright_api.expect(page.locator("#cv-coeff")).to_have_value("-1")
    retype(page, "#cv-coeff", "2")  # the value before the preset
    page.wait_for_function("() => window.location.search.includes('cv=2')")
    retype(page, "#tv-coeff", "1.5")
    page.wait_for_function("() => window.location.search.includes('tv=1.5')")
    page.click("#steer-clear")
    page.wait_for_function("() => !window.location.search.includes('cv=') && !window.location.search.includes('tv=')")
    playwright_api.expect(page.locator("#cv-coeff")).to_have_value("0")
    retype(page, "#cv-coeff", "2")
    page.wait_for_function("() => window.location.search.includes('cv=2')")
    retype(page, "#tv-coeff", "1.5")
    page.wait_for_function("() => window.location.search.includes('tv=1.5')")
    page.click("#preset-cheese")  # cv 2 -> -1; retyping -1 (what it shows) keeps it
    page.wait_for_function("() => window.location.search.includes('cv=-1')")
    retype(page, "#cv-coeff", "-1")
    playwright_api.expect(page.locator("#cv-coeff")).to_have_value("-1")
    assert "cv=-1" in page.url


def test_the_share_link_survives_every_tab_and_a_statistics_job(page, server) -> None:  # noqa: ANN001
    """A link with every kind of view field (edits, layer, channel, interventions, grid, options)
    is the same after visiting every tab and running a statistics job, and reads back to the
    same view state."""
    from mazewb.app.panels import TABS
    from mazewb.app.state import from_query, to_query

    query = (
        f"?seed={SEED}&cheese=4,4&walls=1,0&show=paths,decision&arrows=moves&heat=reach_cheese"
        "&layer=embedder.block3.res2.resadd_out&ch=5&cv=-1&tv=0.5&tvsrc=3&rt=4,0&rtch=1,2&rtv=3&ab=3&abm=mean"
        "&gc=-1,0&gn=3&sn=10&ss=5&ep=sampled&eps=2"
    )
    want = from_query(query)
    canonical = to_query(want)
    open_app(page, server, canonical)
    labels = {"behaviour": "Behaviour", "activations": "Activations", "steer": "Steer & patch", "shards": "Shards",
              "stats": "Statistics", "model": "Model"}  # fmt: skip
    for tab in TABS:
        page.click(f"#tabs >> text={labels.get(tab, tab)}")
        page.wait_for_function(  # the default tab is not written in the address
            "(t) => t === 'behaviour' ? !window.location.search.includes('tab=') "
            ": window.location.search.includes('tab=' + t)",
            arg=tab,
        )
        assert from_query(page.url.split("?", 1)[1]) == replace_tab(want, tab)
    page.click("#tabs >> text=Steer & patch")
    playwright_api.expect(page.locator("#cv-coeff")).to_have_value("-1")
    playwright_api.expect(page.locator("#ab-channels")).to_have_value("3")
    page.click("#tabs >> text=Activations")
    playwright_api.expect(page.locator("#channel")).to_have_value("5")
    page.click("#tabs >> text=Statistics")
    page.click("#stats-run")
    playwright_api.expect(page.locator("#stats-status")).to_contain_text("done", timeout=180_000)
    playwright_api.expect(page.locator("#stats-table")).to_contain_text("held-out accuracy")
    playwright_api.expect(page.locator("#stats-table")).to_contain_text("moves along the maze")  # the glossary
    playwright_api.expect(page.locator("#stats-warnings")).to_contain_text("held out")  # 10 mazes: a warning
    final = from_query(page.url.split("?", 1)[1])
    assert final == replace_tab(want, "stats")
    shared = page.inner_text("#share-url") if page.locator("#share-url").count() else ""
    assert shared.endswith(to_query(final)) or shared == ""


def replace_tab(state, tab: str):  # noqa: ANN001, ANN201
    from dataclasses import replace

    return replace(state, tab=tab)
