"""How the analyses run the network: inference modes, the exact fast layout, and when bf16 pays.

Modes (the ``mode=`` keyword of every analysis function):

- ``"exact"`` (the default): fp32 in the best exact layout for the device. On a CPU that is
  channels_last memory for the convolutions (a copy of the weights kept per policy, see below)
  and, for the observations of one maze (vector fields), the exact incremental first block
  (``mazewb.policy.incremental``). Every probability is within 1e-5 of a plain fp32 NCHW
  pass (in practice about 1e-7: only the order of float sums differs).
- ``"fast"``: the fastest path for the device, possibly approximate. bf16 autocast where the
  device computes bf16 natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX) and it is
  faster; elsewhere (e.g. an AVX2-only AMD EPYC, where bf16 is emulated and several times
  slower than fp32) it is the exact path itself. ``fast_precision(policy)`` says which and why;
  ``mazewb.analysis.fast_mode_error`` measures its error on the loaded agent.
- ``"bf16"``: bf16 autocast with channels_last whatever the device (approximate; slow where
  bf16 is emulated). For measuring the bf16 error on any machine.
- ``"reference"``: plain fp32 NCHW on the policy object itself, the numbers of ``policy(x)``
  bit for bit (what the library computed before the exact fast path; for checks).

The deprecated ``fast=True`` / ``fast=False`` keyword maps to ``"bf16"`` / ``"exact"``.

The channels_last copy: the exact mode never converts the caller's policy. It runs a private
copy of the network with channels_last weights (about 15 MB for a scale-4 agent), made on
first use and kept per policy object (weakly: it goes with the policy); the copy is remade
when the policy's parameters change (any in-place update bumps their version counters, and
moving the policy changes their storage). A policy whose convolution weights are already
channels_last (the app converts its policies) is run as it is.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from mazewb.policy.impala import ImpalaPolicy

Mode = Literal["exact", "fast", "bf16", "reference"]
MODES: tuple[str, ...] = ("exact", "fast", "bf16", "reference")
DEFAULT_MODE: Mode = "exact"
EXACT_TOLERANCE = 1e-5
"""The exact mode's promise: every move probability within this of a plain fp32 NCHW pass."""


def resolve_mode(mode: str | None = None, fast: bool | None = None) -> str:
    """The mode to run: ``mode`` (None: the default, ``"exact"``), or the deprecated ``fast``
    flag (True: ``"bf16"``, False: ``"exact"``) when ``mode`` is not given."""
    if fast is not None:
        if mode is not None:
            raise ValueError("give mode= or the deprecated fast=, not both")
        warnings.warn(
            "fast= is deprecated: use mode='fast' (fastest, maybe approximate), mode='bf16' or mode='exact'",
            DeprecationWarning,
            stacklevel=3,
        )
        return "bf16" if fast else "exact"
    if mode is None:
        return DEFAULT_MODE
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def bf16_native(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 convolutions natively: CUDA with bf16 support, or a CPU
    whose oneDNN has bf16 kernels (AVX512-BF16 or AMX); elsewhere bf16 is emulated in fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


@dataclass(frozen=True)
class FastPrecision:
    """What ``mode="fast"`` runs on a device: ``mode`` is ``"bf16"`` or ``"exact"``;
    ``reason`` says why in one sentence."""

    mode: str
    reason: str


_FAST_CHOICE: dict[tuple[str, int], FastPrecision] = {}
_FAST_LOCK = threading.Lock()
PROBE_BATCH = 32
"""Observations per timing when ``fast_precision`` decides bf16 vs exact by measurement."""


def fast_precision(policy: ImpalaPolicy) -> FastPrecision:
    """What ``mode="fast"`` runs for ``policy`` on its device: bf16 where the device has native
    bf16 and a timed probe (``PROBE_BATCH`` random observations, best of 3, once per device type
    and scale per process) shows it faster than exact; otherwise the exact path (error 0)."""
    device = policy.device
    key = (str(device), policy.scale)
    with _FAST_LOCK:
        if key in _FAST_CHOICE:
            return _FAST_CHOICE[key]
    if not bf16_native(device):
        choice = FastPrecision(
            "exact",
            f"{device.type} has no native bf16 (no AVX512-BF16/AMX): bf16 would be emulated and slower "
            "than fp32, so fast mode runs the exact path (error 0)",
        )
    else:
        import time

        x = torch.rand((PROBE_BATCH, 3, 64, 64), device=device)
        times: dict[str, float] = {}
        for mode in ("exact", "bf16", "exact", "bf16"):  # interleaved; first round warms up
            run = runner(policy, mode)
            best = float("inf")
            for _ in range(3):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                with torch.inference_mode(), run.autocast():
                    run.net(run.input(x))
                if device.type == "cuda":
                    torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t0)
            times[mode] = best
        if times["bf16"] < times["exact"]:
            choice = FastPrecision(
                "bf16", f"native bf16 on {device.type}: {times['exact'] / times['bf16']:.1f}x the exact path"
            )
        else:
            choice = FastPrecision(
                "exact",
                f"bf16 on {device.type} measured slower than exact ({times['exact'] / times['bf16']:.2f}x): "
                "fast mode runs the exact path (error 0)",
            )
    with _FAST_LOCK:
        _FAST_CHOICE[key] = choice
    return choice


