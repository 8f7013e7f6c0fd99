"""Tests of mazewb.policy: the interpretable IMPALA, checkpoints, moves, hooks and interventions.

Real torch, small random networks; the whole file runs in well under a minute on 2 CPU cores.
"""

from __future__ import annotations

import json
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from mazewb.policy import (
    ACTION_TO_MOVE,
    CANONICAL_ACTION,
    CUT_POINTS,
    HOOK_NAMES,
    MOVE_ACTIONS,
    MOVES,
    Ablate,
    AddVector,
    CheckpointError,
    FrozenArray,
    ImpalaPolicy,
    InterventionError,
    ReplaceChannels,
    SetChannels,
    interventions_from_json,
    interventions_to_json,
    load_policy,
    load_policy_bytes,
    make_placeholder_checkpoint,
    move_probs,
    observations_to_tensor,
    predict,
    resume_point,
    run_with_cache,
    run_with_hooks,
    save_policy,
)

RESADD = "embedder.block2.res1.resadd_out"


def make_policy(scale: int = 1, seed: int = 0) -> ImpalaPolicy:
    torch.manual_seed(seed)
    return ImpalaPolicy(scale).eval()


def random_obs(n: int, seed: int = 0) -> Tensor:
    return torch.rand((n, 3, 64, 64), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def policy() -> ImpalaPolicy:
    return make_policy(1, seed=0)


@pytest.fixture(scope="module")
def x() -> Tensor:
    return random_obs(4, seed=1)


def reference_forward(sd: dict[str, Tensor], x: Tensor, edits: dict | None = None) -> tuple[Tensor, Tensor]:
    """The IMPALA forward written out with torch.nn.functional, independent of ImpalaPolicy.

    ``edits`` maps hook names to functions applied to the activation there.
    """
    edits = edits or {}

    def at(name: str, t: Tensor) -> Tensor:
        return edits[name](t) if name in edits else t

    def conv(prefix: str, t: Tensor) -> Tensor:
        return F.conv2d(t, sd[prefix + ".weight"], sd[prefix + ".bias"], padding=1)

    h = at("embedder.block1.conv_in0", x)
    for b in (1, 2, 3):
        p = f"embedder.block{b}"
        h = at(f"{p}.conv_out", conv(f"{p}.conv", h))
        h = at(f"{p}.maxpool_out", F.max_pool2d(h, kernel_size=3, stride=2, padding=1))
        for r in (1, 2):
            q = f"{p}.res{r}"
            skip = h
            h = at(f"{q}.relu1_out", F.relu(h))
            h = at(f"{q}.conv1_out", conv(f"{q}.conv1", h))
            h = at(f"{q}.relu2_out", F.relu(h))
            h = at(f"{q}.conv2_out", conv(f"{q}.conv2", h))
            h = at(f"{q}.resadd_out", h + skip)
    h = at("embedder.relu3_out", F.relu(h))
    h = at("embedder.flatten_out", h.flatten(1))
    h = at("embedder.fc_out", F.linear(h, sd["embedder.fc.weight"], sd["embedder.fc.bias"]))
    h = at("embedder.relufc_out", F.relu(h))
    logits = at("fc_policy_out", F.linear(h, sd["fc_policy.weight"], sd["fc_policy.bias"]))
    value = at("fc_value_out", F.linear(h, sd["fc_value.weight"], sd["fc_value.bias"]))
    return logits, value[:, 0]


def expected_param_names() -> set[str]:
    names = set()
    for b in (1, 2, 3):
        names |= {f"embedder.block{b}.conv.{t}" for t in ("weight", "bias")}
        for r in (1, 2):
            for c in (1, 2):
                names |= {f"embedder.block{b}.res{r}.conv{c}.{t}" for t in ("weight", "bias")}
    for layer in ("embedder.fc", "fc_policy", "fc_value"):
        names |= {f"{layer}.{t}" for t in ("weight", "bias")}
    return names


# ---------------------------------------------------------------- network


def test_scale4_parameter_count_and_names() -> None:
    net = ImpalaPolicy(scale=4)
    assert sum(p.numel() for p in net.parameters()) == 3_653_136
    assert set(net.state_dict()) == expected_param_names()
    assert net.scale == 4 and net.device == torch.device("cpu")


def test_hook_points_names_and_shapes() -> None:
    hp4 = ImpalaPolicy(scale=4).hook_points()
    hp1 = ImpalaPolicy(scale=1).hook_points()
    assert list(hp4) == list(HOOK_NAMES) == list(hp1)
    assert hp4[RESADD] == (128, 16, 16) and hp1[RESADD] == (32, 16, 16)
    assert hp4["embedder.block1.conv_in0"] == (3, 64, 64)
    assert hp4["embedder.block1.conv_out"] == (64, 64, 64)
    assert hp4["embedder.block1.maxpool_out"] == (64, 32, 32)
    assert hp4["embedder.block3.conv_out"] == (128, 16, 16)
    assert hp4["embedder.block3.res2.resadd_out"] == (128, 8, 8)
    assert hp4["embedder.relu3_out"] == (128, 8, 8)
    assert hp4["embedder.flatten_out"] == (8192,)
    assert hp4["embedder.fc_out"] == hp4["embedder.relufc_out"] == (256,)
    assert hp4["fc_policy_out"] == (15,) and hp4["fc_value_out"] == (1,)
    # relu3 comes before flatten, as in the original network.
    assert HOOK_NAMES.index("embedder.relu3_out") < HOOK_NAMES.index("embedder.flatten_out")
    for b in (1, 2, 3):
        for r in (1, 2):
            for point in ("relu1_out", "conv1_out", "relu2_out", "conv2_out", "resadd_out"):
                assert f"embedder.block{b}.res{r}.{point}" in hp1
    # Every hook point is a parameter-free Identity module of the same name.
    net = ImpalaPolicy(scale=1)
    modules = dict(net.named_modules())
    for name in HOOK_NAMES:
        assert isinstance(modules[name], torch.nn.Identity)
    assert "embedder.block2.res1.resadd_out" in CUT_POINTS
    assert "embedder.block2.res1.conv1_out" not in CUT_POINTS
    assert resume_point("embedder.block2.res1.conv1_out") == "embedder.block2.maxpool_out"
    assert resume_point("fc_value_out") == "embedder.relufc_out"


def test_forward_matches_functional_reference(policy: ImpalaPolicy, x: Tensor) -> None:
    with torch.inference_mode():
        logits, value = policy(x)
        ref_logits, ref_value = reference_forward(policy.state_dict(), x)
    assert logits.shape == (4, 15) and value.shape == (4,)
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(value, ref_value)


def test_external_module_hooks_see_the_named_activations(policy: ImpalaPolicy, x: Tensor) -> None:
    seen = {}
    handle = policy.get_submodule(RESADD).register_forward_hook(lambda m, i, o: seen.setdefault("act", o))
    try:
        with torch.inference_mode():
            policy(x)
    finally:
        handle.remove()
    _, _, cache = run_with_cache(policy, x, [RESADD])
    assert torch.equal(seen["act"], cache[RESADD])


def test_forward_rejects_bad_input(policy: ImpalaPolicy) -> None:
    with pytest.raises(ValueError, match=r"\(N, 3, 64, 64\)"):
        policy(torch.zeros(2, 64, 64, 3))
    with pytest.raises(ValueError, match="uint8"):
        policy(torch.zeros(2, 3, 64, 64, dtype=torch.uint8))


# ---------------------------------------------------------------- moves


def test_move_tables() -> None:
    assert MOVES == ("LEFT", "DOWN", "UP", "RIGHT", "NOOP")
    indices = sorted(a for acts in MOVE_ACTIONS.values() for a in acts)
    assert indices == list(range(15))
    for move, action in CANONICAL_ACTION.items():
        assert action in MOVE_ACTIONS[move]
        assert MOVES[ACTION_TO_MOVE[action]] == move


def test_move_probs_sums(policy: ImpalaPolicy, x: Tensor) -> None:
    logits = torch.randn(6, 15, generator=torch.Generator().manual_seed(3)) * 3
    probs = move_probs(logits)
    full = torch.softmax(logits, dim=-1)
    manual = torch.stack([full[:, list(MOVE_ACTIONS[m])].sum(-1) for m in MOVES], dim=-1)
    torch.testing.assert_close(probs, manual)
    torch.testing.assert_close(probs.sum(-1), torch.ones(6))
    np.testing.assert_allclose(move_probs(logits.numpy()), manual.numpy(), rtol=1e-6, atol=1e-7)
    with torch.inference_mode():
        torch.testing.assert_close(policy.move_probs(x), move_probs(policy(x)[0]))


# ---------------------------------------------------------------- checkpoints


class _WritesMarker:
    """Unpickling this object opens (creates) a marker file: stands in for malicious code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.marker), "w"))


def test_langosco_checkpoint_loads_exactly(tmp_path: Path) -> None:
    net = make_policy(4, seed=5)
    sd = net.state_dict()
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-4)
    path = tmp_path / "model_rand_region_5.pth"
    torch.save({"model_state_dict": sd, "optimizer_state_dict": optimizer.state_dict()}, path)
    loaded = load_policy(path, device="cpu")
    assert loaded.scale == 4
    assert loaded.card["source"] == "Langosco et al. checkpoint"
    assert loaded.card["file"] == "model_rand_region_5.pth" and loaded.card["scale"] == 4
    obs = random_obs(2, seed=7)
    with torch.inference_mode():
        assert torch.equal(loaded(obs)[0], net(obs)[0])
        assert torch.equal(loaded(obs)[1], net(obs)[1])


def test_mazewb_format_round_trip_keeps_card(tmp_path: Path, policy: ImpalaPolicy, x: Tensor) -> None:
    card = {"trained": True, "training": {"steps": 25_000_000, "rand_region": 5}, "metrics": {"p": 0.9}}
    path = save_policy(policy, tmp_path / "agent.pt", card)
    loaded = load_policy(path, device="cpu")
    for key, value in card.items():
        assert loaded.card[key] == value
    assert loaded.card["scale"] == 1 and loaded.card["architecture"] == "IMPALA-CNN"
    assert len(loaded.card["sha256"]) == 64
    from_bytes = load_policy_bytes(path.read_bytes(), "agent.pt", device="cpu")
    with torch.inference_mode():
        assert torch.equal(loaded(x)[0], policy(x)[0])
        assert torch.equal(from_bytes(x)[0], policy(x)[0])
    with pytest.raises(CheckpointError, match="over the limit"):
        load_policy_bytes(path.read_bytes(), "agent.pt", max_bytes=1000)
    with pytest.raises(CheckpointError, match="JSON-compatible"):
        save_policy(policy, tmp_path / "bad.pt", {"x": object()})


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("wrap", ["torch.save", "pickle"])
def test_malicious_pickle_is_refused(tmp_path: Path, wrap: str) -> None:
    # The payload works: loading it unsafely creates the marker.
    probe = tmp_path / "probe_marker"
    pickle.loads(pickle.dumps(_WritesMarker(probe))).close()
    assert probe.exists()

    marker = tmp_path / "marker"
    payload = {"model_state_dict": {"embedder.block1.conv.weight": _WritesMarker(marker)}}
    path = tmp_path / "evil.pth"
    if wrap == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError) as info:
        load_policy(path, device="cpu")
    assert "evil.pth" in str(info.value)
    if wrap == "torch.save":
        assert "refused" in str(info.value) and "could run code (io.open)" in str(info.value)
    else:
        assert "not a PyTorch checkpoint" in str(info.value)
    with pytest.raises(CheckpointError):
        load_policy_bytes(path.read_bytes(), "evil.pth", device="cpu")
    assert not marker.exists()


def test_checkpoint_errors_name_the_problem(tmp_path: Path, policy: ImpalaPolicy) -> None:
    good = save_policy(policy, tmp_path / "good.pt", {"trained": False})
    sd = policy.state_dict()

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt.*(corrupt|truncated)"):
        load_policy(truncated)

    text = tmp_path / "notes.txt"
    text.write_text("hello, not a checkpoint\n")
    with pytest.raises(CheckpointError, match="notes.txt.*(corrupt|truncated|another kind)"):
        load_policy(text)

    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "missing.pt")

    def write(name: str, obj: object) -> Path:
        torch.save(obj, tmp_path / name)
        return tmp_path / name

    with pytest.raises(CheckpointError, match="not a policy checkpoint.*'foo'"):
        load_policy(write("foo.pt", {"foo": 1}))
    with pytest.raises(CheckpointError, match="not a policy checkpoint.*list"):
        load_policy(write("list.pt", [1, 2]))
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'other-v9'"):
        load_policy(write("other.pt", {"format": "other-v9", "state_dict": sd}))

    wrong = dict(sd)
    wrong["embedder.fc.weight"] = torch.zeros(256, 100)
    with pytest.raises(CheckpointError) as info:
        load_policy(write("wrong.pth", {"model_state_dict": wrong}))
    assert "embedder.fc.weight" in str(info.value)
    assert "(256, 100)" in str(info.value) and "(256, 2048)" in str(info.value)

    unknown = {**sd, "embedder.block4.conv.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"unknown keys \['embedder.block4.conv.weight'\]"):
        load_policy(write("unknown.pth", {"model_state_dict": unknown}))

    missing = {k: v for k, v in sd.items() if k != "fc_value.bias"}
    with pytest.raises(CheckpointError, match=r"missing keys \['fc_value.bias'\]"):
        load_policy(write("missing.pth", {"model_state_dict": missing}))

    odd = {**sd, "embedder.block1.conv.weight": torch.zeros(20, 3, 3, 3)}
    with pytest.raises(CheckpointError, match="20 output channels"):
        load_policy(write("odd.pth", {"model_state_dict": odd}))

    nan = {**sd, "fc_policy.bias": torch.full((15,), float("nan"))}
    with pytest.raises(CheckpointError, match="fc_policy.bias contains NaN"):
        load_policy(write("nan.pth", {"model_state_dict": nan}))


def test_default_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, x: Tensor) -> None:
    monkeypatch.setenv("MAZEWB_CHECKPOINT", str(tmp_path / "none.pt"))
    with pytest.raises(CheckpointError, match="no default checkpoint.*none.pt"):
        load_policy()
    path = make_placeholder_checkpoint(tmp_path / "placeholder.pt", seed=3)
    monkeypatch.setenv("MAZEWB_CHECKPOINT", str(path))
    loaded = load_policy(device="cpu")
    assert loaded.card["placeholder"] is True and loaded.card["trained"] is False
    assert "UNTRAINED" in loaded.card["description"]
    with torch.inference_mode():
        assert torch.equal(loaded(x)[0], load_policy(path, device="cpu")(x)[0])


# ---------------------------------------------------------------- interventions


def test_add_vector_matches_manual_computation(policy: ImpalaPolicy, x: Tensor) -> None:
    shape = policy.hook_points()[RESADD]
    vector = torch.randn(shape, generator=torch.Generator().manual_seed(9))
    iv = AddVector(RESADD, vector.numpy(), coeff=-1.5)
    assert np.array_equal(iv.array(), vector.numpy())
    _, _, clean = run_with_cache(policy, x, [RESADD])
    logits, value, cache = run_with_hooks(policy, x, [iv], cache=[RESADD])
    expected = clean[RESADD] + (-1.5) * vector
    assert torch.equal(cache[RESADD], expected)
    with torch.inference_mode():
        ref_logits, ref_value = reference_forward(
            policy.state_dict(), x, {RESADD: lambda t: t + (-1.5) * vector}
        )
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(value, ref_value)
    # The change reaches the output.
    assert not torch.allclose(logits, run_with_hooks(policy, x)[0])


def test_add_vector_inside_residual_block(policy: ImpalaPolicy, x: Tensor) -> None:
    hook = "embedder.block2.res2.relu1_out"
    vector = torch.randn(policy.hook_points()[hook], generator=torch.Generator().manual_seed(2))
    logits, _, _ = run_with_hooks(policy, x, [AddVector(hook, vector, 2.0)])
    with torch.inference_mode():
        ref, _ = reference_forward(policy.state_dict(), x, {hook: lambda t: t + 2.0 * vector})
    torch.testing.assert_close(logits, ref)


def test_set_channels(policy: ImpalaPolicy, x: Tensor) -> None:
    channels, cells = (3, 7), ((0, 0), (5, 9), (15, 15))
    _, _, clean = run_with_cache(policy, x, [RESADD])
    _, _, cache = run_with_hooks(policy, x, [SetChannels(RESADD, channels, cells, 4.25)], cache=[RESADD])
    act, orig = cache[RESADD], clean[RESADD]
    mask = torch.zeros_like(orig, dtype=torch.bool)
    for c in channels:
        for r, col in cells:
            mask[:, c, r, col] = True
    assert torch.all(act[mask] == 4.25)
    assert torch.equal(act[~mask], orig[~mask])
    # cells=None sets whole maps; flat hook points take units.
    _, _, cache = run_with_hooks(policy, x, [SetChannels(RESADD, (1,), None, -2.0)], cache=[RESADD])
    assert torch.all(cache[RESADD][:, 1] == -2.0)
    _, _, cache = run_with_hooks(
        policy, x, [SetChannels("embedder.relufc_out", (0, 255), value=1.0)], cache=["embedder.relufc_out"]
    )
    assert torch.all(cache["embedder.relufc_out"][:, [0, 255]] == 1.0)


def test_replace_channels(policy: ImpalaPolicy, x: Tensor) -> None:
    other = random_obs(4, seed=11)
    _, _, clean = run_with_cache(policy, x, [RESADD])
    _, _, donor = run_with_cache(policy, other, [RESADD])
    channels = (5, 0, 30)
    per_item = donor[RESADD][:, list(channels)]
    logits, _, cache = run_with_hooks(
        policy, x, [ReplaceChannels(RESADD, channels, per_item)], cache=[RESADD]
    )
    expected = clean[RESADD].clone()
    expected[:, list(channels)] = per_item
    assert torch.equal(cache[RESADD], expected)
    with torch.inference_mode():
        ref, _ = reference_forward(policy.state_dict(), x, {RESADD: lambda t: expected})
    torch.testing.assert_close(logits, ref)
    # One source broadcast over the batch.
    _, _, cache = run_with_hooks(policy, x, [ReplaceChannels(RESADD, channels, per_item[2])], cache=[RESADD])
    for i in range(4):
        assert torch.equal(cache[RESADD][i, list(channels)], per_item[2])
    with pytest.raises(InterventionError, match="source shape"):
        run_with_hooks(policy, x[:3], [ReplaceChannels(RESADD, channels, per_item)])


def test_ablations(policy: ImpalaPolicy, x: Tensor) -> None:
    _, _, clean = run_with_cache(policy, x, [RESADD])
    orig = clean[RESADD]
    _, _, cache = run_with_hooks(policy, x, [Ablate(RESADD, (2, 4))], cache=[RESADD])
    assert torch.all(cache[RESADD][:, [2, 4]] == 0)
    others = [c for c in range(32) if c not in (2, 4)]
    assert torch.equal(cache[RESADD][:, others], orig[:, others])
    _, _, cache = run_with_hooks(policy, x, [Ablate(RESADD)], cache=[RESADD])
    assert torch.all(cache[RESADD] == 0)

    mean = orig.mean(0)
    _, _, cache = run_with_hooks(policy, x, [Ablate(RESADD, (2, 4), "mean", mean)], cache=[RESADD])
    for i in range(4):
        assert torch.equal(cache[RESADD][i, [2, 4]], mean[[2, 4]])
    assert torch.equal(cache[RESADD][:, others], orig[:, others])


def test_interventions_at_one_hook_apply_in_order(policy: ImpalaPolicy, x: Tensor) -> None:
    ones = np.ones(policy.hook_points()[RESADD], dtype=np.float32)
    ivs = [Ablate(RESADD, (0,)), AddVector(RESADD, ones, 3.0)]
    _, _, cache = run_with_hooks(policy, x, ivs, cache=[RESADD])
    assert torch.all(cache[RESADD][:, 0] == 3.0)


def all_kinds(policy: ImpalaPolicy) -> list:
    shape = policy.hook_points()[RESADD]
    rng = np.random.default_rng(0)
    return [
        AddVector(RESADD, rng.normal(size=shape).astype(np.float32), 0.5),
        SetChannels(RESADD, (1, 2), ((3, 4), (0, 15)), 1.5),
        SetChannels("embedder.fc_out", (7,), None, 0.0),
        ReplaceChannels(RESADD, (4,), rng.normal(size=(1, 16, 16))),
        ReplaceChannels(RESADD, (4, 5), rng.normal(size=(3, 2, 16, 16))),
        Ablate(RESADD),
        Ablate(RESADD, (1,), "mean", rng.normal(size=shape)),
    ]


def test_json_round_trip(policy: ImpalaPolicy) -> None:
    ivs = all_kinds(policy)
    text = interventions_to_json(ivs)
    back = interventions_from_json(text)
    assert list(back) == ivs
    assert [hash(a) for a in back] == [hash(b) for b in ivs]
    assert {json.loads(text)[i]["kind"] for i in range(len(ivs))} == {
        "add_vector",
        "set_channels",
        "replace_channels",
        "ablate",
    }
    hand = '[{"kind": "set_channels", "hook": "embedder.fc_out", "channels": [1], "value": 2},'
    hand += '{"kind": "add_vector", "hook": "fc_value_out", "vector": {"shape": [1], "values": [0.5]}}]'
    parsed = interventions_from_json(hand)
    assert parsed[0] == SetChannels("embedder.fc_out", (1,), None, 2.0)
    assert parsed[1] == AddVector("fc_value_out", [0.5], 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"kind": "ablate"}', "must be a list"),
        ('[{"kind": "explode", "hook": "fc_policy_out"}]', "unknown intervention kind 'explode'"),
        ('[{"kind": "ablate"}]', r"missing \['hook'\]"),
        ('[{"kind": "ablate", "hook": "fc_policy_out", "colour": 1}]', r"unknown key\(s\) \['colour'\]"),
        ('[{"kind": "ablate", "hook": "embedder.block2.res1.resad_out"}]', "did you mean embedder.block2"),
        ('[{"kind": "ablate", "hook": "fc_policy_out", "channels": [-1]}]', "non-negative"),
        ('[{"kind": "ablate", "hook": "fc_policy_out", "mode": "mean"}]', "needs the mean"),
        ('[{"kind": "set_channels", "hook": "fc_policy_out", "channels": [1], "value": "x"}]', "number"),
        (
            '[{"kind": "add_vector", "hook": "fc_policy_out", "vector": {"shape": [2], "base64": "%%"}}]',
            "not valid base64",
        ),
        (
            '[{"kind": "add_vector", "hook": "fc_value_out", "vector": {"shape": [3], "base64": "AAAA"}}]',
            "needs 12",
        ),
    ],
)
def test_json_errors(text: str, message: str) -> None:
    with pytest.raises(InterventionError, match=message):
        interventions_from_json(text)


def test_validation_at_application(policy: ImpalaPolicy, x: Tensor) -> None:
    with pytest.raises(InterventionError, match=r"has 32 channels \(0..31\); got channel\(s\) \[40\]"):
        run_with_hooks(policy, x, [Ablate(RESADD, (40,))])
    with pytest.raises(InterventionError, match="vector shape"):
        run_with_hooks(policy, x, [AddVector(RESADD, np.zeros((32, 8, 8)))])
    with pytest.raises(InterventionError, match="outside the 16x16"):
        run_with_hooks(policy, x, [SetChannels(RESADD, (0,), ((16, 0),), 1.0)])
    with pytest.raises(InterventionError, match="no cells"):
        run_with_hooks(policy, x, [SetChannels("embedder.fc_out", (0,), ((0, 0),), 1.0)])
    with pytest.raises(InterventionError, match="mean shape"):
        run_with_hooks(policy, x, [Ablate(RESADD, (0,), "mean", np.zeros((1, 16, 16)))])
    with pytest.raises(InterventionError, match="hook point 'fc_polcy_out'; did you mean fc_policy_out"):
        run_with_hooks(policy, x, cache=["fc_polcy_out"])
    with pytest.raises(InterventionError, match="NaN"):
        AddVector(RESADD, np.full((32, 16, 16), np.nan))


def test_nothing_stays_patched(policy: ImpalaPolicy, x: Tensor) -> None:
    with torch.inference_mode():
        before = policy(x)
    run_with_hooks(policy, x, all_kinds(policy)[:3] + all_kinds(policy)[5:], cache="all")
    with pytest.raises(InterventionError):
        run_with_hooks(policy, x, [AddVector(RESADD, np.zeros((32, 16, 16))), Ablate(RESADD, (99,))])
    with torch.inference_mode():
        after = policy(x)
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    for module in policy.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_cache_all_holds_every_hook_point(policy: ImpalaPolicy, x: Tensor) -> None:
    logits, value, cache = run_with_cache(policy, x)
    assert list(cache) == list(HOOK_NAMES)
    for name, shape in policy.hook_points().items():
        assert tuple(cache[name].shape) == (4, *shape)
    assert torch.equal(cache["fc_policy_out"], logits)
    assert torch.equal(cache["fc_value_out"][:, 0], value)


def test_concurrent_threads_do_not_interfere(policy: ImpalaPolicy) -> None:
    shape = policy.hook_points()[RESADD]
    jobs = []
    for i in range(8):
        obs = random_obs(3, seed=100 + i)
        ivs = [AddVector(RESADD, np.full(shape, 5.0 + i, np.float32), 1.0)] if i % 2 else []
        logits, _, _ = run_with_hooks(policy, obs, ivs)
        jobs.append((obs, ivs, logits))
    barrier = threading.Barrier(8)

    def work(job: tuple) -> float:
        obs, ivs, expected = job
        barrier.wait()
        worst = 0.0
        for _ in range(10):
            logits, _, _ = run_with_hooks(policy, obs, ivs)
            worst = max(worst, (logits - expected).abs().max().item())
        return worst

    with ThreadPoolExecutor(8) as pool:
        worst = list(pool.map(work, jobs))
    # Interference would move logits by O(1); allow only float noise from thread scheduling.
    assert max(worst) < 1e-5, worst


@pytest.mark.parametrize(
    "hook", [RESADD, "embedder.block2.res1.conv1_out", "embedder.relufc_out", "fc_policy_out"]
)
def test_start_reuse_equals_full_forward(policy: ImpalaPolicy, x: Tensor, hook: str) -> None:
    vector = torch.randn(policy.hook_points()[hook], generator=torch.Generator().manual_seed(4))
    ivs = [AddVector(hook, vector, 1.0)]
    start = resume_point(hook)
    _, _, clean = run_with_cache(policy, x, [start])
    full = run_with_hooks(policy, x, ivs, cache=[hook])
    resumed = run_with_hooks(policy, None, ivs, cache=[hook], start=(start, clean[start]))
    for a, b in zip(full[:2], resumed[:2], strict=True):
        assert torch.equal(a, b)
    assert torch.equal(full[2][hook], resumed[2][hook])


def test_start_errors(policy: ImpalaPolicy, x: Tensor) -> None:
    _, _, clean = run_with_cache(policy, x, [RESADD, "embedder.block2.maxpool_out"])
    with pytest.raises(InterventionError, match="resume from 'embedder.block2.maxpool_out'"):
        run_with_hooks(policy, None, start=("embedder.block2.res1.conv1_out", clean[RESADD]))
    with pytest.raises(InterventionError, match="come before the start point"):
        run_with_hooks(policy, None, [Ablate("embedder.block2.maxpool_out")], start=(RESADD, clean[RESADD]))
    with pytest.raises(ValueError, match="must have shape"):
        run_with_hooks(policy, None, start=(RESADD, torch.zeros(4, 32, 8, 8)))


# ---------------------------------------------------------------- batched prediction


def test_predict_exact_path_matches_forward(policy: ImpalaPolicy) -> None:
    obs = np.random.default_rng(0).integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    logits, value = predict(policy, obs, batch_size=10)
    # contiguous(): a permuted NHWC view would make the convolutions take the channels_last
    # path, which sums in another order (differences ~1e-7).
    x = (torch.from_numpy(obs).permute(0, 3, 1, 2).float() / 255).contiguous()
    with torch.inference_mode():
        ref_logits, ref_value = policy(x)
    assert torch.equal(logits, ref_logits) and torch.equal(value, ref_value)
    batched, _ = predict(policy, obs, batch_size=3)
    torch.testing.assert_close(batched, ref_logits)
    iv = Ablate(RESADD, (0, 1))
    steered, _ = predict(policy, obs, batch_size=4, interventions=[iv])
    torch.testing.assert_close(steered, run_with_hooks(policy, x, [iv])[0])
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        predict(policy, obs.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="uint8"):
        observations_to_tensor(obs.astype(np.float32))


# Measured on this machine (random scale-1 nets, 512 random uint8 observations, seeds 0-2):
# max |bf16 - fp32| of move probabilities 0.7e-4 .. 1.2e-4 with default initialisation (logits
# std 0.04); 1.5e-2 .. 2.1e-2 when the policy head is scaled x100 (logits std 3-4.5, as
# confident as a trained agent). The bounds below leave about a factor 2.5-10 of margin.
@pytest.mark.parametrize(("head_gain", "bound"), [(1.0, 1e-3), (100.0, 5e-2)])
def test_bf16_fast_path_is_close_to_fp32(head_gain: float, bound: float) -> None:
    net = make_policy(1, seed=0)
    with torch.no_grad():
        net.fc_policy.weight *= head_gain
    obs = np.random.default_rng(0).integers(0, 256, (128, 64, 64, 3), dtype=np.uint8)
    exact, _ = predict(net, obs)
    fast, _ = predict(net, obs, fast=True, batch_size=64)
    assert fast.dtype == torch.float32
    assert (move_probs(fast) - move_probs(exact)).abs().max().item() < bound


def test_frozen_array_round_trip() -> None:
    values = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 7
    frozen = FrozenArray.of(values)
    assert frozen == FrozenArray.from_dict(frozen.to_dict())
    assert np.array_equal(frozen.array(), values)
    assert not frozen.array().flags.writeable
