"""Loading and saving policies without running pickled code.

Two formats are read, both through ``torch.load(..., weights_only=True)``, which only rebuilds
tensors and plain containers and refuses anything else (so a crafted file cannot run code):

- Langosco et al.'s ``.pth`` files: a dict with ``model_state_dict`` (other entries, such as the
  optimizer state, are ignored). The scale is ``embedder.block1.conv.weight.shape[0] / 16``.
- mazewb's own format, written by ``save_policy``: ``{"format": "mazewb-policy-v1",
  "state_dict": {...}, "card": {...}}``, where the card is JSON-compatible metadata (architecture,
  scale, training settings, provenance, metrics).

A bare state dict (``torch.save(model.state_dict(), path)``) is read too. Every problem raises
``CheckpointError`` with a message naming it (the file, the key, the shapes).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mazewb.errors import CheckpointError  # noqa: F401 - re-exported
from mazewb.policy.impala import ImpalaPolicy
from mazewb.policy.moves import NUM_ACTIONS

FORMAT = "mazewb-policy-v1"
CHECKPOINT_ENV = "MAZEWB_CHECKPOINT"
"""Environment variable naming the checkpoint ``load_policy()`` uses when given no path."""
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default.pt"
"""The bundled default agent, relative to the repository root."""
MAX_UPLOAD_BYTES = 64 * 2**20
"""Default size limit for uploaded checkpoints (a scale-4 network is about 15 MB)."""

_SCALE_KEY = "embedder.block1.conv.weight"
_MAX_LISTED = 8  # keys listed per kind of problem in an error message




def default_checkpoint_path() -> Path:
    """``$MAZEWB_CHECKPOINT`` if set, else ``checkpoints/default.pt`` in the repository."""
    env = os.environ.get(CHECKPOINT_ENV)
    return Path(env) if env else DEFAULT_CHECKPOINT


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_policy(path: str | Path | None = None, device: torch.device | str | None = None) -> ImpalaPolicy:
    """Load a policy checkpoint (either format) onto ``device`` (default: CUDA if present, else CPU).

    With no path, loads ``$MAZEWB_CHECKPOINT`` or the bundled ``checkpoints/default.pt``.
    The returned policy is in eval mode and carries its model card in ``policy.card``.
    """
    if path is None:
        path = default_checkpoint_path()
        if not path.is_file():
            raise CheckpointError(
                f"no default checkpoint: {path} does not exist (set {CHECKPOINT_ENV} or pass a path; "
                "mazewb.policy.checkpoint.make_placeholder_checkpoint writes an untrained one)"
            )
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint file {str(path)!r} does not exist")
    if not path.is_file():
        raise CheckpointError(f"checkpoint path {str(path)!r} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {exc}") from None
    return _load(data, path.name, device)


def load_policy_bytes(
    data: bytes,
    name: str,
    device: torch.device | str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> ImpalaPolicy:
    """Load a checkpoint from uploaded bytes (``name``: the file name, for messages and the card).

    Same formats and checks as ``load_policy``; uploads over ``max_bytes`` are refused unread.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CheckpointError(f"{name}: expected the file's bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise CheckpointError(f"{name}: upload is {len(data):,} bytes, over the limit of {max_bytes:,}")
    return _load(bytes(data), name, device)


def _load(data: bytes, name: str, device: torch.device | str | None) -> ImpalaPolicy:
    obj = _torch_load(data, name)
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{name}: not a policy checkpoint: the file holds a {type(obj).__name__}, expected a dict"
        )
    digest = hashlib.sha256(data).hexdigest()
    if "format" in obj:
        if obj["format"] != FORMAT:
            raise CheckpointError(
                f"{name}: unknown checkpoint format {obj['format']!r} (expected {FORMAT!r})"
            )
        unknown = sorted(set(obj) - {"format", "state_dict", "card"}, key=str)
        if unknown:
            raise CheckpointError(f"{name}: unknown top-level entries {unknown} in a {FORMAT} file")
        if "state_dict" not in obj:
            raise CheckpointError(f"{name}: {FORMAT} file has no 'state_dict'")
        card = obj.get("card", {})
        if not isinstance(card, dict):
            raise CheckpointError(f"{name}: the model card must be a dict, got {type(card).__name__}")
        policy = _policy_from_state_dict(obj["state_dict"], name)
        if "scale" in card and card["scale"] != policy.scale:
            raise CheckpointError(
                f"{name}: card says scale {card['scale']!r}, weights have scale {policy.scale}"
            )
        policy.card = {**card, "file": name, "sha256": digest}
    elif "model_state_dict" in obj:
        policy = _policy_from_state_dict(obj["model_state_dict"], name)
        policy.card = {
            "source": "Langosco et al. checkpoint",
            "format": "langosco-pth",
            "architecture": "IMPALA-CNN",
            "scale": policy.scale,
            "file": name,
            "sha256": digest,
        }
    elif _SCALE_KEY in obj:
        policy = _policy_from_state_dict(obj, name)
        policy.card = {
            "source": "bare state dict",
            "format": "state-dict",
            "architecture": "IMPALA-CNN",
            "scale": policy.scale,
            "file": name,
            "sha256": digest,
        }
    else:
        keys = sorted(map(str, obj))[:_MAX_LISTED]
        raise CheckpointError(
            f"{name}: not a policy checkpoint: expected 'model_state_dict' (Langosco et al.) or "
            f"format {FORMAT!r} (mazewb); found keys {keys}"
        )
    return policy.to(device if device is not None else _default_device()).eval()


