"""The fast trainer: behavioural cloning and exact policy gradient on whole known mazes.

Each step takes a batch of whole mazes from worker processes (``mazewb.train.data``): the mouse
rendered on every open square, the cheese in the top-right ``region``. The loss is

    bc_coef * cross-entropy(move probabilities, shortest-path move to the cheese)
  + rl_coef * exact chain loss (``mazewb.train.exact``: -mean log V, V the discounted value)

Move probabilities are sums over the 15-way softmax (``move_log_probs``). Behavioural cloning gets
the network past the perception plateau (it must first find a 2-3 pixel mouse); the exact chain
objective then shapes the policy by reward, without sampling noise.

A run lives in ``runs/<name>/``: ``last.pt`` (everything needed to resume: weights, optimizer,
random state, counters, config; written atomically every ``save_every_s``), ``best.pt`` (the
policy, or with ``ema_decay`` the moving average of its weights, with the best exact
in-distribution success on held-out seeds, in mazewb's checkpoint format with a model card),
``log.csv`` and ``eval.csv``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mazewb.errors import ConfigError
from mazewb.policy.checkpoint import load_policy, save_policy
from mazewb.policy.impala import ImpalaPolicy
from mazewb.policy.incremental import forward_shared_background
from mazewb.train.common import (
    FROM_SCRATCH,
    TRAIN_STATE_FORMAT,
    CsvLog,
    RunLock,
    StopSignals,
    atomic_save,
    device_for,
    hardware_description,
    move_log_probs,
    parse_seeds,
    portable_path,
    release_free_memory,
    restore_training,
    resumed_config,
)
from mazewb.train.config import FastConfig
from mazewb.train.data import BatchProducer, MazeBatch
from mazewb.train.evaluate import COMMON_REGION, Evaluator
from mazewb.train.exact import rl_loss

RESUME_OVERRIDABLE = (
    "samples", "lr", "lr_final", "bc_coef", "rl_coef", "rl_objective", "gamma", "workers", "threads",
    "bf16", "shared_background", "eval_seeds", "eval_every_s", "save_every_s", "log_every_s", "batch_squares",
    "curriculum_start", "curriculum_samples", "large_maze_bias", "max_grad_norm", "ema_decay", "device",
)
"""Settings a resumed run may change (the rest must stay as the run began)."""


def curriculum_max_size(config: FastConfig, samples: int) -> int:
    """Largest maze size (odd, 3..25) allowed at ``samples``: grows linearly from
    ``curriculum_start`` to 25 over ``curriculum_samples``."""
    if config.curriculum_samples <= 0 or samples >= config.curriculum_samples:
        return 25
    size = config.curriculum_start + (25 - config.curriculum_start) * samples / config.curriculum_samples
    return max(3, min(25, int(size) | 1))


def learning_rate(config: FastConfig, samples: int) -> float:
    frac = min(1.0, samples / max(1, config.samples))
    return config.lr + (config.lr_final - config.lr) * frac



def initial_weights(init: str, init_card: dict[str, Any] | None, region: int) -> str:
    """What a run started from, for its model card. Continuing a from-scratch run of the same
    region (``--init`` its own committed weights, e.g. on a fresh machine) is still from scratch;
    any other ``--init`` is a warm start."""
    if not init:
        return FROM_SCRATCH
    card = init_card or {}
    name = portable_path(init)
    if str(card.get("initial_weights", "")).startswith(FROM_SCRATCH) and card.get("cheese_region") == region:
        return f"{FROM_SCRATCH}; continued from `{name}` at {card.get('samples')} samples"
    return f"warm-started from `{name}` (a region-{card.get('cheese_region', '?')} agent; see the notes)"


def _portable_command(command: str) -> str:
    """A recorded command with the program path (older runs stored ``sys.argv[0]``) shown as
    ``mazewb``, so model cards never carry a machine's paths."""
    words = shlex.split(command)
    if words and (words[0].endswith("__main__.py") or words[0].endswith("/mazewb")):
        words[0] = "mazewb"
    return shlex.join(words)


