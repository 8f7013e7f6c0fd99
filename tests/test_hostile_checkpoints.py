"""Hostile checkpoints: a generator of crafted files, each refused with the right CheckpointError,
in bounded time and memory, and no pickled code ever run. Legitimate files still load."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hostile_files import HOSTILE, MARKER, ROOT, _Runs, default_sd, legit_parts, mazewb_file

from mazewb.errors import CheckpointError
from mazewb.policy import ImpalaPolicy, load_policy, load_policy_bytes, save_policy


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for name, (make, _) in HOSTILE.items():
        (folder / f"{name}.pt").write_bytes(make())
    return folder


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_checkpoint_is_refused_with_the_named_problem(
    case: str, hostile_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(hostile_dir)  # a code-running pickle would leave MARKER here
    path = hostile_dir / f"{case}.pt"
    pattern = HOSTILE[case][1]
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_policy(path, device="cpu")
    assert str(info.value).startswith(f"{case}.pt: ")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    with pytest.raises(CheckpointError, match=pattern):  # the app's upload path
        load_policy_bytes(path.read_bytes(), f"{case}.pt", device="cpu")
    assert not (hostile_dir / MARKER).exists()


def test_the_code_running_payloads_do_run_when_unpickled_unsafely(tmp_path: Path) -> None:
    # So the refusals above refuse something real.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Runs(open, str(marker), "w"))).close()
    assert marker.exists()


def test_hostile_files_cost_bounded_time_and_memory(hostile_dir: Path) -> None:
    """Load the bundled agent, then every hostile file, in a fresh process: peak RSS grows by
    less than 100 MB over the whole run (the issue's files cost 0.8 to 1.45 GB), and no file takes
    more than 5 CPU seconds (the stride-0 scale-60 file took 23 s)."""
    script = textwrap.dedent(
        f"""
        import json, resource, sys, time
        from pathlib import Path
        from mazewb.errors import CheckpointError
        from mazewb.policy import load_policy
        load_policy({str(ROOT / "checkpoints" / "default.pt")!r}, device="cpu")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        refused, slowest = 0, (0.0, "")
        for path in sorted(Path({str(hostile_dir)!r}).glob("*.pt")):
            start = time.process_time()  # CPU time: the machine may be shared
            try:
                load_policy(path, device="cpu")
            except CheckpointError:
                refused += 1
            slowest = max(slowest, (time.process_time() - start, path.name))
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"refused": refused, "growth_kb": after - before, "slowest": slowest}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refused"] == len(HOSTILE)
    assert result["growth_kb"] < 100 * 1024, result
    assert result["slowest"][0] < 5.0, result  # CPU seconds for the slowest file (most take milliseconds)


