"""``mazewb bench-app``: how long the web app takes from an edit to all figures updated.

The app is served on 127.0.0.1 in this process and driven by headless Chromium: each round
clicks a new square to move the cheese on a 25x25 maze and waits until the maze panel, the
vector field, the heatmap and the outcome table have all redrawn (Plotly's ``afterplot`` event
and a DOM mutation, timed in the page). Between rounds, with the server idle, the bare batched
forward pass for the same squares is timed on the same policy object. Medians of both and their
ratio are reported (the ratio is what to compare across machines: these are shared and noisy).

A server-side breakdown (no browser) is reported too: rendering the observations, the forward
pass, the exact outcomes, building the figures and serializing them, as the callbacks do.
"""

from __future__ import annotations

import argparse
import random
import statistics
import threading
import time

from mazewb.cli import command

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

_INSTALL_TIMERS = """
() => {
  window.__first = {};
  window.__t0 = null;
  for (const id of ["maze-graph", "vf-graph", "heat-graph"]) {
    const gd = document.querySelector("#" + id + " .js-plotly-plot");
    if (gd && !gd.__benchHooked) {
      gd.on("plotly_afterplot", () => {
        if (window.__t0 !== null && !(id in window.__first)) window.__first[id] = performance.now();
      });
      gd.__benchHooked = true;
    }
  }
  if (!window.__observer) {
    window.__observer = new MutationObserver(() => {
      if (window.__t0 !== null && !("outcomes" in window.__first)) window.__first["outcomes"] = performance.now();
    });
    window.__observer.observe(document.querySelector("#outcomes-table"),
                              {subtree: true, childList: true, characterData: true});
  }
}
"""
_WAIT = """() => ["maze-graph", "vf-graph", "heat-graph", "outcomes"].every(k => k in window.__first)"""
_ELAPSED = """() => Math.max(...Object.values(window.__first)) - window.__t0"""


def _serve_in_thread(app):  # noqa: ANN001, ANN202
    """Serve a Dash app on a free loopback port in a daemon thread, without per-request logging
    (it would bury the numbers); returns the werkzeug server (``server_port``, ``shutdown()``)."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="level seed (default: the first 25x25 level)")
    p.add_argument("--size", type=int, default=25, help="maze size to find when no seed is given (default 25)")
    p.add_argument("--repeats", type=int, default=7, help="edits to time (default 7)")
    p.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")
    p.add_argument("--no-browser", action="store_true", help="only the server-side breakdown (no Chromium)")
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary for Playwright")


def _find_seed(size: int) -> int:
    from mazewb.app.state import seed_maze

    for seed in range(10_000):
        if seed_maze(seed).size == size:
            return seed
    raise SystemExit(f"no {size}x{size} level among the first 10000 seeds")


def _bare_forward(policy, maze) -> float:  # noqa: ANN001
    """Seconds for the batched forward pass of the vector field's squares (rendering excluded)."""
    from mazewb.analysis.forward import move_probabilities, observations, to_input
    from mazewb.analysis.vfield import field_squares

    x = to_input(policy, observations(maze, field_squares(maze)))
    start = time.perf_counter()
    move_probabilities(policy, x)
    return time.perf_counter() - start


def _targets(maze, n: int, rng: random.Random) -> list[tuple[int, int]]:  # noqa: ANN001
    cells = [sq for sq in maze.open_cells() if sq not in (maze.mouse, maze.cheese)]
    rng.shuffle(cells)
    return cells[:n]


def server_side(wb, maze) -> dict[str, float]:  # noqa: ANN001
    """Seconds for each server-side step of one edit, as the callbacks run them (cold caches)."""
    from dash._utils import to_json

    from mazewb import analysis as an
    from mazewb.app.panels.behaviour import behaviour_view
    from mazewb.app.panels.maze import maze_view
    from mazewb.app.state import ViewState
    from mazewb.maze import render_observations

    lp = wb.policy("default")
    out: dict[str, float] = {}
    t = time.perf_counter()
    render_observations(maze, an.field_squares(maze))
    out["render observations (part of the next line)"] = time.perf_counter() - t
    t = time.perf_counter()
    wb.behaviour(lp, maze)
    out["vector field (render + forward) + outcomes"] = time.perf_counter() - t
    t = time.perf_counter()
    vf, heat, table = behaviour_view(wb, lp, maze, "net", "step_cheese")
    out["behaviour figures"] = time.perf_counter() - t
    t = time.perf_counter()
    panel = maze_view(wb, maze, ViewState(overlays=("paths", "decision")))
    out["maze panel (frame + figure)"] = time.perf_counter() - t
    t = time.perf_counter()
    size = len(to_json([vf, heat, table, panel]))
    out["JSON serialization"] = time.perf_counter() - t
    out["payload bytes"] = float(size)
    return out


