"""What a researcher and a teacher need to read the results right: outcomes that add up to 1,
P(reach the target) for retargeting, the training region outlined, and statistics that say
when not to trust them. Tiny hand-made mazes with exact numbers, and the real game."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch

from mazewb import Maze, plots
from mazewb.analysis import (
    FEATURES,
    GLOSSARY,
    OUTCOME_DEFINITION,
    OUTCOME_EVENTS,
    VectorField,
    behaviour_regressions,
    field_squares,
    outcome_table,
    outcomes,
    outcomes_from_probs,
    p_reach_target,
    reach_map,
    retarget,
    retarget_outcome,
    retargeting_map,
    sample_rollouts,
    vector_field,
    vector_field_diff,
    vector_fields,
)
from mazewb.analysis.chain import build_chain, hitting_probabilities
from mazewb.errors import AnalysisError, MazeError, MazewbError
from mazewb.maze.geometry import top_right_region_span
from mazewb.maze.graph import step, top_right_region
from mazewb.policy import MOVES, ImpalaPolicy

SMALL_SEED = 26  # a 7x7 level with a decision square, cheese outside the top-right 5x5


@pytest.fixture(scope="module")
def policy() -> ImpalaPolicy:
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval()


@pytest.fixture
def ring() -> Maze:
    """A 3x3 ring: the cheese two moves up from the mouse, or six moves round by the top-right."""
    return Maze.from_strings(["C..", ".#.", "M.."])


def table(maze: Maze, rules: dict[tuple[int, int], dict[str, float]], default: str = "NOOP") -> np.ndarray:
    out = np.zeros((len(maze.open_cells()), 5))
    for i, sq in enumerate(maze.open_cells()):
        for move, p in rules.get(sq, {default: 1.0}).items():
            out[i, MOVES.index(move)] = p
    return out


def ring_probs(ring: Maze) -> np.ndarray:
    # At the start UP 1/4 (cheese in 2 moves), RIGHT 1/2 (top-right square in 4, cheese in 6),
    # NOOP 1/4; every other square moves on deterministically.
    return table(
        ring,
        {
            (0, 0): {"UP": 0.25, "RIGHT": 0.5, "NOOP": 0.25},
            (1, 0): {"UP": 1.0},
            (0, 1): {"RIGHT": 1.0},
            (0, 2): {"UP": 1.0},
            (1, 2): {"UP": 1.0},
            (2, 2): {"LEFT": 1.0},
            (2, 1): {"LEFT": 1.0},
        },
    )


def enumerate_partition(maze: Maze, probs: np.ndarray, horizon: int) -> dict[str, float]:
    """Brute force over every move sequence with non-zero probability (no chain)."""
    row = {sq: i for i, sq in enumerate(maze.open_cells())}
    got = dict.fromkeys([f for f, _ in OUTCOME_EVENTS], 0.0)

    def walk(square: tuple[int, int], t: int, seen_corner: bool, p: float) -> None:
        seen_corner = seen_corner or square == maze.top_right
        if square == maze.cheese:
            got["p_top_right_then_cheese" if seen_corner else "p_cheese_direct"] += p
        elif t == horizon:
            got["p_top_right_then_timeout" if seen_corner else "p_neither"] += p
        else:
            for m, q in enumerate(probs[row[square]]):
                if q > 0:
                    walk(step(maze, square, MOVES[m]), t + 1, seen_corner, p * q)

    walk(maze.mouse, 0, False, 1.0)
    return got


# --- outcomes that add up to 1 ------------------------------------------------------------------------


def test_the_four_outcomes_by_hand_on_a_ring(ring: Maze) -> None:
    out = outcomes_from_probs(ring, ring_probs(ring), horizon=6)
    # k NOOPs first: direct needs k <= 4; round by the top-right, the cheese needs k = 0 and
    # the top-right square k <= 2.
    direct = 0.25 * sum(0.25**k for k in range(5))
    assert out.p_cheese_direct == pytest.approx(direct, abs=1e-15)
    assert out.p_top_right_then_cheese == pytest.approx(0.5, abs=1e-15)
    assert out.p_top_right_then_timeout == pytest.approx(0.5 * (0.25 + 0.25**2), abs=1e-15)
    assert out.p_neither == pytest.approx(0.25**6 + 0.25**6 + 0.5 * (0.25**3 + 0.25**4 + 0.25**5), abs=1e-15)
    assert sum(out.partition().values()) == pytest.approx(1.0, abs=1e-15)
    # The older overlapping fields are sums of the four.
    assert out.p_cheese == pytest.approx(out.p_cheese_direct + out.p_top_right_then_cheese, abs=1e-15)
    assert out.p_top_right == pytest.approx(out.p_top_right_then_cheese + out.p_top_right_then_timeout, abs=1e-15)
    assert out.p_timeout == pytest.approx(1.0 - out.p_cheese, abs=1e-15)
    brute = enumerate_partition(ring, ring_probs(ring), 6)
    for field, _ in OUTCOME_EVENTS:
        assert getattr(out, field) == pytest.approx(brute[field], abs=1e-15)


def test_partition_matches_brute_force_for_a_random_table(ring: Maze) -> None:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(5), size=len(ring.open_cells()))
    out = outcomes_from_probs(ring, probs, horizon=7)
    brute = enumerate_partition(ring, probs, 7)
    for field, _ in OUTCOME_EVENTS:
        assert getattr(out, field) == pytest.approx(brute[field], abs=1e-13)
    # The overlapping P(top-right first) still equals an independent hitting-probability solve.
    chain = build_chain(ring)
    reach, _ = hitting_probabilities(chain, probs, ring.mouse, [ring.top_right], [ring.cheese], horizon=7)
    assert out.p_top_right == pytest.approx(float(reach[0]), abs=1e-13)


def test_reached_the_corner_then_timed_out_is_one_row_not_two() -> None:
    # The student's puzzle: "P(top-right first) 1.000" and "P(time out) 1.000" at once.
    maze = Maze.from_strings(["C..", "..#", "M.."])  # corner (2, 2), cheese (2, 0)
    probs = table(maze, {(0, 0): {"RIGHT": 1.0}, (0, 1): {"UP": 1.0}, (1, 1): {"UP": 1.0}, (2, 1): {"RIGHT": 1.0}})
    out = outcomes_from_probs(maze, probs)
    assert out.p_top_right == 1.0 and out.p_timeout == 1.0  # the overlapping summaries
    assert out.partition() == {
        "reaches the cheese without visiting the top-right square first": 0.0,
        "visits the top-right square first, then reaches the cheese": 0.0,
        "visits the top-right square first, then times out": 1.0,
        "times out without visiting either": 0.0,
    }


def test_cheese_on_the_corner_and_the_mouse_on_the_corner() -> None:
    maze = Maze.from_strings(["..C", "...", "M.."])  # the cheese is on the top-right square
    probs = np.tile([0.2, 0.2, 0.2, 0.2, 0.2], (len(maze.open_cells()), 1))
    out = outcomes_from_probs(maze, probs)
    assert out.p_top_right_then_cheese == 0.0 and out.p_top_right_then_timeout == 0.0
    assert out.p_cheese_direct == pytest.approx(out.p_cheese, abs=1e-15)
    on_corner = outcomes_from_probs(Maze.from_strings(["C.M", "...", "..."]), probs)
    assert on_corner.p_cheese_direct == 0.0 and on_corner.p_top_right == 1.0


def test_outcome_table_adds_up_to_one(policy: ImpalaPolicy, ring: Maze) -> None:
    maze = Maze.from_seed(SMALL_SEED)
    base = outcomes(policy, maze)
    assert sum(base.partition().values()) == pytest.approx(1.0, abs=1e-12)
    hand = outcomes_from_probs(ring, ring_probs(ring), horizon=6)
    tab = outcome_table({"no patch": base, "ring": hand})
    assert list(tab.index) == [label for _, label in OUTCOME_EVENTS] + ["total"]
    assert tab.loc["total"].to_numpy() == pytest.approx([1.0, 1.0], abs=1e-12)
    assert list(outcome_table(hand).columns) == ["P"]
    assert "exactly one" in OUTCOME_DEFINITION and "first" in OUTCOME_DEFINITION
    for fig in (plots.outcomes_figure({"no patch": base, "ring": hand}), plots.outcomes_table_figure(hand)):
        assert isinstance(fig, go.Figure)
        assert any("exactly one" in a.text for a in fig.layout.annotations)
    bars = plots.outcomes_figure({"no patch": base, "ring": hand})
    assert [t.name for t in bars.data] == [label for _, label in OUTCOME_EVENTS]
    assert np.sum([t.x for t in bars.data], axis=0) == pytest.approx([1.0, 1.0], abs=1e-12)
    cells = plots.outcomes_table_figure(hand).data[0].cells.values
    assert cells[1][-1] == "1.000"


def test_the_four_outcomes_agree_with_the_real_game(ring: Maze) -> None:
    # A stochastic walk round the ring with a 10-step horizon: all four outcomes are common.
    probs = table(
        ring,
        {
            (0, 0): {"UP": 0.2, "RIGHT": 0.6, "NOOP": 0.2},
            (0, 1): {"RIGHT": 0.7, "LEFT": 0.3},
            (0, 2): {"UP": 0.8, "LEFT": 0.2},
            (1, 2): {"UP": 0.8, "DOWN": 0.2},
            (2, 2): {"LEFT": 0.4, "DOWN": 0.3, "NOOP": 0.3},
            (2, 1): {"LEFT": 0.5, "RIGHT": 0.5},
            (1, 0): {"UP": 0.6, "DOWN": 0.4},
        },
    )
    exact = outcomes_from_probs(ring, probs, horizon=10)
    assert min(exact.partition().values()) > 0.08  # every outcome happens
    runs = sample_rollouts(probs, ring, 400, seed=5, max_steps=10)
    corner = [r.reached_first(ring.top_right, ring.cheese) for r in runs]
    seen = {
        "p_cheese_direct": np.mean([r.reached_cheese and not c for r, c in zip(runs, corner, strict=True)]),
        "p_top_right_then_cheese": np.mean([r.reached_cheese and c for r, c in zip(runs, corner, strict=True)]),
        "p_top_right_then_timeout": np.mean([not r.reached_cheese and c for r, c in zip(runs, corner, strict=True)]),
        "p_neither": np.mean([not r.reached_cheese and not c for r, c in zip(runs, corner, strict=True)]),
    }
    for field, freq in seen.items():
        p = getattr(exact, field)
        assert abs(freq - p) < 4 * math.sqrt(p * (1 - p) / len(runs)), field


# --- P(reach the target) --------------------------------------------------------------------------------


def test_p_reach_target_by_hand(ring: Maze) -> None:
    probs = ring_probs(ring)
    squares = field_squares(ring)
    field = VectorField(ring, np.array(squares), np.array([probs[ring.open_cells().index(s)] for s in squares]))
    assert p_reach_target(field, ring.top_right, horizon=6) == pytest.approx(0.5 + 0.5 * (0.25 + 0.25**2))
    assert p_reach_target(field, (1, 0), horizon=6) == pytest.approx(0.25 * sum(0.25**k for k in range(6)))
    assert p_reach_target(field, ring.mouse) == 1.0
    assert p_reach_target(field, ring.cheese) == pytest.approx(1.0)  # 500 steps: the NOOP tail is gone
    with pytest.raises(MazeError, match="not an open square"):
        p_reach_target(field, (1, 1))


def test_retarget_outcome_is_exact_and_matches_the_map(policy: ImpalaPolicy) -> None:
    maze = Maze.from_seed(SMALL_SEED)
    target = (4, 2) if maze.is_open((4, 2)) else maze.open_cells()[-3]
    got = retarget_outcome(policy, maze, target, [0, 1], 3.0)
    patch = retarget(policy, maze, target, [0, 1], 3.0)
    base, patched = vector_fields(policy, maze, [(), (patch,)])
    assert got.p_reach == pytest.approx(float(reach_map(patched, [target])[0]), abs=1e-12)
    assert got.p_reach_baseline == pytest.approx(float(reach_map(base, [target])[0]), abs=1e-12)
    whole = retargeting_map(policy, maze, [0, 1], 3.0, targets=[target])
    assert got.p_reach == pytest.approx(float(whole.p_reach[0]), abs=1e-9)
    assert got.path_prob == pytest.approx(float(whole.path_prob[0]), abs=1e-9)
    assert sum(got.outcomes.partition().values()) == pytest.approx(1.0, abs=1e-12)
    assert got.table().loc["p_reach", "retargeted"] == got.p_reach
    # Other interventions stay on in both fields: the baseline is "everything but the retarget".
    both = retarget_outcome(policy, maze, target, [0, 1], 3.0, interventions=[patch])
    assert both.p_reach_baseline == pytest.approx(got.p_reach, abs=1e-12)
    with pytest.raises(MazeError, match="not an open square"):
        retarget_outcome(policy, maze, (6, 7), [0], 1.0)


# --- the region and the target drawn ----------------------------------------------------------------------


def test_region_span_follows_the_training_rule() -> None:
    assert top_right_region_span(7, 5) == (2, 6)
    assert top_right_region_span(3, 5) == (0, 2)  # clipped to the maze
    assert top_right_region_span(9, 0) == (8, 8) == top_right_region_span(9, 1)  # 0: the square itself
    with pytest.raises(MazewbError):
        top_right_region_span(9, -1)
    maze = Maze.from_seed(SMALL_SEED)
    lo, hi = top_right_region_span(maze.size, 5)
    inside = {sq for sq in maze.open_cells() if lo <= sq[0] <= hi and lo <= sq[1] <= hi}
    assert inside == top_right_region(maze, 5)


def _trace(fig: go.Figure, prefix: str) -> go.Scatter:
    found = [t for t in fig.data if t.name and t.name.startswith(prefix)]
    assert len(found) == 1, [t.name for t in fig.data]
    return found[0]


def test_figures_outline_the_region_and_box_the_target(policy: ImpalaPolicy) -> None:
    maze = Maze.from_seed(SMALL_SEED)
    field = vector_field(policy, maze)
    patch = retarget(policy, maze, (4, 4), [0], 2.0)
    diff = vector_field_diff(field, vector_field(policy, maze, [patch]))
    figures = [
        plots.maze_figure(maze, region=5, target=(4, 4)),
        plots.vector_field_figure(field, region=5, target=(4, 4)),
        plots.vector_field_figure(field, "net", region=5, target=(4, 4)),
        plots.vector_field_diff_figure(diff, region=5, target=(4, 4)),
        plots.square_heatmap_figure(maze, np.zeros((7, 7)), region=5, target=(4, 4)),
    ]
    for fig in figures:
        outline = _trace(fig, plots.REGION_NAME)
        assert "5x5" in outline.name
        assert min(outline.x) == 1.5 and max(outline.x) == 6.5 and min(outline.y) == 1.5 and max(outline.y) == 6.5
        box = _trace(fig, plots.TARGET_NAME)
        assert np.mean(box.x[:4]) == pytest.approx(4) and np.mean(box.y[:4]) == pytest.approx(4)
    assert not any(t.name and t.name.startswith(plots.REGION_NAME) for t in plots.maze_figure(maze).data)
    small = _trace(plots.maze_figure(Maze.from_seed(3), region=5), plots.REGION_NAME)  # a 5x5 maze: all of it
    assert min(small.x) == -0.5 and max(small.x) == 4.5
    result = retargeting_map(policy, maze, [0], 2.0, targets=[(4, 4), (6, 6)])
    assert (
        sum(
            t.name is not None and t.name.startswith(plots.REGION_NAME)
            for t in plots.retargeting_figure(result, region=5).data
        )
        == 3
    )
    with pytest.raises(MazeError, match="outside"):
        plots.vector_field_figure(field, target=(7, 0))


# --- statistics that warn ----------------------------------------------------------------------------------


def _planted(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {name: rng.normal(size=n) for name in FEATURES}
    # A tree maze: the decision square is on the path from the cheese to the top-right square.
    data["path_ds_cheese"] = rng.integers(1, 20, size=n).astype(float)
    data["path_ds_tr"] = rng.integers(1, 20, size=n).astype(float)
    data["path_cheese_tr"] = data["path_ds_cheese"] + data["path_ds_tr"]
    signal = -(data["euc_cheese_tr"])
    data["chooses_cheese"] = signal + 0.3 * rng.normal(size=n) > 0.3
    data["logit_p_cheese_ds"] = 2 * signal + 0.1 * rng.normal(size=n)
    data["p_cheese_ds"] = 1 / (1 + np.exp(-data["logit_p_cheese_ds"]))
    data["p_top_right_ds"] = 1 - data["p_cheese_ds"]
    data["qualifies"] = True
    return pd.DataFrame(data)


def test_statistics_warn_about_tiny_held_out_sets_and_collinearity() -> None:
    stats = behaviour_regressions(_planted(20))
    text = " ".join(stats.warnings)
    assert stats.n_test == 5
    assert "Only 5 mazes are held out" in text
    assert "Only 15 training mazes for 11 features" in text
    assert "VIF is infinite for path_ds_cheese, path_ds_tr, path_cheese_tr" in text
    assert "path_ds_cheese + path_ds_tr = path_cheese_tr" in text
    if stats.linear_r2_test < 0:
        assert "(negative)" in text
    assert stats.to_dict()["warnings"] == list(stats.warnings)
    # Plenty of mazes and no exact collinearity: no warning at all.
    clean = _planted(800)
    clean["path_cheese_tr"] = np.random.default_rng(2).normal(size=800)
    assert behaviour_regressions(clean).warnings == ()


def test_negative_r2_and_below_baseline_accuracy_are_named() -> None:
    rng = np.random.default_rng(3)
    n = 24
    data = pd.DataFrame({name: rng.normal(size=n) for name in FEATURES})
    data["chooses_cheese"] = rng.random(n) < 0.5  # pure noise: nothing to learn
    data["logit_p_cheese_ds"] = rng.normal(size=n)
    data["p_cheese_ds"] = 0.5
    data["p_top_right_ds"] = 0.5
    data["qualifies"] = True
    found = []
    for seed in range(10):
        stats = behaviour_regressions(data, seed=seed)
        if stats.linear_r2_test < 0:
            assert any(w.startswith(f"Held-out R² is {stats.linear_r2_test:.3g} (negative)") for w in stats.warnings)
            found.append("r2")
        if stats.accuracy < stats.baseline:
            assert any("below the always-majority baseline" in w for w in stats.warnings)
            found.append("acc")
    assert "r2" in found and "acc" in found
    with pytest.raises(AnalysisError, match="at least 8"):
        behaviour_regressions(data.head(5))


def test_every_feature_is_explained_and_the_figures_show_it() -> None:
    assert set(FEATURES) <= set(GLOSSARY) and all(GLOSSARY[f] for f in FEATURES)
    stats = behaviour_regressions(_planted(20))
    tab = stats.table()
    assert list(tab.index) == list(FEATURES) and tab.loc["path_ds_region", "meaning"] == GLOSSARY["path_ds_region"]
    fig = plots.behaviour_figure(stats)
    assert list(fig.data[0].customdata) == [GLOSSARY[f] for f in FEATURES]
    assert any("VIF is infinite" in a.text for a in fig.layout.annotations)
    assert "inf" in fig.data[1].text
    table_fig = plots.behaviour_table_figure(stats)
    cells = table_fig.data[0].cells.values
    assert list(cells[0]) == list(FEATURES) and list(cells[1]) == [GLOSSARY[f] for f in FEATURES]
    assert any("Only 5 mazes are held out" in a.text for a in table_fig.layout.annotations)


# --- the episode animation keeps its walls (real Chromium) ------------------------------------------------


def test_episode_animation_keeps_its_walls_in_chromium(tmp_path) -> None:  # noqa: ANN001
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    chromium = "/usr/bin/chromium"
    assert Path(chromium).exists(), "the browser tests need Debian's chromium"
    maze = Maze.from_seed(3)
    probs = np.full((len(maze.open_cells()), 5), 0.2)
    traj = sample_rollouts(probs, maze, 1, seed=0, max_steps=12)[0]
    fig = plots.trajectory_figure(maze, [traj], animate=True, region=5)
    fig.update_layout(width=600, height=600)
    page_file = tmp_path / "episode.html"
    fig.write_html(page_file, include_plotlyjs=True, auto_play=False)
    walls = sum(map(sum, maze.walls))
    probe = """() => {
        const gd = document.querySelector('.js-plotly-plot');
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return {slider: gd._fullLayout.sliders[0].active, x0: xa._offset, y0: ya._offset,
                px: xa._length / 5, shapes: gd.querySelectorAll('.shapelayer path').length};
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 700, "height": 700})
            page.goto(page_file.as_uri())
            page.wait_for_selector(".shapelayer path")
            page.get_by_text("play").click()
            page.wait_for_function(
                f"document.querySelector('.js-plotly-plot')._fullLayout.sliders[0].active === {traj.steps}"
            )
            state = page.evaluate(probe)
            shot = tmp_path / "after.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    assert state["shapes"] >= 2  # the open background and at least one wall run
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    wall_rgb = np.array([int(plots.WALL_COLOUR[i : i + 2], 16) for i in (1, 3, 5)])
    seen = 0
    for r in range(maze.size):
        for c in range(maze.size):
            x = int(state["x0"] + (c + 0.5) * state["px"])
            y = int(state["y0"] + (maze.size - 1 - r + 0.5) * state["px"])
            is_wall = np.abs(image[y, x] - wall_rgb).max() < 12
            assert is_wall == bool(maze.walls[r][c]), (r, c)
            seen += is_wall
    assert seen == walls > 0
