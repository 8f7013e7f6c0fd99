"""Pieces shared by the trainers: run directories, atomic checkpoints, CSV logs, move log-probs."""

from __future__ import annotations

import csv
import os
import platform
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mazewb.errors import ConfigError
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
    stay as given."""
    state = load_train_state(Path(config.runs_dir) / config.name / "last.pt")
    saved = type(config)(**state["config"])
    for key, value in (overrides or {}).items():
        if key not in overridable:
            raise ConfigError(f"cannot change {key!r} when resuming (only {', '.join(overridable)})")
        setattr(saved, key, value)
    saved.runs_dir, saved.name = config.runs_dir, config.name
    return saved, state


def load_train_state(path: str | Path) -> dict[str, Any]:
    """A training state written by a trainer (tensors and plain data only: loaded with
    ``weights_only=True``, so the file cannot run code)."""
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise ConfigError(f"{path}: not a mazewb training state (format {TRAIN_STATE_FORMAT!r})")
    return state


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


def parse_seeds(text: str) -> range:
    """``"A:B"`` -> ``range(A, B)``; ``"N"`` -> ``range(0, N)``."""
    try:
        if ":" in text:
            a, b = text.split(":", 1)
            return range(int(a), int(b))
        return range(int(text))
    except ValueError:
        raise ConfigError(f"seeds must look like A:B or N, got {text!r}") from None


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
    """``name`` if given, else CUDA when present, else CPU."""
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