class FastTrainer:
    """One run: model, optimizer, counters and the data workers. ``train()`` runs until the
    sample budget or ``max_seconds`` is spent, checkpointing as it goes."""

    def __init__(self, config: FastConfig, resume: bool = False, overrides: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(config.runs_dir) / config.name
        state = None
        if resume:
            config, state = resumed_config(config, RESUME_OVERRIDABLE, overrides)
        if not config.large_maze_bias >= 0:
            raise ConfigError(f"large_maze_bias must be >= 0, got {config.large_maze_bias}")
        if not 0 <= config.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {config.ema_decay}")
        self.config = config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(config.threads)
        self.device = device_for(config.device or None)
        if config.init and not resume:
            self.model = load_policy(config.init, device=self.device)
            if self.model.scale != config.scale:
                raise ConfigError(f"--init has scale {self.model.scale}, the run asks for {config.scale}")
        else:
            torch.manual_seed(config.seed)
            self.model = ImpalaPolicy(scale=config.scale).to(self.device)
        self.model.train()
        if self.device.type == "cpu":
            # channels_last trains ~1.45x faster than NCHW in fp32 too (measured on an AMD EPYC, 2 threads)
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr, eps=config.adam_eps)
        self.counters = {"step": 0, "samples": 0, "mazes": 0, "seconds": 0.0, "segment": 0}
        if config.init and not resume and self.model.card.get("trainer") == "mazewb.train.fast":
            # Continuing from a bundled agent: carry its totals, so the card stays cumulative and the
            # curriculum and learning-rate schedule pick up where its run stopped.
            card = self.model.card
            self.counters.update(
                step=int(card.get("steps", 0)), samples=int(card.get("samples", 0)),
                mazes=int(card.get("mazes", 0)), seconds=float(card.get("wall_time_s", 0.0)), segment=1,
            )
        self.initial_weights = initial_weights(
            config.init, self.model.card if config.init and not resume else None, config.region
        )
        self.best = -math.inf
        self.last_eval: dict[str, Any] = {}
        self.commands: list[str] = []  # the command line of every segment of this run
        if state is not None:
            restore_training(self.model, self.optimizer, state, self.run_dir / "last.pt")
            self.counters = dict(state["counters"])
            self.counters["segment"] += 1
            self.best = float(state["best"])
            # Runs saved before the card said so: only the --init path is known.
            self.initial_weights = state.get("initial_weights", self.initial_weights)
            if state["config"]["eval_seeds"] != config.eval_seeds:
                self.best = -math.inf  # scores on other seeds are not comparable
            self.last_eval = dict(state.get("last_eval", {}))
            self.commands = [_portable_command(c) for c in state.get("commands", [])]
        self.ema = self._moving_average(state)
        # Record the command as a user would type it, never this machine's paths.
        self.commands.append(shlex.join(["mazewb", *sys.argv[1:]]))
        with (self.run_dir / "config.json").open("w") as f:
            json.dump(asdict(config), f, indent=2)
        self.log = CsvLog(self.run_dir / "log.csv")
        self.eval_log = CsvLog(self.run_dir / "eval.csv")
        self.evaluator: Evaluator | None = None

    def _moving_average(self, state: dict[str, Any] | None) -> ImpalaPolicy | None:
        """The averaged weights (``ema_decay`` > 0): the saved average when resuming a run that kept
        one, else a copy of the current weights."""
        if self.config.ema_decay <= 0:
            return None
        ema = copy.deepcopy(self.model).requires_grad_(False)
        if state is not None and "ema" in state:
            ema.load_state_dict(state["ema"])  # keys, shapes, scale and values checked by load_train_state
        return ema

    def _update_average(self) -> None:
        # On a plateau at a small learning rate the last step's weights wander between evaluations
        # (+-0.02 in P(cheese)); their average (Polyak averaging) moves less from one to the next.
        if self.ema is None:
            return
        with torch.no_grad():
            for avg, new in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                avg.lerp_(new, 1.0 - self.config.ema_decay)

    def shipped_model(self) -> ImpalaPolicy:
        """The weights that are evaluated and saved as ``best.pt``: the average when there is one."""
        return self.ema if self.ema is not None else self.model

    # --- one step -------------------------------------------------------------------
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def step(self, batch: MazeBatch) -> dict[str, float]:
        """One optimizer step on ``batch``; returns the step's losses and accuracy."""
        cfg = self.config
        x = torch.as_tensor(batch.obs, device=self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if self.device.type == "cpu":
            x = x.contiguous(memory_format=torch.channels_last)
        target = torch.as_tensor(batch.target, device=self.device)
        lr = learning_rate(cfg, self.counters["samples"])
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self._autocast():
            if cfg.shared_background:
                # The squares of one maze differ only around the mouse: the first block runs once per
                # maze and on small windows (same numbers within float rounding; ~2x per step).
                logits, _ = forward_shared_background(self.model, x, torch.as_tensor(batch.groups, device=x.device))
            else:
                logits, _ = self.model(x)
        logp = move_log_probs(logits)
        bc = F.nll_loss(logp, target)
        loss = cfg.bc_coef * bc
        rl = torch.zeros(())
        if cfg.rl_coef > 0:
            rl = rl_loss(logp.exp(), batch, cfg.gamma, cfg.rl_objective).float()
            loss = loss + cfg.rl_coef * rl
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self._update_average()
        self.counters["step"] += 1
        self.counters["samples"] += batch.num_squares
        self.counters["mazes"] += batch.num_mazes
        accuracy = (logp.argmax(dim=1) == target).float().mean()
        return {
            "loss": loss.item(), "bc": bc.item(), "rl": rl.item(), "accuracy": accuracy.item(),
            "grad_norm": float(grad_norm), "lr": lr,
        }

    # --- checkpoints ----------------------------------------------------------------
    def save(self) -> Path:
        """Write ``last.pt``: everything needed to continue this run."""
        return atomic_save(
            {
                "format": TRAIN_STATE_FORMAT,
                "trainer": "fast",
                "config": asdict(self.config),
                "model": _cpu_state(self.model),
                "optimizer": self.optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "counters": dict(self.counters),
                "best": self.best,
                "initial_weights": self.initial_weights,
                "last_eval": self.last_eval,
                "commands": self.commands,
                **({"ema": _cpu_state(self.ema)} if self.ema is not None else {}),
            },
            self.run_dir / "last.pt",
        )

    def card(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The model card of a policy saved from this run."""
        cfg = self.config
        method = "behavioural cloning towards the shortest-path move to the cheese"
        if cfg.rl_coef > 0:
            method += f" + exact chain policy gradient ({cfg.rl_objective}, gamma {cfg.gamma}, coef {cfg.rl_coef})"
        method += " on whole known mazes (every open square rendered by procgen)"
        if self.ema is not None:
            method += f"; the weights are a moving average of the trained ones (decay {cfg.ema_decay} per step)"
        return {
            "trained": True,
            "trainer": "mazewb.train.fast",
            "method": method,
            "cheese_region": cfg.region,
            "distribution_mode": "hard",
            "samples": self.counters["samples"],
            "steps": self.counters["step"],
            "mazes": self.counters["mazes"],
            "wall_time_s": round(self.counters["seconds"], 1),
            "hardware": hardware_description(self.device),
            "train_commands": self.commands,
            "initial_weights": self.initial_weights,
            "config": asdict(cfg),
            "eval": metrics,
        }

    def evaluate(self) -> dict[str, Any]:
        """Exact held-out evaluation (fp32); updates ``best.pt`` when in-distribution success improves."""
        if self.evaluator is None:
            # The common test too: the same mazes for every region, so runs can be compared as they train.
            self.evaluator = Evaluator(
                parse_seeds(self.config.eval_seeds), self.config.region, common_region=COMMON_REGION
            )
        metrics = self.evaluator(self.shipped_model(), fast=False)
        self.last_eval = {"samples": self.counters["samples"], **metrics}
        ind, off, common = metrics["in_distribution"], metrics["off_distribution"], metrics["common"]
        self.eval_log.write(
            {
                "step": self.counters["step"], "samples": self.counters["samples"],
                "seconds": round(self.counters["seconds"], 1),
                "p_cheese": ind["p_cheese"], "optimal_argmax": ind["optimal_argmax"],
                "off_p_cheese": off.get("p_cheese"), "off_p_top_right": off.get("p_top_right"),
                "off_cheese_move_at_decision": off.get("p_cheese_move_at_decision"),
                "common_p_cheese": common["p_cheese"], "common_p_top_right": common["p_top_right"],
                "common_cheese_move_at_decision": common["p_cheese_move_at_decision"],
            }
        )
        if ind["p_cheese"] > self.best:
            self.best = ind["p_cheese"]
            card = self.card({"eval_seeds": self.config.eval_seeds, **metrics})
            save_policy(self.shipped_model(), self.run_dir / "best.pt", card)
        return metrics

    # --- the loop -------------------------------------------------------------------
    def train(self, max_seconds: float | None = None, max_steps: int | None = None) -> dict[str, Any]:
        """Train until the sample budget, ``max_seconds`` of this call or ``max_steps`` of this
        call; checkpoints on the way and at the end (also on Ctrl-C or SIGTERM, after the step
        in progress). Refuses to run while another process trains the same run."""
        with RunLock(self.run_dir), StopSignals() as stop:
            return self._train(stop, max_seconds, max_steps)

    def _train(self, stop: StopSignals, max_seconds: float | None, max_steps: int | None) -> dict[str, Any]:
        cfg = self.config
        producer = BatchProducer(
            seed=cfg.seed * 100_003 + self.counters["segment"],  # a fresh, reproducible stream per resume
            region=cfg.region,
            batch_squares=cfg.batch_squares,
            max_size=curriculum_max_size(cfg, self.counters["samples"]),
            workers=cfg.workers,
            large_maze_bias=cfg.large_maze_bias,
        )
        start = time.time()
        last_save = last_log = last_eval = time.time()
        window = {"samples": 0, "time": time.time(), "loss": 0.0, "bc": 0.0, "rl": 0.0, "accuracy": 0.0, "n": 0}
        steps_here = 0
        bar = tqdm(
            total=cfg.samples, initial=self.counters["samples"], unit="obs", unit_scale=True,
            mininterval=1.0 if sys.stderr.isatty() else 60.0, dynamic_ncols=True,
        )
        try:
            while self.counters["samples"] < cfg.samples and not stop.requested:
                if max_seconds is not None and time.time() - start >= max_seconds:
                    break
                if max_steps is not None and steps_here >= max_steps:
                    break
                t0 = time.time()
                producer.set_max_size(curriculum_max_size(cfg, self.counters["samples"]))
                batch = producer.get()
                stats = self.step(batch)
                steps_here += 1
                self.counters["seconds"] += time.time() - t0
                bar.update(batch.num_squares)
                window["samples"] += batch.num_squares
                window["n"] += 1
                for key in ("loss", "bc", "rl", "accuracy"):
                    window[key] += stats[key]
                now = time.time()
                if now - last_log >= cfg.log_every_s:
                    n = window["n"]
                    row = {
                        "step": self.counters["step"], "samples": self.counters["samples"],
                        "seconds": round(self.counters["seconds"], 1),
                        "samples_per_s": round(window["samples"] / (now - window["time"]), 1),
                        "max_size": curriculum_max_size(cfg, self.counters["samples"]),
                        **{k: round(window[k] / n, 5) for k in ("loss", "bc", "rl", "accuracy")},
                        "lr": stats["lr"],
                    }
                    self.log.write(row)
                    bar.set_postfix(
                        acc=row["accuracy"], bc=row["bc"], sps=row["samples_per_s"], best=round(self.best, 3)
                    )
                    print(json.dumps(row), flush=True)
                    window = {"samples": 0, "time": now, "loss": 0.0, "bc": 0.0, "rl": 0.0, "accuracy": 0.0, "n": 0}
                    last_log = now
                    release_free_memory()
                if now - last_eval >= cfg.eval_every_s:
                    t_eval = time.time()
                    metrics = self.evaluate()
                    print(json.dumps({"eval": metrics, "samples": self.counters["samples"],
                                      "eval_s": round(time.time() - t_eval, 1)}), flush=True)
                    release_free_memory()
                    last_eval = time.time()
                if now - last_save >= cfg.save_every_s:
                    self.save()
                    last_save = time.time()
            spent = self.counters["samples"] >= cfg.samples and steps_here and not stop.requested
            if spent and self.last_eval.get("samples") != self.counters["samples"]:
                # The budget is spent: the last (most annealed) weights get their evaluation too.
                print(json.dumps({"eval": self.evaluate(), "samples": self.counters["samples"]}), flush=True)
        except KeyboardInterrupt:
            print("interrupted: saving the run", flush=True)
        finally:
            bar.close()
            producer.close()
            self.save()
        return dict(self.counters)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def config_from_overrides(overrides: dict[str, Any]) -> FastConfig:
    """A FastConfig with the given fields changed (unknown names are an error)."""
    names = {f.name for f in dataclasses.fields(FastConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"unknown fast-trainer settings {unknown}")
    return FastConfig(**overrides)
