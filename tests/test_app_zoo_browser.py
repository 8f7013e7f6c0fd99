"""Browser test of the zoo views: the app served with a small temporary zoo (a randomly
initialised agent whose card says region 1), driven by headless Chromium. Reuses the fixtures and
helpers of tests/test_app_browser.py; skipped where they are (no Playwright, no Chromium)."""

from __future__ import annotations

import pytest

pytest.importorskip("playwright.sync_api")

from browser import needs_chromium, served  # noqa: E402
from test_app_browser import (  # noqa: E402, F401 - fixtures
    SEED,
    TIMEOUT_MS,
    browser,
    open_app,
    page,
    playwright_api,
    wait_for_change,
    wait_for_figure,
)

pytestmark = needs_chromium


def contains(locator, text: str) -> None:  # noqa: ANN001
    playwright_api.expect(locator).to_contain_text(text, timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def zoo_server(tmp_path_factory):  # noqa: ANN001, ANN201
    """The app with a random-init default agent and a zoo folder holding one 'region 1' agent."""
    import torch

    from mazewb.app.server import create_app
    from mazewb.policy import ImpalaPolicy, make_placeholder_checkpoint
    from mazewb.policy.checkpoint import save_policy

    ckpt = make_placeholder_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", seed=1)
    zoo = tmp_path_factory.mktemp("zoo")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        policy = ImpalaPolicy(scale=1)
    save_policy(policy, zoo / "region1.pt", {"cheese_region": 1, "samples": 1234})
    with served(create_app(str(ckpt), zoo=str(zoo))) as url:
        yield url


def test_switch_agent_compare_two_agents_and_the_link_carries_them(page, zoo_server) -> None:  # noqa: ANN001, F811
    open_app(page, zoo_server, f"?seed={SEED}")
    before = wait_for_figure(page, "vf-graph")
    # the agent selector above the maze, on every tab: switch to the zoo agent
    page.click("#agent-select")
    page.get_by_role("option", name="region1 (region 1)").click()
    page.wait_for_function("() => window.location.search.includes('ckpt=zoo:region1')")
    wait_for_change(page, "vf-graph", before)  # the Behaviour tab now shows the region-1 agent
    contains(page.locator("#model-badge"), "zoo agent region1")
    contains(page.locator("#region-badge"), "top-right 1x1")
    # the Model tab lists the zoo, with a load link back to the default agent
    page.click("#tabs >> text=Model")
    page.wait_for_function("() => window.location.search.includes('tab=model')")
    contains(page.locator("#zoo-row-region1"), "top-right 1x1")
    contains(page.locator("#zoo-row-region1"), "1,234")
    contains(page.locator("#zoo-row-region1"), "loaded")
    playwright_api.expect(page.locator("#zoo-row-default a")).to_have_text("load", timeout=TIMEOUT_MS)
    # the Compare tab: A = region1 (loaded), B = the default agent; both fields and one table
    page.click("#tabs >> text=Compare agents")
    page.wait_for_function("() => window.location.search.includes('tab=compare')")
    wait_for_figure(page, "compare-vf-a")
    wait_for_figure(page, "compare-vf-b")
    contains(page.locator("#compare-vf-a"), "A: region1")
    contains(page.locator("#compare-vf-b"), "B: default")
    contains(page.locator("#compare-outcomes"), "A: region1")
    contains(page.locator("#compare-outcomes"), "B: default")
    contains(page.locator("#compare-outcomes"), "total")
    # choose B = region1 too: the link carries the choice
    page.click("#compare-agent")
    page.get_by_role("option", name="region1 (region 1)").click()
    page.wait_for_function("() => window.location.search.includes('cmp=zoo:region1')")
    contains(page.locator("#compare-vf-b"), "B: region1")
    assert "ckpt=zoo:region1" in page.url and f"seed={SEED}" in page.url
    # one region-1 agent and an untrained default without a region: the curve says so plainly
    page.click("#curve-run")
    contains(page.locator("#curve-message"), "at least two zoo agents")
    # the link reproduces the view in a new page
    url = page.url
    open_app(page, zoo_server, "?" + url.split("?", 1)[1])
    contains(page.locator("#compare-vf-b"), "B: region1")
