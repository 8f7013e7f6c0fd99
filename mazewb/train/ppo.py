"""PPO on procgen maze with the cheese in the top-right region, read top to bottom like CleanRL's
``ppo_procgen.py``: rollout -> advantages (GAE) -> clipped-objective update, repeated.

Defaults are Langosco et al.'s maze_I recipe (../shared/reference/RESEARCH.md): IMPALA scale 4,
hard mode, unlimited levels, cheese region 5, 512 envs x 256 steps, 3 epochs of 16 minibatches,
Adam 5e-4 decayed linearly to 0, gamma 0.999, GAE lambda 0.95, clip 0.2, entropy 0.01, value 0.5,
reward normalisation, 80M environment steps. That is about 12 A100-hours; on a CPU use the fast
trainer (``mazewb.train.fast``) or small settings here.

A run lives in ``runs/<name>/``: ``last.pt`` (weights, optimizer, reward normaliser, random state,
counters, config; written atomically every ``save_every_s``, resumed with ``--resume``; the games
themselves restart on fresh levels), ``best.pt`` (best exact in-distribution success on held-out
seeds, with a model card), ``log.csv`` and, when the tensorboard package is installed, TensorBoard
event files.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributions import Categorical
from tqdm import tqdm

from mazewb.env import MazeVecEnv
from mazewb.errors import ConfigError
from mazewb.policy.checkpoint import load_policy, save_policy
from mazewb.policy.impala import ImpalaPolicy
from mazewb.train.common import (
    TRAIN_STATE_FORMAT,
    CsvLog,
    RunLock,
    StopSignals,
    atomic_save,
    device_for,
    hardware_description,
    parse_seeds,
    release_free_memory,
    restore_training,
    resumed_config,
)
from mazewb.train.config import PPOConfig
from mazewb.train.evaluate import Evaluator

RESUME_OVERRIDABLE = ("total_steps", "ent_coef", "vf_coef", "eval_seeds", "eval_every_s", "save_every_s",
                      "device", "threads", "bf16")


class RewardNormalizer:
    """Scales rewards by the running standard deviation of the discounted return, like gym's
    ``NormalizeReward`` (CleanRL's procgen setup): returns are tracked per env and reset at
    episode ends."""

    def __init__(self, num_envs: int, gamma: float, epsilon: float = 1e-8) -> None:
        self.gamma, self.epsilon = gamma, epsilon
        self.returns = np.zeros(num_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        batch_mean, batch_var, n = float(self.returns.mean()), float(self.returns.var()), len(self.returns)
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.count = total
        self.returns[dones] = 0.0
        return rewards / math.sqrt(self.var + self.epsilon)

    def state(self) -> dict[str, float]:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load(self, state: dict[str, float]) -> None:
        self.mean, self.var, self.count = state["mean"], state["var"], state["count"]


def obs_to_tensor(obs: np.ndarray | torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 (N, 64, 64, 3) -> float (N, 3, 64, 64) in [0, 1]."""
    x = torch.as_tensor(obs, device=device).permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x.contiguous()


class PPOTrainer:
    """One PPO run. ``train()`` runs until ``total_steps`` or ``max_seconds``, checkpointing."""

    def __init__(self, config: PPOConfig, resume: bool = False, overrides: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(config.runs_dir) / config.name
        state = None
        if resume:
            config, state = resumed_config(config, RESUME_OVERRIDABLE, overrides)
        self.config = config
        if config.num_envs * config.num_steps % config.minibatches:
            raise ConfigError("num_envs * num_steps must be divisible by minibatches")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = device_for(config.device or None)
        self.channels_last = config.bf16 and self.device.type == "cpu"
        if config.init and not resume:
            self.agent = load_policy(config.init, device=self.device)
        else:
            torch.manual_seed(config.seed)
            self.agent = ImpalaPolicy(scale=config.scale).to(self.device)
        self.agent.train()
        if self.channels_last:
            self.agent = self.agent.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.optimizer = torch.optim.Adam(self.agent.parameters(), lr=config.lr, eps=config.adam_eps)
        self.reward_norm = RewardNormalizer(config.num_envs, config.gamma)
        self.counters: dict[str, Any] = {"update": 0, "global_step": 0, "seconds": 0.0, "segment": 0}
        self.best = -math.inf
        if state is not None:
            restore_training(self.agent, self.optimizer, state, self.run_dir / "last.pt")
            self.reward_norm.load(state["reward_norm"])
            self.counters = dict(state["counters"])
            self.counters["segment"] += 1
            self.best = float(state["best"])
        with (self.run_dir / "config.json").open("w") as f:
            json.dump(asdict(config), f, indent=2)
        self.log = CsvLog(self.run_dir / "log.csv")
        self.writer = _tensorboard_writer(self.run_dir)
        self.evaluator: Evaluator | None = None

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _policy(self, x: torch.Tensor) -> tuple[Categorical, torch.Tensor]:
        """The 15-way action distribution and the value (float32) for observations ``x``."""
        with self._autocast():
            logits, value = self.agent(x)
        return Categorical(logits=logits.float()), value.float()

    def save(self) -> Path:
        return atomic_save(
            {
                "format": TRAIN_STATE_FORMAT,
                "trainer": "ppo",
                "config": asdict(self.config),
                "model": {k: v.detach().cpu().contiguous() for k, v in self.agent.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "reward_norm": self.reward_norm.state(),
                "torch_rng": torch.get_rng_state(),
                "counters": dict(self.counters),
                "best": self.best,
            },
            self.run_dir / "last.pt",
        )

    def evaluate(self) -> dict[str, Any]:
        """Exact held-out evaluation; keeps ``best.pt`` by in-distribution P(cheese)."""
        if self.evaluator is None:
            self.evaluator = Evaluator(parse_seeds(self.config.eval_seeds), self.config.region)
        metrics = self.evaluator(self.agent, fast=False)
        p = metrics["in_distribution"]["p_cheese"]
        if p > self.best:
            self.best = p
            card = {
                "trained": True,
                "trainer": "mazewb.train.ppo",
                "method": "PPO on procgen maze (hard), cheese moved into the top-right region",
                "cheese_region": self.config.region,
                "distribution_mode": "hard",
                "env_steps": self.counters["global_step"],
                "wall_time_s": round(self.counters["seconds"], 1),
                "hardware": hardware_description(self.device),
                "config": asdict(self.config),
                "eval": {"eval_seeds": self.config.eval_seeds, **metrics},
            }
            save_policy(self.agent, self.run_dir / "best.pt", card)
        return metrics

    def train(self, max_seconds: float | None = None, max_updates: int | None = None) -> dict[str, Any]:
        """Run updates until ``total_steps``, ``max_seconds`` or ``max_updates`` of this call; saves
        on the way and at the end (also on Ctrl-C or SIGTERM, after the update in progress)."""
        with RunLock(self.run_dir), StopSignals() as stop:
            return self._train(stop, max_seconds, max_updates)

    def _train(self, stop: StopSignals, max_seconds: float | None, max_updates: int | None) -> dict[str, Any]:
        cfg, device = self.config, self.device
        batch_size = cfg.num_envs * cfg.num_steps
        minibatch_size = batch_size // cfg.minibatches
        num_updates = cfg.total_steps // batch_size
        envs = MazeVecEnv(cfg.num_envs, cheese_region=cfg.region, seed=cfg.seed * 100_003 + self.counters["segment"])

        # Rollout storage: observations stay uint8 (512 x 256 x 12 KB = 1.6 GB at the recipe's size).
        obs = torch.zeros((cfg.num_steps, cfg.num_envs, 64, 64, 3), dtype=torch.uint8, device=device)
        actions = torch.zeros((cfg.num_steps, cfg.num_envs), dtype=torch.long, device=device)
        logprobs = torch.zeros((cfg.num_steps, cfg.num_envs), device=device)
        rewards = torch.zeros((cfg.num_steps, cfg.num_envs), device=device)
        dones = torch.zeros((cfg.num_steps, cfg.num_envs), device=device)
        values = torch.zeros((cfg.num_steps, cfg.num_envs), device=device)

        next_obs = torch.as_tensor(envs.reset(), device=device)
        next_done = torch.zeros(cfg.num_envs, device=device)
        episode_returns: list[float] = []
        episode_lengths: list[int] = []
        start = last_save = last_eval = time.time()
        bar = tqdm(total=cfg.total_steps, initial=self.counters["global_step"], unit="step", unit_scale=True,
                   mininterval=1.0 if sys.stderr.isatty() else 60.0, dynamic_ncols=True)
        updates_here = 0
        try:
            while self.counters["update"] < num_updates and not stop.requested:
                if max_seconds is not None and time.time() - start >= max_seconds:
                    break
                if max_updates is not None and updates_here >= max_updates:
                    break
                t0 = time.time()
                # Linear learning-rate decay to 0 over the whole run.
                frac = 1.0 - self.counters["update"] / num_updates
                for group in self.optimizer.param_groups:
                    group["lr"] = frac * cfg.lr

                # 1. Rollout: num_steps steps of every env with the current policy.
                self.agent.eval()
                for t in range(cfg.num_steps):
                    obs[t] = next_obs
                    dones[t] = next_done
                    with torch.no_grad():
                        dist, value = self._policy(obs_to_tensor(next_obs, device, self.channels_last))
                        action = dist.sample()
                    actions[t], logprobs[t], values[t] = action, dist.log_prob(action), value
                    o, r, terminated, truncated, info = envs.step(action.cpu().numpy())
                    done = terminated | truncated
                    # Like CleanRL's procgen setup: scale by the return's running std, then clip.
                    r_train = np.clip(self.reward_norm(r, done), -10, 10) if cfg.norm_reward else r
                    rewards[t] = torch.as_tensor(r_train, device=device, dtype=torch.float32)
                    next_obs = torch.as_tensor(o, device=device)
                    next_done = torch.as_tensor(done, device=device, dtype=torch.float32)
                    for i in np.nonzero(done)[0]:
                        episode_returns.append(float(r[i]))  # maze pays only at the end
                        episode_lengths.append(int(info["lengths"][i]))
                self.counters["global_step"] += batch_size

                # 2. Advantages: generalized advantage estimation, bootstrapped from the last value.
                with torch.no_grad():
                    _, next_value = self._policy(obs_to_tensor(next_obs, device, self.channels_last))
                    advantages = torch.zeros_like(rewards)
                    last_gae = torch.zeros(cfg.num_envs, device=device)
                    for t in reversed(range(cfg.num_steps)):
                        if t == cfg.num_steps - 1:
                            next_nonterminal, next_values = 1.0 - next_done, next_value
                        else:
                            next_nonterminal, next_values = 1.0 - dones[t + 1], values[t + 1]
                        delta = rewards[t] + cfg.gamma * next_values * next_nonterminal - values[t]
                        last_gae = delta + cfg.gamma * cfg.gae_lambda * next_nonterminal * last_gae
                        advantages[t] = last_gae
                    returns = advantages + values

                # 3. Update: epochs of clipped-objective minibatch steps over the flattened batch.
                self.agent.train()
                b_obs = obs.reshape(batch_size, 64, 64, 3)
                b_actions, b_logprobs = actions.reshape(-1), logprobs.reshape(-1)
                b_adv, b_returns, b_values = advantages.reshape(-1), returns.reshape(-1), values.reshape(-1)
                clipfracs = []
                for _ in range(cfg.epochs):
                    order = torch.randperm(batch_size, device=device)
                    for begin in range(0, batch_size, minibatch_size):
                        mb = order[begin : begin + minibatch_size]
                        dist, new_value = self._policy(obs_to_tensor(b_obs[mb], device, self.channels_last))
                        new_logprob = dist.log_prob(b_actions[mb])
                        entropy = dist.entropy()
                        log_ratio = new_logprob - b_logprobs[mb]
                        ratio = log_ratio.exp()
                        with torch.no_grad():
                            approx_kl = ((ratio - 1) - log_ratio).mean()
                            clipfracs.append(((ratio - 1.0).abs() > cfg.clip).float().mean().item())
                        mb_adv = b_adv[mb]
                        if cfg.norm_adv:
                            mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                        pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
                        if cfg.clip_vloss:
                            v_clipped = b_values[mb] + (new_value - b_values[mb]).clamp(-cfg.clip, cfg.clip)
                            v_loss = 0.5 * torch.max((new_value - b_returns[mb]) ** 2,
                                                     (v_clipped - b_returns[mb]) ** 2).mean()
                        else:
                            v_loss = 0.5 * ((new_value - b_returns[mb]) ** 2).mean()
                        loss = pg_loss - cfg.ent_coef * entropy.mean() + cfg.vf_coef * v_loss
                        self.optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(self.agent.parameters(), cfg.max_grad_norm)
                        self.optimizer.step()

                # 4. Log, evaluate, checkpoint.
                self.counters["update"] += 1
                updates_here += 1
                elapsed = time.time() - t0
                self.counters["seconds"] += elapsed
                row = {
                    "update": self.counters["update"], "global_step": self.counters["global_step"],
                    "steps_per_s": round(batch_size / elapsed, 1), "lr": frac * cfg.lr,
                    "episodes": len(episode_returns),
                    "success": round(float(np.mean([x > 0 for x in episode_returns])), 4) if episode_returns else None,
                    "episode_length": round(float(np.mean(episode_lengths)), 1) if episode_lengths else None,
                    "pg_loss": pg_loss.item(), "v_loss": v_loss.item(), "entropy": entropy.mean().item(),
                    "approx_kl": approx_kl.item(), "clipfrac": float(np.mean(clipfracs)),
                }
                episode_returns, episode_lengths = [], []
                self.log.write(row)
                if self.writer is not None:
                    for key, value in row.items():
                        if isinstance(value, (int, float)) and key != "global_step":
                            self.writer.add_scalar(f"train/{key}", value, self.counters["global_step"])
                bar.update(batch_size)
                bar.set_postfix(success=row["success"], sps=row["steps_per_s"])
                print(json.dumps(row), flush=True)
                if time.time() - last_eval >= cfg.eval_every_s:
                    metrics = self.evaluate()
                    print(json.dumps({"eval": metrics, "global_step": self.counters["global_step"]}), flush=True)
                    release_free_memory()
                    last_eval = time.time()
                if time.time() - last_save >= cfg.save_every_s:
                    self.save()
                    last_save = time.time()
        except KeyboardInterrupt:
            print("interrupted: saving the run", flush=True)
        finally:
            bar.close()
            envs.close()
            self.save()
            if self.writer is not None:
                self.writer.close()
        return dict(self.counters)


def _tensorboard_writer(run_dir: Path):  # noqa: ANN202 - SummaryWriter or None
    """A TensorBoard writer when the optional ``tensorboard`` package is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tb"))
