"""Interventions on the policy's activations, as small frozen, hashable, JSON-serializable values.

An intervention names a hook point (see ``ImpalaPolicy.hook_points()``) and says how to change
the activation there during one forward pass. They are plain data: the app keeps them in page
state, the CLI parses them, ``run_with_hooks`` applies them. Kinds:

- ``AddVector``: add ``coeff * vector`` to every batch item (steering vectors).
- ``SetChannels``: set chosen channels at chosen activation cells to a constant.
- ``ReplaceChannels``: replace chosen channels with given activations (resampling, patching).
- ``Ablate``: zero chosen channels, or replace them by given mean activations.

Coordinates: activation maps are (C, H, W) with rows top-down like the image; a cell is
``(row, col)`` in that map. For flat hook points (``embedder.fc_out``, ``fc_policy_out``, ...),
"channels" are the units and there are no cells.

Arrays are stored as ``FrozenArray`` (float32 bytes plus shape) so that interventions stay frozen
and hashable; in JSON an array is ``{"shape": [...], "dtype": "float32", "base64": "..."}``
(little-endian), or ``{"shape": [...], "values": nested list}`` when written by hand.
Errors in the data raise ``InterventionError`` naming the problem.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from mazewb.bounded_input import loads_bounded
from mazewb.errors import InterventionError  # noqa: F401 - re-exported
from mazewb.policy.impala import check_hook_name


@dataclass(frozen=True)
class FrozenArray:
    """An immutable float32 array: little-endian bytes plus shape. Hashable; compares by value."""

    data: bytes
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))  # bytearray/memoryview are unhashable
        shape = tuple(self.shape)
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise InterventionError(f"array shape must be non-negative integers, got {self.shape!r}")
        if len(self.data) != 4 * math.prod(shape):
            raise InterventionError(
                f"array data holds {len(self.data)} bytes, shape {shape} needs {4 * math.prod(shape)}"
            )
        object.__setattr__(self, "shape", shape)

    @classmethod
    def of(cls, values: Any) -> FrozenArray:
        """From a numpy array, torch tensor, nested list or another FrozenArray (copied as float32)."""
        if isinstance(values, FrozenArray):
            return values
        if isinstance(values, Tensor):
            values = values.detach().to("cpu", torch.float32).numpy()
        try:
            array = np.asarray(values, dtype="<f4")
        except (TypeError, ValueError) as exc:
            raise InterventionError(
                f"cannot read an array of numbers from {type(values).__name__}: {exc}"
            ) from None
        if not np.all(np.isfinite(array)):
            raise InterventionError("array contains NaN or infinite values")
        return cls(np.ascontiguousarray(array).tobytes(), tuple(int(n) for n in array.shape))

    def array(self) -> np.ndarray:
        """A read-only float32 numpy view of the values."""
        return np.frombuffer(self.data, dtype="<f4").reshape(self.shape)

    def tensor(self, device: torch.device | str = "cpu") -> Tensor:
        """A float32 tensor copy on ``device``."""
        return torch.tensor(self.array(), dtype=torch.float32, device=device)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "dtype": "float32",
            "base64": base64.b64encode(self.data).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, d: Any, what: str = "array") -> FrozenArray:
        if not isinstance(d, dict) or "shape" not in d:
            raise InterventionError(f"{what} must be an object with 'shape' and 'base64' or 'values'")
        shape = d["shape"]
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in shape
        ):
            raise InterventionError(f"{what}.shape must be a list of integers, got {shape!r}")
        if "base64" in d:
            if d.get("dtype", "float32") != "float32":
                raise InterventionError(f"{what}.dtype must be 'float32', got {d.get('dtype')!r}")
            try:
                data = base64.b64decode(d["base64"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                raise InterventionError(f"{what}.base64 is not valid base64") from None
            result = cls(data, tuple(shape))
            if not np.all(np.isfinite(result.array())):
                raise InterventionError(f"{what} contains NaN or infinite values")
            return result
        if "values" in d:
            result = cls.of(d["values"])
            if result.shape != tuple(shape):
                raise InterventionError(
                    f"{what}.values has shape {result.shape}, but shape says {tuple(shape)}"
                )
            return result
        raise InterventionError(f"{what} needs 'base64' or 'values'")

    def __repr__(self) -> str:
        return f"FrozenArray(shape={self.shape})"


def _channels(value: Any, what: str = "channels") -> tuple[int, ...]:
    try:
        channels = tuple(value)
    except TypeError:
        raise InterventionError(f"{what} must be a list of channel indices, got {value!r}") from None
    for c in channels:
        if not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c < 0:
            raise InterventionError(f"{what} must be non-negative integers, got {c!r}")
    channels = tuple(int(c) for c in channels)
    if not channels:
        raise InterventionError(f"{what} must not be empty")
    if len(set(channels)) != len(channels):
        raise InterventionError(f"{what} lists a channel twice: {list(channels)}")
    return channels


def _cells(value: Any) -> tuple[tuple[int, int], ...]:
    try:
        cells = tuple(tuple(cell) for cell in value)
    except TypeError:
        raise InterventionError(f"cells must be a list of (row, col) pairs, got {value!r}") from None
    for cell in cells:
        if len(cell) != 2 or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in cell
        ):
            raise InterventionError(f"cells must be (row, col) pairs of non-negative integers, got {cell!r}")
    if not cells:
        raise InterventionError("cells must not be empty (use None for every cell)")
    return tuple((int(r), int(c)) for r, c in cells)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InterventionError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise InterventionError(f"{what} must be finite, got {value!r}")
    return float(value)


def _check_channels_fit(hook: str, channels: tuple[int, ...] | None, shape: tuple[int, ...]) -> None:
    if channels is None:
        return
    count = shape[0]
    bad = [c for c in channels if c >= count]
    if bad:
        raise InterventionError(f"{hook} has {count} channels (0..{count - 1}); got channel(s) {bad}")


class _Base:
    """Shared JSON and validation behaviour; subclasses are frozen dataclasses with ``hook``."""

    kind: ClassVar[str]
    hook: str

    def _check_hook(self) -> None:
        check_hook_name(self.hook, InterventionError)

    def check(self, shape: tuple[int, ...], batch: int) -> None:
        """Raise InterventionError unless this fits activations (batch, *shape) at its hook."""
        raise NotImplementedError

    def apply(self, act: Tensor) -> Tensor:
        """The intervened activation: a new tensor; ``act`` (N, *shape) is left unchanged."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with a ``kind`` tag; ``intervention_from_dict`` inverts it."""
        raise NotImplementedError


