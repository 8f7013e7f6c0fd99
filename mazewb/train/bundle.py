"""Promote a trained policy to a bundled agent: evaluate it exactly on held-out seeds and write
the checkpoint (mazewb format, model card inside) plus a Markdown model card beside it."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mazewb.policy.checkpoint import load_policy, save_policy
from mazewb.train.common import FROM_SCRATCH, parse_seeds, portable_path
from mazewb.train.evaluate import COMMON_REGION, Evaluator

TARGETS = {
    "in_distribution p_cheese": ">= 0.9",
    "off_distribution p_cheese": "between 0.2 and 0.9",
    "off_distribution p_top_right": ">= 0.1",
}
"""The bundled agent's targets (issue 4)."""
ZOO_TARGETS = {"in_distribution p_cheese": ">= 0.85"}
"""A zoo agent's bar (issue 11): it must have learned its own training distribution."""


def bundle(source: str | Path, dest: str | Path, seeds: str = "0:200", region: int | None = None,
           notes: str = "", initial_weights: str = "") -> dict[str, Any]:
    """Evaluate ``source`` on ``seeds`` (exact, fp32), write ``dest`` (.pt) and ``dest`` with
    suffix .md. ``initial_weights`` replaces the card's record of what the run started from (runs
    older than that record know only their ``--init`` path). Returns the card written."""
    policy = load_policy(source, device="cpu")
    card = dict(policy.card)
    region = int(card.get("cheese_region", 5)) if region is None else region
    started = time.time()
    metrics = Evaluator(parse_seeds(seeds), region, common_region=COMMON_REGION)(policy, fast=False, progress=True)
    dest = Path(dest)
    command = (
        f"mazewb eval --checkpoint {dest.as_posix()} --cheese-region {region} --seeds {seeds} "
        f"--common-region {COMMON_REGION} --json"
    )
    card.pop("eval", None)
    card.update(
        {
            "eval": {"seeds": seeds, "cheese_region": region, "precision": "fp32", **metrics},
            "eval_command": command,
            "eval_seconds": round(time.time() - started, 1),
            "source_checkpoint": portable_path(source),
            "notes": notes,
        }
    )
    if initial_weights:
        card["initial_weights"] = initial_weights
    save_policy(policy, dest, card)
    # The Markdown card describes the written file (as load_policy reports it), not the source.
    card.update({"file": dest.name, "sha256": hashlib.sha256(dest.read_bytes()).hexdigest()})
    dest.with_suffix(".md").write_text(model_card_markdown(card, dest.as_posix()))
    return card


