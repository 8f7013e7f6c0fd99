"""Exact incremental forward passes for batches of observations that differ only in small windows.

The observations of a vector field are one maze drawn with the mouse on each square: they differ
from a common base image (the per-pixel median of the batch, which is the mouse-free maze) only
in a few pixels around the mouse. A 3x3 convolution changes its output only one pixel beyond a
changed region, a 3x3 stride-2 max-pool about half of it, a ReLU or residual add not at all. So
the network is run once on the base image, and for each observation only a window around its
changed pixels is recomputed, stage by stage, from the base's activations with the observation's
changed window pasted in. Where the windows have grown to a good part of the map (the end of the
first IMPALA block, or further), they are pasted into the base map and the rest of the network
runs as a normal batched pass from that cut point.

Exactness: every recomputed value is the same convolution / pool / ReLU / add of the same inputs
as in the full pass (outside its window an activation equals the base's, because its receptive
field there saw only base pixels); windows lie inside the map and read the network's own padding
(0 for convolutions, -inf for max-pools) beyond the border. Only the order of floating-point
sums inside a convolution can differ: results agree with the full pass to float32 rounding
(about 1e-7 in probabilities), tested against it on several mazes and both scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mazewb.policy.impala import CUT_POINTS, HOOK_NAMES, STAGES, ImpalaPolicy

MAX_DIFF_PIXELS = 12
"""Observations whose changed pixels (against the base) span more than this many rows or columns
go through the full pass instead (the mouse sprite spans at most 3 pixels at 64x64)."""
MIN_BATCH = 8
"""Below this many observations the base image is not worth computing (and the median of a
handful of images is no mouse-free background)."""
MAX_WINDOW_FRACTION = 0.55
"""Windows stop growing at the last cut point where they still cover at most this fraction of
the map: beyond it, a dense pass is as cheap as windows plus gathering and pasting. Measured on
a 2-core CPU at both scales: stopping at ``embedder.block2.maxpool_out`` (windows cover 12%,
18% and 25% of the block1 output, block2 conv and block2 pool maps) saves most."""


@dataclass
class _Window:
    """Per-observation windows of one activation: ``data`` (N, C, h, w) holds the activation on
    rows ``rows[n] : rows[n] + h`` and columns ``cols[n] : cols[n] + w`` of observation n's map
    (all windows of a batch have the same size and lie inside the map)."""

    data: Tensor
    rows: Tensor
    cols: Tensor

    @property
    def size(self) -> tuple[int, int]:
        return int(self.data.shape[2]), int(self.data.shape[3])


def _to_nhwc(t: Tensor) -> Tensor:
    """(N, C, H, W) -> contiguous (N, H, W, C), the layout gathers and pastes index into."""
    return t.permute(0, 2, 3, 1).contiguous()


def _gather(maps: Tensor, which: Tensor, rows: Tensor, cols: Tensor, h: int, w: int) -> Tensor:
    """Crops (N, h, w, C): crop n is taken from map ``which[n]`` of ``maps`` (M, H, W, C),
    starting at (rows[n], cols[n]).

    One ``index_select`` of whole C-vectors by linear position: several times faster than
    advanced indexing with broadcast index tensors (and differentiable, for training)."""
    height, width, channels = maps.shape[1], maps.shape[2], maps.shape[3]
    r = rows[:, None, None] + torch.arange(h, device=rows.device)[None, :, None]
    c = cols[:, None, None] + torch.arange(w, device=cols.device)[None, None, :]
    flat = ((which[:, None, None] * height + r) * width + c).reshape(-1)
    return maps.reshape(-1, channels).index_select(0, flat).view(len(rows), h, w, channels)


def _paste(target: Tensor, window: Tensor, rows: Tensor, cols: Tensor) -> None:
    """Write ``window`` (N, h, w, C) into ``target`` (N, H, W, C, contiguous) at per-observation
    offsets (rows[n], cols[n])."""
    n, h, w, channels = window.shape
    height, width = target.shape[1], target.shape[2]
    dev = window.device
    r = rows[:, None, None] + torch.arange(h, device=dev)[None, :, None]
    c = cols[:, None, None] + torch.arange(w, device=dev)[None, None, :]
    flat = (torch.arange(n, device=dev)[:, None, None] * (height * width) + r * width + c).reshape(-1)
    target.view(-1, channels).index_copy_(0, flat, window.reshape(-1, channels).to(target.dtype))


class _Base:
    """The base images' activations at every stage up to the stop point, unpadded and padded.

    There are M base images (one per maze of a training batch; one for a vector field);
    observation n reads base ``which[n]``."""

    def __init__(self, acts: dict[str, Tensor], which: Tensor) -> None:
        self.maps = {name: _to_nhwc(act) for name, act in acts.items()}  # (M, H, W, C)
        self.which = which
        self._padded: dict[tuple[str, float], Tensor] = {}

    def padded(self, name: str, value: float) -> Tensor:
        """The base maps of ``name`` with a 1-pixel border of ``value`` (the consumer's padding)."""
        key = (name, value)
        if key not in self._padded:
            m = self.maps[name].permute(0, 3, 1, 2)
            self._padded[key] = _to_nhwc(F.pad(m, (1, 1, 1, 1), value=value))
        return self._padded[key]

    def crop(self, name: str, rows: Tensor, cols: Tensor, h: int, w: int) -> Tensor:
        """Crops (N, h, w, C) of each observation's unpadded base map of ``name``."""
        return _gather(self.maps[name], self.which, rows, cols, h, w)

    def crop_padded(self, name: str, value: float, rows: Tensor, cols: Tensor, h: int, w: int) -> Tensor:
        """Crops (N, h, w, C) of each observation's padded base map (padded coordinates)."""
        return _gather(self.padded(name, value), self.which, rows, cols, h, w)


def _clamp_start(start: Tensor, size: int, limit: int) -> Tensor:
    return start.clamp(min=0, max=limit - size)


def _conv_window(conv: nn.Conv2d, base: _Base, src: str, win: _Window, full: int) -> _Window:
    """A 3x3, padding-1 convolution on windows: the output changes one pixel beyond the input's
    changed window; it is computed from the base input with the window pasted in."""
    h, w = win.size
    ho, wo = min(h + 2, full), min(w + 2, full)
    rows = _clamp_start(win.rows - 1, ho, full)
    cols = _clamp_start(win.cols - 1, wo, full)
    # Padded coordinates: image row r is padded row r + 1; the crop covers image rows
    # rows - 1 .. rows + ho, i.e. padded rows rows .. rows + ho + 1.
    crop = base.crop_padded(src, 0.0, rows, cols, ho + 2, wo + 2)
    _paste(crop, _to_nhwc(win.data), win.rows - rows + 1, win.cols - cols + 1)
    x = crop.permute(0, 3, 1, 2)  # a channels_last view: no copy
    return _Window(F.conv2d(x, conv.weight, conv.bias), rows, cols)


def _pool_window(pool: nn.MaxPool2d, base: _Base, src: str, win: _Window, full: int) -> _Window:
    """3x3 stride-2 padding-1 max-pool on windows: output p reads input rows 2p-1 .. 2p+1."""
    h, w = win.size
    half = full // 2
    ho, wo = min((h + 1) // 2 + 1, half), min((w + 1) // 2 + 1, half)
    rows = _clamp_start(torch.div(win.rows, 2, rounding_mode="floor"), ho, half)
    cols = _clamp_start(torch.div(win.cols, 2, rounding_mode="floor"), wo, half)
    # Input rows 2*rows - 1 .. 2*(rows + ho) - 1 are padded rows 2*rows .. 2*(rows + ho).
    crop = base.crop_padded(src, float("-inf"), 2 * rows, 2 * cols, 2 * ho + 1, 2 * wo + 1)
    _paste(crop, _to_nhwc(win.data), win.rows - 2 * rows + 1, win.cols - 2 * cols + 1)
    x = crop.permute(0, 3, 1, 2)
    return _Window(F.max_pool2d(x, kernel_size=3, stride=2, padding=0), rows, cols)


def _add_windows(base: _Base, main: _Window, skip_name: str, skip: _Window) -> _Window:
    """Residual add: the skip's activation over the (larger) main window, base plus its own window."""
    h, w = main.size
    crop = base.crop(skip_name, main.rows, main.cols, h, w)
    _paste(crop, _to_nhwc(skip.data), skip.rows - main.rows, skip.cols - main.cols)
    return _Window(main.data + crop.permute(0, 3, 1, 2), main.rows, main.cols)


def _map_size(shape: tuple[int, ...]) -> int:
    return int(shape[-1])


def stop_point(policy: ImpalaPolicy, first_window: tuple[int, int], limit: str | None = None) -> str | None:
    """The cut point where the windows are pasted back (None: windows never pay, run dense).

    Walks the stages with the window sizes the recomputation will have and keeps the last cut
    point whose windows cover at most ``MAX_WINDOW_FRACTION`` of their maps, not after ``limit``
    (the earliest intervened hook's resume point, since interventions must see full maps).
    """
    shapes = policy.hook_points()
    size: dict[str, tuple[int, int]] = {HOOK_NAMES[0]: first_window}
    best = None
    for stage in STAGES[1:]:
        if stage.name == "embedder.relu3_out":
            break
        src = size[stage.inputs[0]]
        full = _map_size(shapes[stage.inputs[0]])
        if stage.op is not None and stage.op.endswith("maxpool"):
            out = (min((src[0] + 1) // 2 + 1, full // 2), min((src[1] + 1) // 2 + 1, full // 2))
        elif stage.op is not None and "conv" in stage.op.rsplit(".", 1)[-1]:
            out = (min(src[0] + 2, full), min(src[1] + 2, full))
        else:
            out = src
        size[stage.name] = out
        out_full = _map_size(shapes[stage.name])
        if out[0] * out[1] > MAX_WINDOW_FRACTION * out_full * out_full:
            break
        if stage.name in CUT_POINTS:
            best = stage.name
        if limit is not None and stage.name == limit:
            break
    return best


def _changed_boxes(x: Tensor, base: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per observation: first changed row, first changed column, row span and column span
    (0 when identical to the base)."""
    diff = (x != base).any(dim=1)  # (N, H, W)
    any_rows, any_cols = diff.any(dim=2), diff.any(dim=1)
    n, height, width = diff.shape
    ar = torch.arange(height, device=x.device)
    ac = torch.arange(width, device=x.device)
    big = height + width
    r0 = torch.where(any_rows, ar, big).min(dim=1).values
    r1 = torch.where(any_rows, ar, -1).max(dim=1).values
    c0 = torch.where(any_cols, ac, big).min(dim=1).values
    c1 = torch.where(any_cols, ac, -1).max(dim=1).values
    empty = r1 < 0
    r0 = torch.where(empty, 0, r0)
    c0 = torch.where(empty, 0, c0)
    hs = torch.where(empty, 0, r1 - r0 + 1)
    ws = torch.where(empty, 0, c1 - c0 + 1)
    return r0, c0, hs, ws


@dataclass(frozen=True)
class IncrementalPlan:
    """How a batch is split: ``windowed`` rows go through the windows up to ``stop``; ``dense``
    rows (changed too widely, or everything when ``stop`` is None) through the full pass."""

    stop: str | None
    windowed: Tensor
    dense: Tensor


def activation_at_stop(
    policy: ImpalaPolicy, x: Tensor, limit: str | None = None, groups: Tensor | None = None
) -> tuple[IncrementalPlan, Tensor | None, Tensor | None]:
    """Unmodified activations at the plan's stop point for inputs ``x`` (N, 3, 64, 64).

    ``groups`` (N,) integer labels: rows with the same label share a background (one maze each;
    default: all rows one maze). Each group's base image is the per-pixel median of its rows;
    groups of fewer than ``MIN_BATCH`` rows go through the full pass.

    Returns the plan, the activation (len(plan.windowed), *shape) at ``plan.stop`` of the
    windowed rows (computed incrementally, differentiable when gradients are on), and the base
    images (M, 3, 64, 64); both None when the plan is dense. The caller continues from the stop
    point (``forward_stages(start=...)``) and runs the dense rows in full. ``limit``: a cut point
    the stop must not pass.
    """
    n = len(x)
    everything = torch.arange(n, device=x.device)
    nothing = everything[:0]
    dense_plan = IncrementalPlan(None, nothing, everything), None, None
    if groups is None:
        groups = torch.zeros(n, dtype=torch.long, device=x.device)
    _, which, counts = torch.unique(groups, return_inverse=True, return_counts=True)
    shared = counts[which] >= MIN_BATCH
    if not bool(shared.any()):
        return dense_plan
    bases = torch.stack([x[which == k].median(dim=0).values for k in range(len(counts))])
    # One maze (a vector field): its base broadcasts, with no copy of it per observation.
    r0, c0, hs, ws = _changed_boxes(x, bases if len(bases) == 1 else bases[which])
    small = shared & (hs <= MAX_DIFF_PIXELS) & (ws <= MAX_DIFF_PIXELS)
    windowed, dense = everything[small], everything[~small]
    if len(windowed) == 0:
        return dense_plan
    h = max(1, int(hs[windowed].max()))
    w = max(1, int(ws[windowed].max()))
    stop = stop_point(policy, (h, w), limit)
    if stop is None:
        return dense_plan
    used, base_of = torch.unique(which[windowed], return_inverse=True)  # only the bases in use
    bases = bases[used]
    act = _windowed_forward(policy, x[windowed], bases, base_of, r0[windowed], c0[windowed], h, w, stop)
    return IncrementalPlan(stop, windowed, dense), act, bases


def forward_shared_background(policy: ImpalaPolicy, x: Tensor, groups: Tensor) -> tuple[Tensor, Tensor]:
    """``policy(x)`` (logits (N, 15), value (N,)) for observations of several mazes, each maze's
    rows labelled by ``groups``: the first block runs once per maze and on windows around each
    mouse (``activation_at_stop``). Differentiable: the trainer uses it for its forward and
    backward passes; same numbers as the full pass within float rounding."""
    plan, act, _ = activation_at_stop(policy, x, groups=groups)
    if plan.stop is None or act is None:
        return policy(x)
    logits_w, value_w = policy.forward_stages(start=(plan.stop, act))
    if len(plan.dense) == 0:
        return logits_w, value_w
    logits_d, value_d = policy(x[plan.dense])
    logits = logits_w.new_empty((len(x), logits_w.shape[1]))
    logits = logits.index_copy(0, plan.windowed, logits_w).index_copy(0, plan.dense, logits_d)
    value = value_w.new_empty(len(x)).index_copy(0, plan.windowed, value_w).index_copy(0, plan.dense, value_d)
    return logits, value


def _base_activations(policy: ImpalaPolicy, base: Tensor, stop: str) -> dict[str, Tensor]:
    acts: dict[str, Tensor] = {}

    class _Done(Exception):
        pass

    def keep(name: str, act: Tensor) -> Tensor:
        acts[name] = act
        if name == stop:
            raise _Done
        return act

    try:
        policy.forward_stages(base, on_output=keep)
    except _Done:
        pass
    return acts


def _windowed_forward(
    policy: ImpalaPolicy,
    x: Tensor,
    base_x: Tensor,
    which: Tensor,
    r0: Tensor,
    c0: Tensor,
    h: int,
    w: int,
    stop: str,
) -> Tensor:
    """Activation at ``stop`` of observations ``x``, observation n differing from base image
    ``base_x[which[n]]`` only inside the h x w window at (r0[n], c0[n])."""
    shapes = policy.hook_points()
    base = _Base(_base_activations(policy, base_x.contiguous(memory_format=torch.channels_last), stop), which)
    full_in = _map_size(shapes[HOOK_NAMES[0]])
    rows = _clamp_start(r0, h, full_in)
    cols = _clamp_start(c0, w, full_in)
    # The input window is a crop of each observation itself (exact by construction).
    own = torch.arange(len(x), device=x.device)
    crop = _gather(_to_nhwc(x), own, rows, cols, h, w)  # (N, h, w, 3)
    wins: dict[str, _Window] = {HOOK_NAMES[0]: _Window(crop.permute(0, 3, 1, 2), rows, cols)}
    for i, stage in enumerate(STAGES[1:], start=1):
        op, _identity = policy._stage_modules[i]
        src = stage.inputs[0]
        full = _map_size(shapes[src])
        if stage.kind == "add":
            out = _add_windows(base, wins[src], stage.inputs[1], wins[stage.inputs[1]])
        elif isinstance(op, nn.Conv2d):
            out = _conv_window(op, base, src, wins[src], full)
        elif isinstance(op, nn.MaxPool2d):
            out = _pool_window(op, base, src, wins[src], full)
        elif isinstance(op, nn.ReLU):
            out = _Window(torch.relu(wins[src].data), wins[src].rows, wins[src].cols)
        else:
            raise AssertionError(f"stage {stage.name} cannot run on windows")
        wins[stage.name] = out
        if stage.name == stop:
            break
    result = wins[stop]
    full_map = base.maps[stop].index_select(0, which)  # each observation's base map, (N, H, W, C)
    _paste(full_map, _to_nhwc(result.data), result.rows, result.cols)
    return full_map.permute(0, 3, 1, 2)  # (N, C, H, W), channels_last strides