@dataclass(frozen=True)
class AddVector(_Base):
    """Add ``coeff * vector`` to the activation of every batch item at ``hook``.

    ``vector`` has the hook point's shape without batch, e.g. (128, 16, 16) at
    ``embedder.block2.res1.resadd_out`` of a scale-4 network. Any array-like is accepted and
    stored as a ``FrozenArray``.
    """

    kind: ClassVar[str] = "add_vector"
    hook: str
    vector: FrozenArray
    coeff: float = 1.0

    def __post_init__(self) -> None:
        self._check_hook()
        object.__setattr__(self, "vector", FrozenArray.of(self.vector))
        object.__setattr__(self, "coeff", _number(self.coeff, "coeff"))

    def array(self) -> np.ndarray:
        """The vector as a read-only float32 numpy array."""
        return self.vector.array()

    def check(self, shape: tuple[int, ...], batch: int) -> None:
        if shape != self.vector.shape:
            raise InterventionError(
                f"AddVector at {self.hook}: vector shape {self.vector.shape} != activation shape {shape}"
            )

    def apply(self, act: Tensor) -> Tensor:
        self.check(tuple(act.shape[1:]), act.shape[0])
        return act + self.coeff * self.vector.tensor(act.device).to(act.dtype)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "hook": self.hook, "vector": self.vector.to_dict(), "coeff": self.coeff}