def model_card_markdown(card: dict[str, Any], path: str = "checkpoints/default.pt") -> str:
    """A human-readable model card from a checkpoint's card dict."""
    ev = card.get("eval", {})
    ind, off, common = ev.get("in_distribution", {}), ev.get("off_distribution", {}), ev.get("common")
    cfg = card.get("config", {})

    def num(x: Any) -> str:
        return "n/a" if x is None or x != x else f"{x:.3f}"  # x != x: NaN (a set with no mazes)

    bundled = Path(path).name == "default.pt"  # the bundled agent, else a zoo agent
    hours = card.get("wall_time_s", 0) / 3600
    region = card.get("cheese_region")
    lines = [
        f"# Model card: `{path}`",
        "",
        (
            f"`{path}` is the default policy of `load_policy()` and of the web app."
            if bundled
            else f"`{path}` is a zoo agent: trained with the cheese in {_region_text(region)}, "
            "listed by the app's Model panel and compared with the others by `mazewb eval-regions`."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| architecture | IMPALA-CNN, scale {card.get('scale')} ({card.get('num_actions', 15)} actions) |",
        f"| method | {card.get('method', '?')} |",
        f"| trainer | `{card.get('trainer', '?')}` |",
        f"| cheese region (training) | {_region_text(region)} of the maze |",
        "| levels | procgen maze, hard mode, random levels with seeds >= 1,000,000 (seeds below held out) |",
        f"| samples | {card.get('samples', card.get('env_steps', '?'))} rendered squares (observations), "
        f"{card.get('steps', '?')} optimizer steps, {card.get('mazes', '?')} mazes |",
        f"| training wall time | {hours:.2f} h (network steps; evaluation not counted) |",
        f"| hardware | {card.get('hardware', '?')} |",
        f"| learning rate | Adam {cfg.get('lr')} -> {cfg.get('lr_final')} |",
        f"| batch | whole mazes, at least {cfg.get('batch_squares')} squares |",
        f"| initial weights | {_initial_weights(card)} |",
        "",
        "## Evaluation (exact outcome probabilities, fp32)",
        "",
        f"Held-out level seeds {ev.get('seeds')}. In distribution: the cheese moved to "
        + (
            "the top-right square. "
            if ev.get("cheese_region") == 1
            else f"a uniformly random open square of {_region_text(ev.get('cheese_region'))} (a fixed random "
            "stream per seed). "
        )
        + "Off distribution: the level's own cheese, kept when it lies outside that region and the "
        "maze has a decision square (none when the region covers the whole maze). "
        + (
            f"Common test (the same mazes for every agent): the level's own cheese outside the top-right "
            f"{COMMON_REGION} x {COMMON_REGION}, with a decision square. "
            if common
            else ""
        )
        + "Probabilities are solved exactly on the maze's Markov chain from the "
        "policy's move probabilities at every square (mouse drawn facing left), 500-step horizon.",
        "",
        "| | mazes | P(cheese) | P(top-right first) | P(cheese move at decision square) | optimal arg-max |",
        "|---|---|---|---|---|---|",
        f"| in distribution | {ind.get('mazes')} | {num(ind.get('p_cheese'))} | {num(ind.get('p_top_right'))} | - "
        f"| {num(ind.get('optimal_argmax'))} |",
        f"| off distribution | {off.get('mazes')} | {num(off.get('p_cheese'))} | {num(off.get('p_top_right'))} | "
        f"{num(off.get('p_cheese_move_at_decision'))} | {num(off.get('optimal_argmax'))} |",
        *(
            [
                f"| common test | {common.get('mazes')} | {num(common.get('p_cheese'))} | "
                f"{num(common.get('p_top_right'))} | {num(common.get('p_cheese_move_at_decision'))} | "
                f"{num(common.get('optimal_argmax'))} |"
            ]
            if common
            else []
        ),
        "",
        "In distribution by maze size (P(cheese), mazes): "
        + (", ".join(f"{k}x{k} {v['p_cheese']:.2f} ({v['mazes']})" for k, v in ind.get("by_size", {}).items()) or "n/a")
        + ".",
        "",
        (
            "Targets (issue 4): " + "; ".join(f"{k} {v}" for k, v in TARGETS.items())
            if bundled
            else "The zoo's bar (issue 11): " + "; ".join(f"{k} {v}" for k, v in ZOO_TARGETS.items())
        )
        + ".",
        "",
        "Reproduce the numbers:",
        "",
        "```",
        card.get("eval_command", ""),
        "```",
        "",
    ]
    if card.get("notes"):
        lines += ["## Notes", "", card["notes"], ""]
    lines += ["## Full card", "", "```json", json.dumps(card, indent=2), "```", ""]
    return "\n".join(lines)


def _region_text(region: Any) -> str:
    """A training region in words: region 1 is one square."""
    return "the top-right square" if region == 1 else f"the top-right {region} x {region}"


def _initial_weights(card: dict[str, Any]) -> str:
    """How the run began: the trainer's own record (``initial_weights``), else from ``--init``."""
    if card.get("initial_weights"):
        return str(card["initial_weights"])
    init = str(card.get("config", {}).get("init") or "")
    return FROM_SCRATCH if not init else f"warm-started from `{init}` (see the notes)"
