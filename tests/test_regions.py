"""The zoo's common test: every agent, whatever its training region, on the same held-out mazes
(procgen's own cheese outside the top-right 5x5, a decision square), beside its own
in-distribution success. Small randomly initialised agents stand in for the zoo."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from mazewb import plots
from mazewb.cli import main
from mazewb.policy import ImpalaPolicy, load_policy, save_policy
from mazewb.train.evaluate import (
    COMMON_REGION,
    MazeProbs,
    off_distribution_mazes,
    region_curve,
    summarize,
    zoo_checkpoints,
)

SEEDS = range(0, 6)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``default.pt`` (region 5) and ``zoo/region1.pt``, ``zoo/region25.pt``: random scale-1 agents."""
    root = tmp_path_factory.mktemp("checkpoints")
    (root / "zoo").mkdir()
    agents = ((5, root / "default.pt"), (1, root / "zoo" / "region1.pt"), (25, root / "zoo" / "region25.pt"))
    for region, path in agents:
        torch.manual_seed(region)
        save_policy(ImpalaPolicy(scale=1), path, {"trained": False, "cheese_region": region})
    return root


def test_every_agent_gets_the_same_common_mazes(zoo: Path) -> None:
    paths = zoo_checkpoints(zoo / "zoo")[1:]  # the two zoo agents (the first entry is the bundled agent)
    policies = [load_policy(p, device="cpu") for p in paths]
    table = region_curve(policies, SEEDS, progress=False)
    assert list(table["region"]) == [1, 25] and list(table["file"]) == ["region1.pt", "region25.pt"]
    common = off_distribution_mazes(SEEDS, COMMON_REGION)
    assert len(common) > 0 and (table["common_mazes"] == len(common)).all()
    # The common numbers are each agent's exact outcomes on exactly those mazes.
    maze_probs = MazeProbs(common)
    for policy, (_, row) in zip(policies, table.iterrows(), strict=True):
        direct = summarize(maze_probs, maze_probs.probs(policy), decision=True)
        assert row["common_p_cheese"] == pytest.approx(direct.p_cheese, abs=1e-6)
        assert row["common_p_top_right"] == pytest.approx(direct.p_top_right, abs=1e-6)
        assert row["common_p_cheese_move_at_decision"] == pytest.approx(direct.p_cheese_move_at_decision, abs=1e-6)
        assert 0 <= row["in_p_cheese"] <= 1
    # Off its own distribution the whole-maze agent has no mazes at all: why the common test exists.
    whole = table[table["region"] == 25].iloc[0]
    assert whole["off_mazes"] == 0 and math.isnan(whole["off_p_cheese"])
    assert table[table["region"] == 1].iloc[0]["off_mazes"] >= len(common)
    figure = plots.region_curve_figure(table)
    assert [list(t.y) for t in figure.data][0] == list(table["common_p_cheese"])
    assert "common test" in figure.data[0].name


def test_eval_regions_defaults_to_the_bundled_agent_and_the_zoo(zoo: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # noqa: ANN001
    monkeypatch.setenv("MAZEWB_CHECKPOINT", str(zoo / "default.pt"))
    csv, html = tmp_path / "regions.csv", tmp_path / "regions.html"
    assert main(["eval-regions", "--seeds", "0:6", "--json", "--csv", str(csv), "--html", str(html)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [a["region"] for a in out["agents"]] == [1, 5, 25]
    assert [a["file"] for a in out["agents"]] == ["region1.pt", "default.pt", "region25.pt"]
    assert "outside the top-right 5x5" in out["common_test"]
    assert len({a["common_mazes"] for a in out["agents"]}) == 1
    table = pd.read_csv(csv)
    assert {"in_p_cheese", "common_p_cheese", "common_p_top_right", "common_p_cheese_move_at_decision"} <= set(table)
    assert table["common_p_top_right"].tolist() == pytest.approx([a["common_p_top_right"] for a in out["agents"]])
    assert "P(top-right first)" in html.read_text()
    assert main(["eval-regions", "--seeds", "0:6", "--common-region", "30"]) == 2
    assert "common test's region must be from 1 to 25" in capsys.readouterr().err
