"""Loading and saving policies without running pickled code or trusting declared sizes.

Files are read by :mod:`mazewb.policy.archive`, which unpickles only tensor descriptions and
plain data (any other pickled object is refused, so a crafted file cannot run code). Keys,
shapes, dtypes, strides and storage sizes are checked against the IMPALA network of the scale
the file declares (scale 1 to ``MAX_SCALE``) before the network is allocated; then each weight
is read from its record, checked finite and copied in. Three layouts are read:

- Langosco et al.'s ``.pth`` files: a dict with ``model_state_dict`` (other entries, such as the
  optimizer state, are ignored and never materialised). The scale is
  ``embedder.block1.conv.weight.shape[0] / 16``.
- mazewb's own format, written by ``save_policy``: ``{"format": "mazewb-policy-v1",
  "state_dict": {...}, "card": {...}}``, where the card is JSON-compatible metadata (architecture,
  scale, training settings, provenance, metrics).
- a bare state dict (``torch.save(model.state_dict(), path)``).

Weights with NaN or infinite values are refused (they would make every move probability NaN).
Every problem raises ``CheckpointError`` with a message naming it (the file, the key, the shapes).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

import torch

from mazewb.errors import CheckpointError
from mazewb.policy.archive import CheckpointArchive, TensorSpec, is_float
from mazewb.policy.impala import ImpalaPolicy
from mazewb.policy.moves import NUM_ACTIONS

FORMAT = "mazewb-policy-v1"
CHECKPOINT_ENV = "MAZEWB_CHECKPOINT"
"""Environment variable naming the checkpoint ``load_policy()`` uses when given no path."""
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "default.pt"
"""The bundled default agent, relative to the repository root."""
MAX_UPLOAD_BYTES = 64 * 2**20
"""Default size limit for uploaded checkpoints (a scale-4 network is about 15 MB)."""

MAX_SCALE = 8
"""Largest network scale loaded (channel widths 16/32/32 times the scale): a bound on what a
file can make mazewb allocate. Langosco et al.'s agents are scale 4, mazewb's scale 1."""

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
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
            f.seek(0)
            # The archive is read record by record from the file: only what is checked and
            # needed (the weights, not an optimizer's state) is ever in memory.
            return _load(f, path.name, digest, device)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {str(path)!r}: {exc.strerror or exc}") from None


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
    data = bytes(data)
    return _load(data, name, hashlib.sha256(data).hexdigest(), device)


def _load(source: bytes | IO[bytes], name: str, digest: str, device: torch.device | str | None) -> ImpalaPolicy:
    archive = CheckpointArchive(source, name)
    obj = archive.root
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{name}: not a policy checkpoint: the file holds a {_kind(obj)}, expected a dict"
        )
    if "format" in obj:
        if obj["format"] != FORMAT:
            raise CheckpointError(
                f"{name}: unknown checkpoint format {_short(obj['format'])} (expected {FORMAT!r})"
            )
        unknown = sorted(map(str, set(obj) - {"format", "state_dict", "card"}))
        if unknown:
            raise CheckpointError(f"{name}: unknown top-level entries {_listed(unknown)} in a {FORMAT} file")
        if "state_dict" not in obj:
            raise CheckpointError(f"{name}: {FORMAT} file has no 'state_dict'")
        card = obj.get("card", {})
        if not isinstance(card, dict):
            raise CheckpointError(f"{name}: the model card must be a dict, got {_kind(card)}")
        _check_plain(card, f"{name}: the model card", 0)
        policy = _policy_from_specs(obj["state_dict"], archive, name)
        if "scale" in card and card["scale"] != policy.scale:
            raise CheckpointError(
                f"{name}: card says scale {_short(card['scale'])}, weights have scale {policy.scale}"
            )
        policy.card = {**card, "file": name, "sha256": digest}
    elif "model_state_dict" in obj:
        policy = _policy_from_specs(obj["model_state_dict"], archive, name)
        policy.card = {
            "source": "Langosco et al. checkpoint",
            "format": "langosco-pth",
            "architecture": "IMPALA-CNN",
            "scale": policy.scale,
            "file": name,
            "sha256": digest,
        }
    elif _SCALE_KEY in obj:
        policy = _policy_from_specs(obj, archive, name)
        policy.card = {
            "source": "bare state dict",
            "format": "state-dict",
            "architecture": "IMPALA-CNN",
            "scale": policy.scale,
            "file": name,
            "sha256": digest,
        }
    else:
        raise CheckpointError(
            f"{name}: not a policy checkpoint: expected 'model_state_dict' (Langosco et al.) or "
            f"format {FORMAT!r} (mazewb); found keys {_listed(sorted(map(str, obj)))}"
        )
    return policy.to(device if device is not None else _default_device()).eval()


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages stay short whatever a file holds."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _kind(value: Any) -> str:
    return "tensor" if isinstance(value, TensorSpec) else type(value).__name__


def _listed(names: list[str]) -> str:
    shown = ", ".join(_short(n, 80) for n in names[:_MAX_LISTED])
    return f"[{shown}{', ...' if len(names) > _MAX_LISTED else ''}]"


def _check_plain(value: Any, what: str, depth: int) -> None:
    """Refuse anything in a model card but JSON-like plain data (no tensors), nested at most 32 deep."""
    if depth > 32:
        raise CheckpointError(f"{what} is nested more than 32 levels deep")
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, what, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CheckpointError(f"{what} has a key that is not a string: {_short(key)}")
            _check_plain(item, what, depth + 1)
        return
    raise CheckpointError(f"{what} holds a {_kind(value)}; it must be plain data (numbers, strings, lists, dicts)")


@functools.lru_cache(maxsize=MAX_SCALE)
def expected_shapes(scale: int) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the scale-``scale`` IMPALA policy (built on the meta device:
    nothing allocated)."""
    with torch.device("meta"):
        net = ImpalaPolicy(scale=scale, num_actions=NUM_ACTIONS)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def check_policy_specs(state_dict: Any, archive: CheckpointArchive, name: str) -> int:
    """The scale of the IMPALA policy ``state_dict`` (tensor specs from ``archive``) describes,
    after checking its keys, shapes, dtypes, strides and storage sizes (nothing is read or
    allocated); every mismatch raises ``CheckpointError`` naming it."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{name}: the state dict is a {_kind(state_dict)}, expected a dict")
    for key, value in state_dict.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{name}: state dict key {_short(key)} is not a string")
        if not isinstance(value, TensorSpec):
            raise CheckpointError(f"{name}: state dict entry {_short(key)} is a {_kind(value)}, not a tensor")
    if _SCALE_KEY not in state_dict:
        raise CheckpointError(f"{name}: missing key {_SCALE_KEY!r}, needed to infer the network's scale")
    first = state_dict[_SCALE_KEY]
    if len(first.shape) != 4 or first.shape[1:] != (3, 3, 3):
        raise CheckpointError(
            f"{name}: {_SCALE_KEY} has shape {_short(first.shape)}; expected (16 x scale, 3, 3, 3)"
        )
    width = first.shape[0]
    if width < 16 or width % 16:
        raise CheckpointError(
            f"{name}: {_SCALE_KEY} has {width:,} output channels; expected a positive multiple of 16 "
            f"(shape {_short(first.shape)})"
        )
    scale = width // 16
    if scale > MAX_SCALE:
        raise CheckpointError(
            f"{name}: {_SCALE_KEY} has {width:,} output channels, a scale-{scale:,} network; "
            f"mazewb loads scales 1 to {MAX_SCALE} (Langosco et al.'s agents are scale 4)"
        )
    expected = expected_shapes(scale)
    problems = []
    if unknown := sorted(set(state_dict) - set(expected)):
        problems.append(f"unknown keys {_listed(unknown)}")
    if missing := [k for k in expected if k not in state_dict]:
        problems.append(f"missing keys {_listed(missing)}")
    for key, target in expected.items():
        if key in state_dict and state_dict[key].shape != target:
            problems.append(
                f"wrong shape for {key}: checkpoint has {_short(state_dict[key].shape)}, "
                f"a scale-{scale} network needs {target}"
            )
    if problems:
        raise CheckpointError(f"{name}: does not match the IMPALA policy: " + "; ".join(problems[:_MAX_LISTED]))
    for key, spec in state_dict.items():
        if not is_float(spec.dtype):
            raise CheckpointError(f"{name}: {key} has dtype {spec.dtype}, expected floating point")
    archive.check_layout(state_dict)
    return scale


def _policy_from_specs(state_dict: Any, archive: CheckpointArchive, name: str) -> ImpalaPolicy:
    """A policy holding ``state_dict``'s weights. Everything is checked first
    (:func:`check_policy_specs`); then the network is allocated once and each tensor read from
    its record, checked finite, and copied in."""
    scale = check_policy_specs(state_dict, archive, name)
    with torch.device("meta"):  # checked: now allocate the network once, without initialising it
        policy = ImpalaPolicy(scale=scale, num_actions=NUM_ACTIONS)
    policy = policy.to_empty(device="cpu")
    targets = policy.state_dict()
    with torch.no_grad():
        for key, spec in state_dict.items():
            value = archive.tensor(spec)
            if not torch.isfinite(value).all():
                # Refused, not loaded: a NaN weight makes every move probability NaN downstream.
                raise CheckpointError(f"{name}: {key} contains NaN or infinite values")
            targets[key].copy_(value)
            del value
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