@dataclass(frozen=True)
class SetChannels(_Base):
    """Set ``channels`` at activation ``cells`` (row, col; rows top-down) to ``value``.

    ``cells=None`` sets every cell; for flat hook points (units, no map) ``cells`` must be None.
    """

    kind: ClassVar[str] = "set_channels"
    hook: str
    channels: tuple[int, ...]
    cells: tuple[tuple[int, int], ...] | None = None
    value: float = 0.0

    def __post_init__(self) -> None:
        self._check_hook()
        object.__setattr__(self, "channels", _channels(self.channels))
        if self.cells is not None:
            object.__setattr__(self, "cells", _cells(self.cells))
        object.__setattr__(self, "value", _number(self.value, "value"))

    def check(self, shape: tuple[int, ...], batch: int) -> None:
        _check_channels_fit(self.hook, self.channels, shape)
        if self.cells is None:
            return
        if len(shape) != 3:
            raise InterventionError(
                f"SetChannels at {self.hook}: a flat hook point has no cells; use cells=None"
            )
        height, width = shape[1:]
        bad = [cell for cell in self.cells if cell[0] >= height or cell[1] >= width]
        if bad:
            raise InterventionError(
                f"SetChannels at {self.hook}: cells {bad} outside the {height}x{width} activation map"
            )

    def apply(self, act: Tensor) -> Tensor:
        self.check(tuple(act.shape[1:]), act.shape[0])
        out = act.clone()
        channels = list(self.channels)
        if self.cells is None:
            out[:, channels] = self.value
            return out
        rows = torch.tensor([r for r, _ in self.cells], device=act.device)
        cols = torch.tensor([c for _, c in self.cells], device=act.device)
        index = torch.tensor(channels, device=act.device)
        out[:, index[:, None], rows[None, :], cols[None, :]] = self.value
        return out

    def to_dict(self) -> dict[str, Any]:
        cells = None if self.cells is None else [list(c) for c in self.cells]
        return {
            "kind": self.kind,
            "hook": self.hook,
            "channels": list(self.channels),
            "cells": cells,
            "value": self.value,
        }


@dataclass(frozen=True)
class ReplaceChannels(_Base):
    """Replace ``channels`` at ``hook`` with the activations in ``source``.

    ``source`` holds only the chosen channels, in the order of ``channels``: shape
    (len(channels), H, W) to use the same values for every batch item, or
    (N, len(channels), H, W) with N the batch size (one source per item). For flat hook points
    drop H, W.
    """

    kind: ClassVar[str] = "replace_channels"
    hook: str
    channels: tuple[int, ...]
    source: FrozenArray

    def __post_init__(self) -> None:
        self._check_hook()
        object.__setattr__(self, "channels", _channels(self.channels))
        object.__setattr__(self, "source", FrozenArray.of(self.source))

    def check(self, shape: tuple[int, ...], batch: int) -> None:
        _check_channels_fit(self.hook, self.channels, shape)
        selected = (batch, len(self.channels), *shape[1:])
        if self.source.shape not in (selected[1:], selected):
            raise InterventionError(
                f"ReplaceChannels at {self.hook}: source shape {self.source.shape} "
                f"must be {selected[1:]} or {selected} "
                f"(the {len(self.channels)} chosen channels, optionally one set per batch item)"
            )

    def apply(self, act: Tensor) -> Tensor:
        self.check(tuple(act.shape[1:]), act.shape[0])
        out = act.clone()
        out[:, list(self.channels)] = self.source.tensor(act.device).to(act.dtype)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hook": self.hook,
            "channels": list(self.channels),
            "source": self.source.to_dict(),
        }


@dataclass(frozen=True)
class Ablate(_Base):
    """Ablate ``channels`` (None: all) at ``hook``: set them to zero, or to ``mean``.

    ``mode="mean"`` needs ``mean``: the mean activation with the hook point's full shape without
    batch (e.g. (128, 16, 16)), typically averaged over many random observations by the analysis
    layer; the chosen channels are replaced by their mean maps.
    """

    kind: ClassVar[str] = "ablate"
    hook: str
    channels: tuple[int, ...] | None = None
    mode: Literal["zero", "mean"] = "zero"
    mean: FrozenArray | None = field(default=None)

    def __post_init__(self) -> None:
        self._check_hook()
        if self.channels is not None:
            object.__setattr__(self, "channels", _channels(self.channels))
        if self.mode not in ("zero", "mean"):
            raise InterventionError(f"Ablate mode must be 'zero' or 'mean', got {self.mode!r}")
        if self.mode == "mean" and self.mean is None:
            raise InterventionError("Ablate mode 'mean' needs the mean activations (mean=...)")
        if self.mode == "zero" and self.mean is not None:
            raise InterventionError("Ablate mode 'zero' takes no mean; use mode='mean'")
        if self.mean is not None:
            object.__setattr__(self, "mean", FrozenArray.of(self.mean))

    def check(self, shape: tuple[int, ...], batch: int) -> None:
        _check_channels_fit(self.hook, self.channels, shape)
        if self.mean is not None and self.mean.shape != shape:
            raise InterventionError(
                f"Ablate at {self.hook}: mean shape {self.mean.shape} != activation shape {shape} "
                "(give the mean of every channel)"
            )

    def apply(self, act: Tensor) -> Tensor:
        self.check(tuple(act.shape[1:]), act.shape[0])
        channels = list(range(act.shape[1])) if self.channels is None else list(self.channels)
        out = act.clone()
        if self.mean is None:
            out[:, channels] = 0.0
            return out
        out[:, channels] = self.mean.tensor(act.device).to(act.dtype)[channels]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hook": self.hook,
            "channels": None if self.channels is None else list(self.channels),
            "mode": self.mode,
            "mean": None if self.mean is None else self.mean.to_dict(),
        }


