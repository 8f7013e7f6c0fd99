"""The interpretable IMPALA-CNN policy of Langosco et al.'s maze agents.

Parameters carry exactly the names of Langosco et al.'s checkpoints (``embedder.block1.conv.weight``,
``embedder.block2.res1.conv1.bias``, ``embedder.fc.weight``, ``fc_policy.weight``, ...), so their
state dicts load unchanged. Every intermediate result is the output of a named ``nn.Identity``
module whose name is the hook point name the research community uses (procgen-tools / circrl):
``embedder.block2.res1.resadd_out``, ``embedder.relufc_out``, ``fc_policy_out``, ...

The forward pass is one explicit list of named stages (``STAGES``), executed by
``ImpalaPolicy.forward_stages``. Callers see each stage's output through a pure callback
(``on_output``) instead of module hooks, so interventions and caches are per call and calls
from several threads on one policy cannot interfere. A forward pass can also resume from a
stored activation at a "cut point" (``CUT_POINTS``), so work shared by many intervention
variants is done once.

Shapes: input (N, 3, 64, 64) float RGB in [0, 1], rows top-down like the image. Activation
maps are (N, C, H, W) with H = W = 64 (block1 conv), 32 (block1 after pooling), 16 (block2),
8 (block3); activation rows also run top-down.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from mazewb.policy.moves import move_probs as _move_probs

INPUT_HOOK = "embedder.block1.conv_in0"
"""Hook point holding the observation itself, as fed to block1's conv (N, 3, 64, 64)."""
POLICY_HOOK = "fc_policy_out"
"""Hook point of the 15 action logits."""
VALUE_HOOK = "fc_value_out"
"""Hook point of the value estimate, shape (N, 1) (``forward`` returns it as (N,))."""

OBS_SHAPE = (3, 64, 64)


@dataclass(frozen=True)
class Stage:
    """One step of the forward pass.

    ``name``: the hook point (and ``nn.Identity`` module) holding this stage's output.
    ``kind``: "input" (the observation), "module" (apply the module at path ``op`` to the single
    input) or "add" (sum of the two inputs: the residual connection).
    ``inputs``: hook points this stage reads (empty for "input").
    """

    name: str
    kind: Literal["input", "module", "add"]
    op: str | None
    inputs: tuple[str, ...]


def _build_stages() -> tuple[Stage, ...]:
    stages: list[Stage] = [Stage(INPUT_HOOK, "input", None, ())]
    prev = INPUT_HOOK
    for b in (1, 2, 3):
        block = f"embedder.block{b}"
        stages.append(Stage(f"{block}.conv_out", "module", f"{block}.conv", (prev,)))
        stages.append(Stage(f"{block}.maxpool_out", "module", f"{block}.maxpool", (f"{block}.conv_out",)))
        prev = f"{block}.maxpool_out"
        for r in (1, 2):
            res = f"{block}.res{r}"
            skip = prev  # the residual block's input, added back at the end
            stages += [
                Stage(f"{res}.relu1_out", "module", f"{res}.relu1", (skip,)),
                Stage(f"{res}.conv1_out", "module", f"{res}.conv1", (f"{res}.relu1_out",)),
                Stage(f"{res}.relu2_out", "module", f"{res}.relu2", (f"{res}.conv1_out",)),
                Stage(f"{res}.conv2_out", "module", f"{res}.conv2", (f"{res}.relu2_out",)),
                Stage(f"{res}.resadd_out", "add", None, (f"{res}.conv2_out", skip)),
            ]
            prev = f"{res}.resadd_out"
    # Order as in the original network: relu, then flatten, then the linear layer.
    stages += [
        Stage("embedder.relu3_out", "module", "embedder.relu3", (prev,)),
        Stage("embedder.flatten_out", "module", "embedder.flatten", ("embedder.relu3_out",)),
        Stage("embedder.fc_out", "module", "embedder.fc", ("embedder.flatten_out",)),
        Stage("embedder.relufc_out", "module", "embedder.relufc", ("embedder.fc_out",)),
        Stage(POLICY_HOOK, "module", "fc_policy", ("embedder.relufc_out",)),
        Stage(VALUE_HOOK, "module", "fc_value", ("embedder.relufc_out",)),
    ]
    return tuple(stages)


STAGES: tuple[Stage, ...] = _build_stages()
"""The forward pass, in execution order."""

HOOK_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
"""All hook point names in execution order; the same for every scale."""

_STAGE_INDEX: dict[str, int] = {name: i for i, name in enumerate(HOOK_NAMES)}
_OUTPUTS = (POLICY_HOOK, VALUE_HOOK)