def concrete_mode(policy: ImpalaPolicy, mode: str) -> str:
    """``mode`` with ``"fast"`` replaced by what it runs on this policy's device."""
    return fast_precision(policy).mode if mode == "fast" else mode


# --- the channels_last copy, cached per policy ------------------------------------------------------


def _version(t: Tensor) -> int | None:
    try:
        return t._version
    except RuntimeError:  # an inference tensor (made under inference_mode) has no version counter
        return None


def _params_key(policy: nn.Module) -> tuple:
    """Storage, version counter and dtype of every parameter: changes when the weights do."""
    return tuple((p.data_ptr(), _version(p), p.dtype) for p in policy.parameters())


def _is_channels_last(policy: ImpalaPolicy) -> bool:
    return all(
        m.weight.is_contiguous(memory_format=torch.channels_last) for m in policy.modules() if isinstance(m, nn.Conv2d)
    )


_LAYOUTS: weakref.WeakKeyDictionary[ImpalaPolicy, tuple[tuple, ImpalaPolicy]] = weakref.WeakKeyDictionary()
_LAYOUT_LOCK = threading.Lock()


def channels_last_copy(policy: ImpalaPolicy) -> ImpalaPolicy:
    """A network equal to ``policy`` with channels_last convolution weights: the policy itself
    when its weights already are, else a private copy made once and remade when the policy's
    parameters change. The caller's policy is never modified."""
    if _is_channels_last(policy):
        return policy
    key = _params_key(policy)
    with _LAYOUT_LOCK:
        hit = _LAYOUTS.get(policy)
        if hit is not None and hit[0] == key:
            return hit[1]
    with torch.inference_mode(False), torch.no_grad():
        shadow = copy.deepcopy(policy).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    shadow.eval()
    for p in shadow.parameters():
        p.requires_grad_(False)
    with _LAYOUT_LOCK:
        _LAYOUTS[policy] = (key, shadow)
    return shadow


# --- runners ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runner:
    """How to run one concrete mode: ``net`` (the policy or its channels_last copy), inputs
    converted by ``input``, passes under ``autocast()``; ``incremental``: whether batches of one
    maze may take the exact incremental first block; ``mode``: the concrete mode."""

    net: ImpalaPolicy
    mode: str
    channels_last: bool
    bf16: bool
    incremental: bool

    def input(self, x: Tensor) -> Tensor:
        """``x`` (N, 3, 64, 64) on the network's device, in the layout this runner wants."""
        x = x.to(self.net.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast for the bf16 mode; for the exact mode on CUDA, cuDNN with TF32 off
        (its default TF32 convolutions differ from fp32 by about 1e-3)."""
        if self.bf16:
            return torch.autocast(device_type=self.net.device.type, dtype=torch.bfloat16)
        if self.mode == "exact" and self.net.device.type == "cuda":
            return _cudnn_without_tf32()
        return contextlib.nullcontext()


@contextlib.contextmanager
def _cudnn_without_tf32() -> Iterator[None]:
    """cuDNN convolutions in full fp32 for the duration (a process-wide flag, restored after)."""
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = old


INCREMENTAL_DEVICES = ("cpu",)
"""Devices where the exact incremental first block pays (measured on a 2-core CPU: see
docs/speed.md). On a GPU its many small gathers and windowed convolutions cost more than the
dense first block they save."""


def runner(policy: ImpalaPolicy, mode: str) -> Runner:
    """The runner of ``mode`` (``"fast"`` is first resolved by ``fast_precision``)."""
    mode = concrete_mode(policy, resolve_mode(mode))
    cpu = policy.device.type == "cpu"
    if mode == "reference":
        return Runner(policy, "reference", channels_last=False, bf16=False, incremental=False)
    if mode == "bf16":
        return Runner(channels_last_copy(policy), "bf16", channels_last=True, bf16=True, incremental=False)
    if cpu:
        net = channels_last_copy(policy)
        return Runner(net, "exact", channels_last=True, bf16=False, incremental=True)
    return Runner(
        policy, "exact", channels_last=False, bf16=False, incremental=policy.device.type in INCREMENTAL_DEVICES
    )
