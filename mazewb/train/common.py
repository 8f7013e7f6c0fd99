"""Pieces shared by the trainers: run directories, atomic checkpoints, CSV logs, move log-probs."""

from __future__ import annotations

import csv
import ctypes
import dataclasses
import functools
import os
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mazewb.errors import CheckpointError, ConfigError
from mazewb.policy.archive import CheckpointArchive, TensorSpec
from mazewb.policy.checkpoint import check_policy_specs
from mazewb.policy.moves import ACTION_MOVE_MATRIX

TRAIN_STATE_FORMAT = "mazewb-train-v1"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` through a temporary file and a rename, so a crash or an
    interruption never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def resumed_config(config: Any, overridable: tuple[str, ...], overrides: dict[str, Any] | None) -> tuple[Any, dict]:
    """The saved config and state of the run named by ``config`` (a trainer's config dataclass),
    with the few ``overridable`` settings replaced by ``overrides``; the run's name and folder
    stay as given. A saved config with unknown settings, or values of the wrong type, raises
    ``ConfigError``."""
    path = Path(config.runs_dir) / config.name / "last.pt"
    state = load_train_state(path)
    fields = {f.name: f for f in dataclasses.fields(config)}
    if unknown := sorted(set(state["config"]) - set(fields)):
        raise ConfigError(f"{path}: the saved config has unknown settings {_short(unknown)}")
    for key, value in state["config"].items():
        default = getattr(config, key)
        if not _same_kind(value, default):
            raise ConfigError(
                f"{path}: the saved setting {key!r} is {_short(value)}; expected a {type(default).__name__}"
            )
    saved = type(config)(**state["config"])
    for key, value in (overrides or {}).items():
        if key not in overridable:
            raise ConfigError(f"cannot change {key!r} when resuming (only {', '.join(overridable)})")
        setattr(saved, key, value)
    saved.runs_dir, saved.name = config.runs_dir, config.name
    return saved, state


def load_train_state(path: str | Path) -> dict[str, Any]:
    """A training state written by a trainer, read like a policy checkpoint: by
    :mod:`mazewb.policy.archive` (no pickled code runs; sizes, strides and storages checked before
    anything is allocated; the file and its tensors within ``MAX_TRAIN_STATE_BYTES``). The model
    must be an IMPALA state dict with finite weights, of the scale the saved config names.

    A file that is not an archive, or is damaged, raises ``CheckpointError``; one that is not a
    training state, or holds the wrong entries, raises ``ConfigError``."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_TRAIN_STATE_BYTES:
                raise CheckpointError(f"{path}: {size:,} bytes, over the limit of {MAX_TRAIN_STATE_BYTES:,}")
            archive = CheckpointArchive(f, str(path))
            root = archive.root
            if not isinstance(root, dict) or root.get("format") != TRAIN_STATE_FORMAT:
                raise ConfigError(f"{path}: not a mazewb training state (format {TRAIN_STATE_FORMAT!r})")
            _check_entries(root, path)
            scale = check_policy_specs(root["model"], archive, str(path))
            if "ema" in root and check_policy_specs(root["ema"], archive, f"{path} (moving average)") != scale:
                raise ConfigError(f"{path}: the saved moving average has another scale than the weights")
            if "scale" in root["config"] and root["config"]["scale"] != scale:
                raise ConfigError(
                    f"{path}: the saved config says scale {_short(root['config'].get('scale'))}, "
                    f"the saved weights have scale {scale}"
                )
            state = archive.materialise(MAX_TRAIN_STATE_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"nothing to resume: {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    for entry in ("model", "ema"):
        for key, value in state.get(entry, {}).items():
            if not torch.isfinite(value).all():
                raise ConfigError(f"{path}: the saved {_WEIGHTS[entry]} {key} contain NaN or infinite values")
    return state


_WEIGHTS = {"model": "weights", "ema": "moving average"}

MAX_TRAIN_STATE_BYTES = 512 * 2**20
"""Largest training state read, and the most its tensors may hold together (a scale-8 network
with Adam's two moments is about 180 MB; the bundled scale-1 run's is 7.5 MB)."""

_REQUIRED = {"config": dict, "model": dict, "optimizer": dict, "torch_rng": TensorSpec, "counters": dict}
_COUNTERS = {
    "fast": ("step", "samples", "mazes", "seconds", "segment"),
    "ppo": ("update", "global_step", "seconds", "segment"),
}
"""Counters each trainer's state holds."""


def _check_entries(root: dict, path: Path) -> None:
    """The entries every trainer's state holds, with the types it needs (before any tensor is read)."""
    for key, kind in _REQUIRED.items():
        if key not in root:
            raise ConfigError(f"{path}: the training state has no {key!r}")
        if not isinstance(root[key], kind):
            raise ConfigError(f"{path}: the training state's {key!r} is a {type(root[key]).__name__}")
    if not all(isinstance(k, str) for k in root["config"]):
        raise ConfigError(f"{path}: the saved config has keys that are not strings")
    trainer = root.get("trainer")
    if trainer not in _COUNTERS:
        raise ConfigError(f"{path}: the training state names trainer {_short(trainer)}; expected 'fast' or 'ppo'")
    counters = root["counters"]
    if not all(isinstance(k, str) and _is_number(v) for k, v in counters.items()):
        raise ConfigError(f"{path}: the saved counters must map names to numbers")
    if missing := [k for k in _COUNTERS[trainer] if k not in counters]:
        raise ConfigError(f"{path}: the saved counters lack {', '.join(missing)}")
    if not _is_number(root.get("best")):
        raise ConfigError(f"{path}: the saved best score must be a number, got {_short(root.get('best'))}")
    if not isinstance(root.get("last_eval", {}), dict):
        raise ConfigError(f"{path}: the saved last evaluation is not a dict")
    commands = root.get("commands", [])
    if not (isinstance(commands, list) and all(isinstance(c, str) for c in commands)):
        raise ConfigError(f"{path}: the saved commands are not a list of strings")
    if not isinstance(root.get("initial_weights", ""), str):
        raise ConfigError(f"{path}: the saved initial weights are not a string")
    if trainer == "ppo":
        norm = root.get("reward_norm")
        if not (isinstance(norm, dict) and all(_is_number(norm.get(k)) for k in ("mean", "var", "count"))):
            raise ConfigError(f"{path}: the saved reward normaliser lacks numbers 'mean', 'var', 'count'")
    rng = root["torch_rng"]
    if rng.dtype != torch.uint8 or len(rng.shape) != 1:
        raise ConfigError(f"{path}: the saved random state is not a 1-D byte tensor")
    optimizer = root["optimizer"]
    if not (isinstance(optimizer.get("state"), dict) and isinstance(optimizer.get("param_groups"), list)):
        raise ConfigError(f"{path}: the saved optimizer state lacks 'state' or 'param_groups'")


def restore_training(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any], path: Path
) -> None:
    """Put a loaded training state's weights, optimizer state and random state back; a state
    that does not fit (another optimizer, moments of the wrong shape) raises ``ConfigError``."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{path}: the saved training state does not fit this run: {_short(str(exc), 200)}") from None
    for group in optimizer.param_groups:
        for param in group["params"]:
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, Tensor) and value.dim() > 0 and value.shape != param.shape:
                    raise ConfigError(
                        f"{path}: the saved optimizer's {key!r} has shape {tuple(value.shape)} "
                        f"for a weight of shape {tuple(param.shape)}"
                    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a saved setting has the type of the setting's default (an int passes for a float)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return type(value) is type(default)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) and limit > 60 else repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def move_log_probs(logits: Tensor) -> Tensor:
    """(N, 5) log-probabilities of the moves (LEFT, DOWN, UP, RIGHT, NOOP) from (N, 15) action
    logits: log of the summed 15-way softmax, computed stably with logsumexp in float32."""
    logits = logits.float()
    mask = torch.tensor(ACTION_MOVE_MATRIX, device=logits.device)
    log_mask = torch.where(mask > 0, 0.0, float("-inf"))  # (15, 5)
    grouped = torch.logsumexp(logits.unsqueeze(-1) + log_mask, dim=1)  # (N, 5)
    return grouped - torch.logsumexp(logits, dim=-1, keepdim=True)


class CsvLog:
    """Append-only CSV log; the header is written once (columns fixed by the first row)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fields: list[str] | None = None
        if self.path.exists() and self.path.stat().st_size > 0:
            with self.path.open() as f:
                self._fields = next(csv.reader(f), None)

    def write(self, row: dict[str, Any]) -> None:
        row = {"time": round(time.time(), 1), **row}
        new = self._fields is None
        if new:
            self._fields = list(row)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


MAX_SEED = 2**31 - 2
"""Largest procgen level seed."""


def parse_seeds(text: str) -> range:
    """``"A:B"`` -> ``range(A, B)``; ``"N"`` -> ``range(0, N)``; a range that is empty or outside
    procgen's seeds (0 to ``MAX_SEED``) raises ``ConfigError``."""
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            seeds = range(int(a), int(b))
        else:
            seeds = range(int(text))
    except ValueError:
        raise ConfigError(f"seeds must look like A:B or N, got {text[:40]!r}") from None
    if not 0 <= seeds.start < seeds.stop <= MAX_SEED + 1:
        raise ConfigError(f"seeds {text[:40]!r} must be a non-empty range A:B with 0 <= A < B <= {MAX_SEED + 1:,}")
    return seeds


def hardware_description(device: torch.device) -> str:
    """The CPU model, core count and torch threads (and the GPU's name when training on one)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``); False where
    there is no glibc. Training allocates tensors of a different size every step (mazes differ),
    and glibc keeps the freed space: a fast-trainer run grew from 1.4 to 3 GB in 15 minutes, of
    which ``malloc_trim`` returned 1.6 GB at once. Costs milliseconds."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc with ``malloc_trim``, loaded once; None on other systems."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 (an AttributeError here means no malloc_trim)
    except (OSError, AttributeError):
        return None
    return libc


FROM_SCRATCH = "random (trained from scratch)"
"""A model card's ``initial_weights`` for a run that began from random weights."""


def portable_path(path: str | Path) -> str:
    """A path for a model card: as given when relative (runs/NAME/best.pt), only the file's name
    when absolute, so a card never carries a machine's paths."""
    path = Path(path)
    return path.name if path.is_absolute() else path.as_posix()


class StopSignals:
    """Turns SIGINT and SIGTERM into a flag the training loop polls between steps, so a stop
    request always ends with a clean checkpoint (and never interrupts a write half-way).

    Use as a context manager; outside the main thread it installs nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.requested:  # a second request: stop at once
            raise KeyboardInterrupt
        self.requested = True
        print(f"signal {signum}: stopping after this step and saving", flush=True)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


class RunLock:
    """``runs/<name>/lock`` holding the training process's id, so two processes never train the
    same run at once (a lock left by a dead process is taken over)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "lock"

    def __enter__(self) -> RunLock:
        if self.path.exists():
            try:
                pid = int(self.path.read_text().strip() or 0)
            except ValueError:
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise RuntimeError(f"{self.path.parent} is being trained by process {pid}; stop it first")
        self.path.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def device_for(name: str | None = None) -> torch.device:
    """``name`` if given, else CUDA when present, else CPU; a device this machine does not have
    is a ``ConfigError``."""
    if not name:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name[:40]!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name[:40]!r}: CUDA is not available on this machine (use --device cpu)")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {name[:40]!r}: only cpu and cuda are supported")
    return device