def _torch_load(data: bytes, name: str) -> Any:
    """``torch.load`` with ``weights_only=True``; every failure becomes a CheckpointError."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "Unsupported global" in text:
            # e.g. "Unsupported global: GLOBAL posix.system" or "Unsupported operand 149"
            found = re.search(r"Unsupported (global: GLOBAL \S+|[^.\n]*)", text)
            detail = found.group(0).strip() if found else "not tensors or plain data"
            raise CheckpointError(
                f"{name}: refused: the file contains pickled objects other than tensors and plain data, "
                f"which could run code when loaded ({detail})"
            ) from None
        raise CheckpointError(
            f"{name}: not a readable torch checkpoint (corrupt or truncated?): {text}"
        ) from None
    except Exception as exc:  # torch raises many types for damaged archives
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(
            f"{name}: cannot read the file as a torch checkpoint: it is corrupt, truncated or of another "
            f"kind ({type(exc).__name__}: {first_line})"
        ) from None


def _policy_from_state_dict(state_dict: Any, name: str) -> ImpalaPolicy:
    """A policy holding ``state_dict``'s weights, after checking keys, shapes and values."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{name}: the state dict is a {type(state_dict).__name__}, expected a dict")
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{name}: state dict key {key!r} is not a string")
        if not isinstance(value, Tensor):
            raise CheckpointError(
                f"{name}: state dict entry {key!r} is a {type(value).__name__}, not a tensor"
            )
    if _SCALE_KEY not in state_dict:
        raise CheckpointError(f"{name}: missing key {_SCALE_KEY!r}, needed to infer the network's scale")
    width = state_dict[_SCALE_KEY].shape[0] if state_dict[_SCALE_KEY].ndim else 0
    if width < 16 or width % 16:
        raise CheckpointError(
            f"{name}: {_SCALE_KEY} has {width} output channels; expected a positive multiple of 16 "
            f"(shape {tuple(state_dict[_SCALE_KEY].shape)})"
        )
    policy = ImpalaPolicy(scale=width // 16, num_actions=NUM_ACTIONS)
    expected = policy.state_dict()
    problems = []
    if unknown := sorted(set(state_dict) - set(expected)):
        problems.append(f"unknown keys {unknown[:_MAX_LISTED]}{' ...' if len(unknown) > _MAX_LISTED else ''}")
    if missing := [k for k in expected if k not in state_dict]:
        problems.append(f"missing keys {missing[:_MAX_LISTED]}{' ...' if len(missing) > _MAX_LISTED else ''}")
    for key, target in expected.items():
        if key in state_dict and state_dict[key].shape != target.shape:
            problems.append(
                f"wrong shape for {key}: checkpoint has {tuple(state_dict[key].shape)}, "
                f"a scale-{policy.scale} network needs {tuple(target.shape)}"
            )
    if problems:
        raise CheckpointError(f"{name}: does not match the IMPALA policy: " + "; ".join(problems))
    for key, value in state_dict.items():
        if not value.is_floating_point():
            raise CheckpointError(f"{name}: {key} has dtype {value.dtype}, expected floating point")
        if not torch.isfinite(value).all():
            raise CheckpointError(f"{name}: {key} contains NaN or infinite values")
    policy.load_state_dict(state_dict, strict=True)
    return policy


def save_policy(policy: ImpalaPolicy, path: str | Path, card: dict[str, Any] | None = None) -> Path:
    """Write ``policy`` in mazewb's format with model card ``card`` (JSON-compatible dict;
    default: ``policy.card``).

    The card gets ``architecture``, ``scale`` and ``num_actions`` filled in unless given; a
    ``scale`` that contradicts the weights is refused. The file is written atomically.
    """
    card = dict(policy.card if card is None else card)
    for key in ("file", "sha256"):  # describe the loaded file, not this one
        card.pop(key, None)
    card.setdefault("architecture", "IMPALA-CNN")
    card.setdefault("scale", policy.scale)
    card.setdefault("num_actions", policy.num_actions)
    if card["scale"] != policy.scale:
        raise CheckpointError(f"card says scale {card['scale']!r}, but the policy has scale {policy.scale}")
    try:
        card = json.loads(json.dumps(card, allow_nan=False))  # plain data only, so it loads safely
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the model card must be JSON-compatible plain data: {exc}") from None
    state_dict = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in policy.state_dict().items()}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "state_dict": state_dict, "card": card}, tmp)
    os.replace(tmp, path)
    return path


def make_placeholder_checkpoint(path: str | Path, seed: int = 0) -> Path:
    """Write a randomly initialised, UNTRAINED scale-1 policy (for development before training)."""
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        policy = ImpalaPolicy(scale=1)
    card = {
        "trained": False,
        "placeholder": True,
        "description": f"UNTRAINED placeholder: random weights (seed {seed}), not a maze-solving agent",
        "seed": seed,
    }
    return save_policy(policy, path, card)