# ------------------------------------------------------------------ legitimate files
def test_langosco_scale4_file_loads_with_memory_near_the_model(tmp_path: Path) -> None:
    """A randomly initialised scale-4 agent saved as Langosco et al. did (model and Adam state):
    loads exactly, and the load's peak RSS growth stays under twice the model's 14.6 MB."""
    torch.manual_seed(4)
    net = ImpalaPolicy(4)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    net(torch.rand(2, 3, 64, 64))[0].sum().backward()
    opt.step()  # the optimizer state now holds two moments per weight: 3x the model on disk
    path = tmp_path / "model_rand_region_5.pth"
    torch.save({"model_state_dict": net.state_dict(), "optimizer_state_dict": opt.state_dict()}, path)
    model_bytes = sum(p.numel() * 4 for p in net.parameters())
    script = textwrap.dedent(
        f"""
        import json, resource, torch
        from mazewb.policy import ImpalaPolicy, load_policy
        ImpalaPolicy(1)  # warm up torch's allocator and modules
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        policy = load_policy({str(path)!r}, device="cpu")
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        total = sum(float(p.double().sum()) for p in policy.parameters())
        print(json.dumps({{"growth_kb": after - before, "scale": policy.scale, "total": total}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["scale"] == 4
    assert result["total"] == pytest.approx(sum(float(p.detach().double().sum()) for p in net.parameters()), rel=1e-12)
    assert result["growth_kb"] * 1024 < 2 * model_bytes, (result, model_bytes)


def test_bare_state_dict_and_channels_last_weights_load(tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = ImpalaPolicy(1).to(memory_format=torch.channels_last)  # as the fast trainer keeps it
    assert not net.embedder.block1.conv.weight.is_contiguous()
    path = tmp_path / "bare.pt"
    torch.save(net.state_dict(), path)
    loaded = load_policy(path, device="cpu")
    assert loaded.card["format"] == "state-dict"
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_own_format_and_bundled_agent_load(tmp_path: Path) -> None:
    bundled = load_policy(ROOT / "checkpoints" / "default.pt", device="cpu")
    reference = default_sd()
    assert all(torch.equal(bundled.state_dict()[k], v) for k, v in reference.items())
    assert bundled.card["scale"] == 1 and "sha256" in bundled.card
    again = load_policy(save_policy(bundled, tmp_path / "again.pt"), device="cpu")
    assert {k: v for k, v in again.card.items() if k not in ("file", "sha256")} == {
        k: v for k, v in bundled.card.items() if k not in ("file", "sha256")
    }
    # A file written by this test's own archive writer (checks the writer matches torch's layout).
    tensors, records = legit_parts()
    assert load_policy_bytes(mazewb_file(tensors, records), "fake.pt", device="cpu").scale == 1


def test_a_deflated_but_honest_archive_loads() -> None:
    tensors, records = legit_parts()
    data = mazewb_file(tensors, records, deflate=tuple(records))
    assert load_policy_bytes(data, "deflated.pt", device="cpu").scale == 1


# ------------------------------------------------------------------ training states (--resume)
def train_state(**changes: object) -> dict:
    """A state as ``FastTrainer.save`` writes it (scale 1, one Adam step), with ``changes``."""
    from dataclasses import asdict

    from mazewb.train.common import TRAIN_STATE_FORMAT
    from mazewb.train.fast import FastConfig

    torch.manual_seed(0)
    net = ImpalaPolicy(1)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    net(torch.rand(1, 3, 64, 64))[0].sum().backward()
    opt.step()
    state = {
        "format": TRAIN_STATE_FORMAT, "trainer": "fast", "config": asdict(FastConfig(name="r", threads=1)),
        "model": net.state_dict(), "optimizer": opt.state_dict(), "torch_rng": torch.get_rng_state(),
        "counters": {"step": 1, "samples": 24, "mazes": 1, "seconds": 1.0, "segment": 0},
        "best": float("-inf"), "last_eval": {}, "commands": ["mazewb train fast --name r"],
    }  # fmt: skip
    state.update(changes)
    return state


def _with_optimizer_moment(moment: torch.Tensor) -> dict:
    state = train_state()
    state["optimizer"]["state"][0]["exp_avg"] = moment
    return state


def _nan_model() -> dict:
    state = train_state()
    state["model"]["fc_value.bias"] = torch.full((1,), float("nan"))
    return state


def _laughs() -> list:
    laugh: list = ["ha"]
    for _ in range(40):
        laugh = [laugh, laugh]
    return laugh


HOSTILE_TRAIN_STATES: dict[str, tuple[Callable[[], object], str]] = {
    "code-running": (lambda: train_state(commands=[_Runs(os.system, f"touch {MARKER}")]), "could run code"),
    "stride0-moment": (lambda: _with_optimizer_moment(torch.zeros(1).expand(10**12)), "stride-0"),
    "moment-wrong-shape": (lambda: _with_optimizer_moment(torch.zeros(7)), "'exp_avg' has shape \\(7,\\)"),
    "sparse-moment": (lambda: _with_optimizer_moment(torch.zeros(16, 3, 3, 3).to_sparse()), "sparse tensor"),
    "nan-model": (_nan_model, "fc_value.bias contain NaN"),
    "nan-moving-average": (
        lambda: train_state(ema={**train_state()["model"], "fc_value.bias": torch.full((1,), float("inf"))}),
        "saved moving average fc_value.bias contain NaN or infinite",
    ),
    "moving-average-wrong-shape": (
        lambda: train_state(ema={**train_state()["model"], "fc_policy.bias": torch.zeros(3)}),
        "moving average.*wrong shape for fc_policy.bias",
    ),
    "model-wrong-shape": (
        lambda: train_state(model={**train_state()["model"], "fc_policy.bias": torch.zeros(3)}),
        "wrong shape for fc_policy.bias",
    ),
    "scale-contradicts": (
        lambda: train_state(config={**train_state()["config"], "scale": 2}),
        "saved config says scale 2, the saved weights have scale 1",
    ),
    "unknown-setting": (
        lambda: train_state(config={**train_state()["config"], "evil\nkey": 1}),
        "unknown settings \\['evil\\\\nkey'\\]",
    ),
    "setting-wrong-type": (
        lambda: train_state(config={**train_state()["config"], "lr": "fast"}),
        "saved setting 'lr' is 'fast'; expected a float",
    ),
    "missing-counter": (lambda: train_state(counters={"step": 1}), "counters lack samples, mazes"),
    "billion-laughs": (lambda: train_state(last_eval={"x": _laughs()}), "more than 100,000 values"),
    "not-a-train-state": (lambda: {"model_state_dict": train_state()["model"]}, "not a mazewb training state"),
    "rng-not-bytes": (lambda: train_state(torch_rng=torch.zeros(3)), "random state is not a 1-D byte tensor"),
    "random-bytes": (lambda: bytes(range(256)) * 8, "not a PyTorch checkpoint"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TRAIN_STATES))
def test_hostile_training_state_is_refused_on_resume(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mazewb.errors import ConfigError
    from mazewb.train.fast import FastConfig, FastTrainer

    monkeypatch.chdir(tmp_path)
    make, pattern = HOSTILE_TRAIN_STATES[case]
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    content = make()
    if isinstance(content, bytes):
        (run / "last.pt").write_bytes(content)
    else:
        torch.save(content, run / "last.pt")
    with pytest.raises((CheckpointError, ConfigError), match=pattern) as info:
        FastTrainer(FastConfig(name="r", runs_dir=str(tmp_path / "runs"), threads=1), resume=True)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    assert not (tmp_path / MARKER).exists()


def test_training_state_within_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mazewb.train import common
    from mazewb.train.fast import RESUME_OVERRIDABLE, FastConfig

    path = tmp_path / "r" / "last.pt"
    path.parent.mkdir()
    torch.save(train_state(), path)
    config = FastConfig(name="r", runs_dir=str(tmp_path))
    saved, state = common.resumed_config(config, RESUME_OVERRIDABLE, None)
    assert saved.threads == 1 and torch.equal(state["torch_rng"], train_state()["torch_rng"])
    assert torch.equal(state["model"]["embedder.fc.weight"], train_state()["model"]["embedder.fc.weight"])
    size = path.stat().st_size
    monkeypatch.setattr(common, "MAX_TRAIN_STATE_BYTES", size - 1)  # the file's own size
    with pytest.raises(CheckpointError, match="over the limit"):
        common.load_train_state(path)
    # The tensors' total is checked before any record is read.
    archive = common.CheckpointArchive(path.read_bytes(), "last.pt")
    monkeypatch.setattr(common.CheckpointArchive, "tensor", lambda *a: pytest.fail("read before the budget check"))
    with pytest.raises(CheckpointError, match="its tensors hold .* bytes, over the limit of 1,000"):
        archive.materialise(1000)
