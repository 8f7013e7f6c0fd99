"""Integrated gradients: completeness, end points that match plain forward passes, both ways of
reaching a layer (resumed from a cut point or patched in a full pass), figures and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest

from mazewb import Maze, load_policy, plots
from mazewb.analysis import DEFAULT_LAYER, integrated_gradients, vector_field
from mazewb.cli import main
from mazewb.policy import CUT_POINTS, MOVES, ImpalaPolicy

SEED = 27  # an 11x11 level whose decision square gives the trained agent a real choice


@pytest.fixture(scope="module")
def agent() -> ImpalaPolicy:
    return load_policy()  # the bundled, trained agent: attributions are far from zero


@pytest.fixture(scope="module")
def maze() -> Maze:
    return Maze.from_seed(SEED)


def _prob(policy: ImpalaPolicy, maze: Maze, square: tuple[int, int], move: str) -> float:
    field = vector_field(policy, maze)
    row = [tuple(c) for c in field.cells.tolist()].index(square)
    return float(field.probs[row, MOVES.index(move)])


def _most_cheese_sensitive_square(policy: ImpalaPolicy, maze: Maze) -> tuple[int, int]:
    """The square whose move probabilities change most when the cheese is removed (so that the
    attributions below have something to add up to, whatever the bundled agent)."""
    with_cheese, without = vector_field(policy, maze), vector_field(policy, maze.without_cheese())
    rows = {tuple(c): i for i, c in enumerate(without.cells.tolist())}
    change = {
        tuple(c): np.abs(with_cheese.probs[i] - without.probs[rows[tuple(c)]]).sum()
        for i, c in enumerate(with_cheese.cells.tolist())
    }
    return max(change, key=change.get)


# The zero baseline is far from any real activation: the path crosses many ReLU kinks and the
# quadrature needs more points for the same completeness.
@pytest.mark.parametrize(("baseline", "steps", "tolerance"), [("no-cheese", 64, 0.02), ("zero", 256, 0.1)])
def test_completeness_and_end_points(
    agent: ImpalaPolicy, maze: Maze, baseline: str, steps: int, tolerance: float
) -> None:
    square = _most_cheese_sensitive_square(agent, maze)
    # The move whose probability the baseline changes most (one quadrature point gives both ends).
    ends = [integrated_gradients(agent, maze, square=square, move=m, baseline=baseline, steps=1) for m in MOVES[:4]]
    move = max(ends, key=lambda e: abs(e.prob - e.baseline_prob)).move
    a = integrated_gradients(agent, maze, square=square, move=move, baseline=baseline, steps=steps)
    assert a.values.shape == agent.hook_points()[DEFAULT_LAYER]
    assert a.prob == pytest.approx(_prob(agent, maze, square, a.move), abs=1e-5)
    if baseline == "no-cheese":
        assert a.baseline_prob == pytest.approx(_prob(agent, maze.without_cheese(), square, a.move), abs=1e-5)
    assert abs(a.prob - a.baseline_prob) > 0.01  # the test below means something
    assert abs(a.delta) < tolerance * abs(a.prob - a.baseline_prob) + 1e-4
    assert a.spatial().shape == a.values.shape[1:]
    assert a.channel_totals().sum() == pytest.approx(a.values.sum())


def test_layer_inside_a_residual_block_and_a_flat_layer(agent: ImpalaPolicy, maze: Maze) -> None:
    inner = "embedder.block2.res1.relu1_out"
    assert inner not in CUT_POINTS  # reached by patching a full forward pass, not by resuming
    square = _most_cheese_sensitive_square(agent, maze)
    for layer in (inner, "embedder.relufc_out"):
        a = integrated_gradients(agent, maze, layer=layer, square=square, move="RIGHT", steps=64)
        assert a.move == "RIGHT"
        assert a.values.shape == agent.hook_points()[layer]
        assert abs(a.delta) < 0.05 * abs(a.prob - a.baseline_prob) + 1e-4


def test_identical_baseline_gives_zero_attribution(agent: ImpalaPolicy, maze: Maze) -> None:
    a = integrated_gradients(agent, maze, baseline=maze, steps=4)
    assert a.baseline == "maze" and not np.any(a.values) and a.prob == a.baseline_prob


def test_bad_input_is_named(agent: ImpalaPolicy, maze: Maze) -> None:
    wall = next((r, c) for r in range(maze.size) for c in range(maze.size) if not maze.is_open((r, c)))
    with pytest.raises(ValueError, match="unknown layer"):
        integrated_gradients(agent, maze, layer="embedder.block9")
    with pytest.raises(ValueError, match="not an open square"):
        integrated_gradients(agent, maze, square=wall)
    with pytest.raises(ValueError, match="move must be one of"):
        integrated_gradients(agent, maze, move="JUMP")
    with pytest.raises(ValueError, match="has no cheese"):
        integrated_gradients(agent, maze.without_cheese())
    with pytest.raises(ValueError, match="baseline must be"):
        integrated_gradients(agent, maze, baseline="mean")
    with pytest.raises(ValueError, match="baseline maze is"):
        integrated_gradients(agent, maze, baseline=Maze.from_seed(3))
    with pytest.raises(ValueError, match="steps"):
        integrated_gradients(agent, maze, steps=0)


def test_figures(agent: ImpalaPolicy, maze: Maze) -> None:
    a = integrated_gradients(agent, maze, steps=8)
    for fig in (plots.attribution_figure(a, maze), plots.attribution_figure(a, maze, aligned=False)):
        assert isinstance(fig, go.Figure) and "completeness gap" in fig.layout.title.text
        fig.to_json()
    bars = plots.attribution_channels_figure(a, top=5)
    assert len(bars.data[0].x) == 5


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    html = tmp_path / "attr.html"
    args = ["attribution", "--seed", str(SEED), "--square", "8,6", "--steps", "16", "--top", "3"]
    assert main([*args, "--json", "--html", str(html)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["square"] == [8, 6] and len(out["top_channels"]) == 3
    assert out["sum"] == pytest.approx(out["prob"] - out["baseline_prob"] + out["completeness_gap"])
    assert html.read_text().count("plotly-graph-div") == 2
    # Bad input: one line naming the problem, exit status 2, no traceback.
    assert main(["attribution", "--seed", str(SEED), "--square", "0,0", "--layer", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown layer" in err and "Traceback" not in err
