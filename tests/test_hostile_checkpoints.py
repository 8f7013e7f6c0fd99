"""Hostile checkpoints: a generator of crafted files, each refused with the right CheckpointError,
in bounded time and memory, and no pickled code ever run. Legitimate files still load."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
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
    less than 100 MB over the whole run (the issue's files cost 0.8 to 1.45 GB), and the run
    ends well inside its timeout."""
    script = textwrap.dedent(
        f"""
        import json, resource, sys
        from pathlib import Path
        from mazewb.errors import CheckpointError
        from mazewb.policy import load_policy
        load_policy({str(ROOT / "checkpoints" / "default.pt")!r}, device="cpu")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        refused = 0
        for path in sorted(Path({str(hostile_dir)!r}).glob("*.pt")):
            try:
                load_policy(path, device="cpu")
            except CheckpointError:
                refused += 1
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"refused": refused, "growth_kb": after - before}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["refused"] == len(HOSTILE)
    assert result["growth_kb"] < 100 * 1024, result


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
    assert result["total"] == pytest.approx(sum(float(p.double().sum()) for p in net.parameters()), rel=1e-12)
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
