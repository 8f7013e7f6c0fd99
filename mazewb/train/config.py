"""The trainers' settings: plain dataclasses (no torch here), so the CLI can build its
``mazewb train`` options without importing the trainers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FastConfig:
    """Settings of a fast-trainer run (all saved in the run's checkpoints)."""

    name: str = "fast"
    runs_dir: str = "runs"
    region: int = 5  # cheese in the maze's top-right region x region squares
    scale: int = 1  # IMPALA width multiplier (Langosco et al.: 4)
    samples: int = 30_000_000  # budget, in rendered squares (observations)
    batch_squares: int = 256  # a batch holds whole mazes until it has at least this many squares
    lr: float = 5e-4  # Adam
    lr_final: float = 5e-4  # linearly reached at the end of the budget
    adam_eps: float = 1e-5
    max_grad_norm: float = 1.0
    ema_decay: float = 0.0  # > 0: evaluate and ship a moving average of the weights (e.g. 0.998), not the last step's
    bc_coef: float = 1.0
    rl_coef: float = 0.0
    rl_objective: str = "log_value"  # or "value"
    gamma: float = 0.99  # discount of the exact chain objective
    curriculum_start: int = 25  # largest maze size at the start (odd, 3..25)
    curriculum_samples: int = 0  # samples over which the largest size grows to 25
    large_maze_bias: float = 0.0  # keep a level with probability (size / 25) ** bias; > 0 favours large mazes
    workers: int = 1
    threads: int = 2
    bf16: bool = True  # bf16 autocast; only pays where the CPU has bf16 matmul (AMX): 7x slower without
    shared_background: bool = True  # first block once per maze + windows around each mouse (exact, ~2x per step)
    device: str = ""  # default: CUDA when present, else CPU
    eval_seeds: str = "0:50"  # held-out level seeds (training uses seeds >= 1,000,000)
    eval_every_s: float = 600.0
    save_every_s: float = 180.0
    log_every_s: float = 30.0
    seed: int = 0
    init: str = ""  # start from these policy weights (a mazewb or Langosco checkpoint)


@dataclass
class PPOConfig:
    """PPO settings; defaults are the maze_I recipe."""

    name: str = "ppo"
    runs_dir: str = "runs"
    region: int = 5  # cheese in the maze's top-right region x region squares
    scale: int = 4  # IMPALA width multiplier
    total_steps: int = 80_000_000  # environment steps, all envs together
    num_envs: int = 512
    num_steps: int = 256  # steps per env per rollout
    epochs: int = 3
    minibatches: int = 16
    lr: float = 5e-4  # Adam, decayed linearly to 0 over total_steps
    adam_eps: float = 1e-5
    gamma: float = 0.999
    gae_lambda: float = 0.95
    clip: float = 0.2
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    norm_adv: bool = True
    clip_vloss: bool = True
    norm_reward: bool = True  # divide rewards by the running std of the discounted return
    bf16: bool = True  # bf16 autocast for the network (channels_last on CPU)
    device: str = ""  # default: CUDA when present, else CPU
    threads: int = 0  # torch CPU threads (0: torch's default)
    eval_seeds: str = "1000:1050"  # held-out level seeds for best.pt (none below 1,000,000 in training
    # with probability ~1 - 5e-4)
    eval_every_s: float = 900.0
    save_every_s: float = 300.0
    seed: int = 0
    init: str = ""  # start from these policy weights