def _last_uses() -> dict[str, int]:
    """Index of the last stage reading each hook point, so activations can be freed early."""
    last = {name: i for i, name in enumerate(HOOK_NAMES)}
    for i, stage in enumerate(STAGES):
        for name in stage.inputs:
            last[name] = max(last[name], i)
    for name in _OUTPUTS:
        last[name] = len(STAGES)
    return last


_LAST_USE = _last_uses()


def _cut_points() -> tuple[str, ...]:
    """Hook points from which the rest of the forward pass needs nothing computed earlier."""
    cuts = []
    for i, name in enumerate(HOOK_NAMES):
        later_inputs = [n for s in STAGES[i + 1 :] for n in s.inputs] + list(_OUTPUTS)
        if all(_STAGE_INDEX[n] >= i for n in later_inputs):
            cuts.append(name)
    return tuple(cuts)


CUT_POINTS: tuple[str, ...] = _cut_points()
"""Hook points a forward pass can resume from (outside residual blocks, before the heads)."""


def check_hook_name(name: str, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` naming close matches if ``name`` is not a hook point."""
    if not isinstance(name, str) or name not in _STAGE_INDEX:
        close = difflib.get_close_matches(str(name), HOOK_NAMES, n=3, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(close)}?"
            if close
            else "; see ImpalaPolicy.hook_points() for the list"
        )
        raise error(f"unknown hook point {name!r}{hint}")


def hook_index(name: str) -> int:
    """Position of a hook point in execution order (``STAGES``)."""
    check_hook_name(name)
    return _STAGE_INDEX[name]


def resume_point(name: str) -> str:
    """The latest cut point at or before hook point ``name``.

    A forward pass whose interventions all sit at or after ``name`` can be computed once up to
    this point and resumed from its (unmodified) activation for every variant.
    """
    index = hook_index(name)
    return max((c for c in CUT_POINTS if _STAGE_INDEX[c] <= index), key=_STAGE_INDEX.__getitem__)


class ResidualBlock(nn.Module):
    """relu -> conv 3x3 -> relu -> conv 3x3 -> add the input; channel count unchanged."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.relu1 = nn.ReLU()
        self.relu1_out = nn.Identity()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv1_out = nn.Identity()
        self.relu2 = nn.ReLU()
        self.relu2_out = nn.Identity()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2_out = nn.Identity()
        self.resadd_out = nn.Identity()


class ImpalaBlock(nn.Module):
    """conv 3x3 -> max-pool 3x3 stride 2 pad 1 (halves H and W) -> two residual blocks."""

    def __init__(self, in_channels: int, out_channels: int, input_hook: bool = False) -> None:
        super().__init__()
        if input_hook:
            self.conv_in0 = nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.conv_out = nn.Identity()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.maxpool_out = nn.Identity()
        self.res1 = ResidualBlock(out_channels)
        self.res2 = ResidualBlock(out_channels)


class Embedder(nn.Module):
    """Three IMPALA blocks, relu, flatten, linear to 256 features, relu."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.block1 = ImpalaBlock(3, 16 * scale, input_hook=True)
        self.block2 = ImpalaBlock(16 * scale, 32 * scale)
        self.block3 = ImpalaBlock(32 * scale, 32 * scale)
        self.relu3 = nn.ReLU()
        self.relu3_out = nn.Identity()
        self.flatten = nn.Flatten()
        self.flatten_out = nn.Identity()
        self.fc = nn.Linear(32 * scale * 8 * 8, 256)
        self.fc_out = nn.Identity()
        self.relufc = nn.ReLU()
        self.relufc_out = nn.Identity()


OutputCallback = Callable[[str, Tensor], Tensor]
"""Called with (hook name, activation) after each stage; returns the activation to use."""


class ImpalaPolicy(nn.Module):
    """IMPALA-CNN actor-critic: 15 action logits and a value from a 64x64 RGB observation.

    ``scale`` multiplies the channel widths 16/32/32 (Langosco et al.'s maze agents: scale 4,
    3,653,136 parameters). ``card`` is a plain dict of metadata (the model card) filled by
    the checkpoint loader; empty for a freshly built network.
    """

    def __init__(self, scale: int = 1, num_actions: int = 15) -> None:
        super().__init__()
        if not isinstance(scale, int) or scale < 1:
            raise ValueError(f"scale must be a positive integer, got {scale!r}")
        self.scale = scale
        self.num_actions = num_actions
        self.embedder = Embedder(scale)
        self.fc_policy = nn.Linear(256, num_actions)
        self.fc_policy_out = nn.Identity()
        self.fc_value = nn.Linear(256, 1)
        self.fc_value_out = nn.Identity()
        self.card: dict = {}
        self._hook_shapes: dict[str, tuple[int, ...]] | None = None
        # (operation, named Identity) per stage, resolved once: looking modules up by path on
        # every call costs about a fifth of a batch-1 forward. Submodules are never replaced.
        self._stage_modules: tuple[tuple[nn.Module | None, nn.Module], ...] = tuple(
            (self.get_submodule(s.op) if s.op else None, self.get_submodule(s.name)) for s in STAGES
        )

    @property
    def device(self) -> torch.device:
        """Device holding the parameters."""
        return next(self.parameters()).device

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: (N, 3, 64, 64) float RGB in [0, 1]. Returns logits (N, 15) and value (N,)."""
        return self.forward_stages(x)

    def run_from(self, start_hook: str, activation: Tensor) -> tuple[Tensor, Tensor]:
        """Continue the forward pass from ``activation`` (N, *shape) at cut point ``start_hook``."""
        return self.forward_stages(start=(start_hook, activation))

    def move_probs(self, x: Tensor) -> Tensor:
        """(N, 5) move probabilities in ``MOVES`` order for observations ``x`` (N, 3, 64, 64)."""
        logits, _ = self.forward_stages(x)
        return _move_probs(logits)

    def forward_stages(
        self,
        x: Tensor | None = None,
        *,
        start: tuple[str, Tensor] | None = None,
        on_output: OutputCallback | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Run the forward pass stage by stage; returns logits (N, 15) and value (N,).

        Give either ``x`` (N, 3, 64, 64) or ``start = (hook name, activation)``: the stored,
        unmodified output of a cut point (see ``CUT_POINTS``); the pass then continues from there
        and ``on_output`` sees that activation first. ``on_output(name, activation)`` is called
        after every stage from there on and returns the activation the rest of the pass uses
        (the same tensor, or a modified copy). Gradients flow unless the caller disables them.
        """
        if (x is None) == (start is None):
            raise ValueError("give exactly one of x and start")
        if start is None:
            assert x is not None
            if x.ndim != 4 or tuple(x.shape[1:]) != OBS_SHAPE:
                raise ValueError(f"expected observations of shape (N, 3, 64, 64), got {tuple(x.shape)}")
            if not x.is_floating_point():
                raise ValueError(
                    f"expected float observations in [0, 1], got dtype {x.dtype}; use predict() for uint8"
                )
            begin, acts = 0, {INPUT_HOOK: x}
        else:
            name, activation = start
            begin = hook_index(name)
            if name not in CUT_POINTS:
                raise ValueError(
                    f"cannot resume from {name!r}: the rest of the pass also needs earlier activations; "
                    f"resume from {resume_point(name)!r} instead"
                )
            expected = self.hook_points()[name]
            if activation.ndim != len(expected) + 1 or tuple(activation.shape[1:]) != expected:
                raise ValueError(
                    f"activation at {name!r} must have shape (N, {expected}), got {tuple(activation.shape)}"
                )
            acts = {name: activation}

        for i in range(begin, len(STAGES)):
            stage = STAGES[i]
            if i > begin:
                op, identity = self._stage_modules[i]
                if op is None:  # the residual add
                    out = acts[stage.inputs[0]] + acts[stage.inputs[1]]
                else:
                    out = op(acts[stage.inputs[0]])
                # Pass through the Identity named after the hook point, so that module hooks
                # attached by external tools (circrl-style) still see every activation.
                acts[stage.name] = identity(out)
            if on_output is not None:
                acts[stage.name] = on_output(stage.name, acts[stage.name])
            # Free activations nothing later reads: keeps memory at a few maps for big batches.
            for used in (stage.name, *stage.inputs):
                if _LAST_USE[used] <= i:
                    acts.pop(used, None)
        return acts[POLICY_HOOK], acts[VALUE_HOOK][:, 0]

    def hook_points(self) -> dict[str, tuple[int, ...]]:
        """Every hook point name, in execution order, with its activation shape without batch."""
        if self._hook_shapes is None:
            shapes: dict[str, tuple[int, ...]] = {}

            def record(name: str, act: Tensor) -> Tensor:
                shapes[name] = tuple(act.shape[1:])
                return act

            with torch.inference_mode():
                dtype = next(self.parameters()).dtype  # a float64 copy (for checks) works too
                self.forward_stages(torch.zeros((1, *OBS_SHAPE), device=self.device, dtype=dtype), on_output=record)
            self._hook_shapes = shapes
        return dict(self._hook_shapes)