Intervention = AddVector | SetChannels | ReplaceChannels | Ablate
INTERVENTION_KINDS: dict[str, type] = {
    cls.kind: cls for cls in (AddVector, SetChannels, ReplaceChannels, Ablate)
}

_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required keys, optional keys), besides "kind"
    "add_vector": ({"hook", "vector"}, {"coeff"}),
    "set_channels": ({"hook", "channels"}, {"cells", "value"}),
    "replace_channels": ({"hook", "channels", "source"}, set()),
    "ablate": ({"hook"}, {"channels", "mode", "mean"}),
}


def intervention_from_dict(d: Any) -> Intervention:
    """Build an intervention from its ``to_dict()`` form; raises InterventionError if ill-formed."""
    if not isinstance(d, dict):
        raise InterventionError(f"an intervention must be a JSON object, got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in INTERVENTION_KINDS:
        raise InterventionError(
            f"unknown intervention kind {kind!r}; expected one of {sorted(INTERVENTION_KINDS)}"
        )
    required, optional = _FIELDS[kind]
    keys = set(d) - {"kind"}
    if missing := required - keys:
        raise InterventionError(f"{kind} is missing {sorted(missing)}")
    if unknown := keys - required - optional:
        raise InterventionError(f"{kind} has unknown key(s) {sorted(unknown)}")
    args = {k: d[k] for k in keys}
    for name in ("vector", "source", "mean"):
        if args.get(name) is not None:
            args[name] = FrozenArray.from_dict(args[name], f"{kind}.{name}")
    if kind == "set_channels":
        cells = args.get("cells")
        if cells is not None and not (isinstance(cells, list) and all(isinstance(c, list) for c in cells)):
            raise InterventionError(
                f"set_channels.cells must be a list of [row, col] pairs or null, got {cells!r}"
            )
        if cells is not None:
            args["cells"] = tuple(tuple(c) for c in cells)
    if isinstance(args.get("channels"), list):
        args["channels"] = tuple(args["channels"])
    return INTERVENTION_KINDS[kind](**args)


def interventions_to_json(interventions: list[Intervention] | tuple[Intervention, ...]) -> str:
    """A JSON list with one object per intervention, each tagged with its ``kind``."""
    return json.dumps([iv.to_dict() for iv in interventions])


MAX_INTERVENTIONS_BYTES = 16 * 2**20
"""Largest interventions JSON read (a scale-4 block1 vector as base64 is about 1.4 MB)."""
MAX_JSON_DEPTH = 16
"""Deepest nesting of interventions JSON read (a list of objects holding nested value lists)."""


def interventions_from_json(text: str | bytes, max_chars: int = MAX_INTERVENTIONS_BYTES) -> tuple[Intervention, ...]:
    """Parse ``interventions_to_json`` output; raises InterventionError naming the problem.

    Size (``max_chars`` bytes), nesting depth and integer lengths are checked before parsing.
    """
    data = loads_bounded(
        text, error=InterventionError, what="interventions JSON", max_bytes=max_chars, max_depth=MAX_JSON_DEPTH
    )
    if not isinstance(data, list):
        raise InterventionError(f"interventions JSON must be a list, got {type(data).__name__}")
    result = []
    for i, item in enumerate(data):
        try:
            result.append(intervention_from_dict(item))
        except InterventionError as exc:
            raise InterventionError(f"intervention {i}: {exc}") from None
    return tuple(result)