@command("bench-app", "time the web app: edit (cheese moved) to all figures updated, vs the bare forward pass")(
    _configure
)
def _run(args: argparse.Namespace) -> int:
    from mazewb.app.server import create_app
    from mazewb.app.state import seed_maze

    seed = args.seed if args.seed is not None else _find_seed(args.size)
    maze = seed_maze(seed)
    app = create_app(args.checkpoint)
    wb = app.workbench  # type: ignore[attr-defined]
    lp = wb.policy("default")
    print(f"agent: {lp.label}, scale {lp.policy.scale}, {lp.device}{' (UNTRAINED)' if lp.untrained else ''}")
    print(f"maze: seed {seed}, {maze.size}x{maze.size}, {len(maze.open_cells()) - 1} squares per vector field")
    rng = random.Random(0)

    # Server-side breakdown on fresh mazes (cold caches), medians over a few edits.
    _bare_forward(lp.policy, maze)  # warm up
    rows: dict[str, list[float]] = {}
    bare_ss: list[float] = []
    for sq in _targets(maze, max(3, min(args.repeats, 5)), rng):
        edited = maze.with_cheese(sq)
        for k, v in server_side(wb, edited).items():
            rows.setdefault(k, []).append(v)
        bare_ss.append(_bare_forward(lp.policy, edited))
    print("\nserver side, one edit (median):")
    for k, v in rows.items():
        unit = "bytes" if k == "payload bytes" else "ms"
        print(f"  {k:45s} {statistics.median(v) * (1 if unit == 'bytes' else 1000):10.0f} {unit}")
    print(f"  {'bare batched forward pass (same squares)':45s} {statistics.median(bare_ss) * 1000:10.0f} ms")

    if args.no_browser:
        return 0
    from playwright.sync_api import sync_playwright

    srv = _serve_in_thread(app)
    url = f"http://127.0.0.1:{srv.server_port}/?seed={seed}"
    edits: list[float] = []
    bare: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.wait_for_function(
                "() => { const gd = document.querySelector('#vf-graph .js-plotly-plot');"
                " return gd && gd.data && gd.data.length > 2; }"
            )
            page.wait_for_selector("#outcomes-table table")
            box = page.locator("#maze-graph .nsewdrag").first.bounding_box()
            from mazewb.maze.geometry import FRAME_PIXELS, square_to_pixel_centre

            current = maze
            for i, sq in enumerate(_targets(maze, args.repeats + 1, random.Random(1))):
                page.evaluate(_INSTALL_TIMERS)
                page.wait_for_timeout(300)  # let the previous round's late events settle
                prow, pcol = square_to_pixel_centre(sq, maze.size, FRAME_PIXELS)
                page.evaluate("() => { window.__first = {}; window.__t0 = performance.now(); }")
                page.mouse.click(
                    box["x"] + pcol / FRAME_PIXELS * box["width"], box["y"] + prow / FRAME_PIXELS * box["height"]
                )
                try:
                    page.wait_for_function(_WAIT, polling=10)
                except Exception:
                    print(
                        "timed out:",
                        page.evaluate("() => JSON.stringify(window.__first)"),
                        page.inner_text("#notice"),
                        page.inner_text("#maze-info"),
                        sq,
                    )
                    raise
                elapsed = page.evaluate(_ELAPSED) / 1000
                parts = page.evaluate("() => Object.fromEntries(Object.entries(window.__first)"
                                      ".map(([k, v]) => [k, Math.round(v - window.__t0)]))")
                current = current.with_cheese(sq)
                forward = _bare_forward(lp.policy, current)
                if i == 0:
                    continue  # the first round warms the page's code paths
                edits.append(elapsed)
                bare.append(forward)
                print(
                    f"  edit {i}: cheese to {sq}: figures updated after {elapsed * 1000:.0f} ms; "
                    f"bare forward {forward * 1000:.0f} ms; drawn at (ms) {parts}"
                )
            browser.close()
    finally:
        srv.shutdown()
        wb.jobs.shutdown()
    e, f = statistics.median(edits), statistics.median(bare)
    print(f"\nmedian edit -> all figures updated (browser): {e * 1000:.0f} ms")
    print(f"median bare batched forward pass (same squares): {f * 1000:.0f} ms")
    print(f"ratio: {e / f:.2f} (overhead {100 * (e / f - 1):.0f}% over the forward pass); target < 1.5 and < 1 s")
    return 0


def _configure_shot(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="docs/screenshot.png", help="PNG to write (default docs/screenshot.png)")
    p.add_argument("--query", default="?seed=51", help="the view to show, as a link's query string (default ?seed=51)")
    p.add_argument("--checkpoint", default=None, help="policy checkpoint (default: the bundled agent)")
    p.add_argument("--width", type=int, default=1680)
    p.add_argument("--height", type=int, default=1050)
    p.add_argument("--chromium", default="/usr/bin/chromium", help="Chromium binary for Playwright")


@command("app-screenshot", "save a screenshot of the web app (headless Chromium)")(_configure_shot)
def _shot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from mazewb.app.server import create_app

    app = create_app(args.checkpoint)
    srv = _serve_in_thread(app)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.set_default_timeout(180_000)
            page.goto(f"http://127.0.0.1:{srv.server_port}/{args.query}")
            page.wait_for_selector("#maze-info b")
            page.wait_for_load_state("networkidle")
            # every visible graph drawn (not a placeholder) and no callback pending
            page.wait_for_function(
                """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
                        .filter(g => g.offsetParent !== null && g.getBoundingClientRect().top < window.innerHeight)
                        .every(g => g.data && g.data.length > 0 && !(g.layout.annotations || []).some(
                            a => a.text === 'computing…'))"""
            )
            page.wait_for_timeout(500)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.out)
            browser.close()
    finally:
        srv.shutdown()
        app.workbench.jobs.shutdown()  # type: ignore[attr-defined]
    print(f"wrote {args.out}")
    return 0
