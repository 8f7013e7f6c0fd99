"""The analysis engine: exact outcomes by hand, vector fields, prefix reuse, rollouts in the real
game, activations, steering, retargeting and patching (random scale-1 networks, small levels)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from mazewb import Maze
from mazewb.analysis import (
    DEFAULT_LAYER,
    VectorField,
    ZeroVectorWarning,
    activations,
    cell_squares,
    channel_maps,
    cheese_probability_from_each,
    cheese_vector,
    decision_choice,
    decision_probabilities,
    field_outcomes,
    field_squares,
    mean_ablation,
    mean_activation,
    normalized_path_probabilities,
    outcomes,
    outcomes_from_probs,
    patch_effects,
    reach_map,
    resampled_channels,
    resampling_sources,
    retarget,
    retargeting_map,
    sample_rollouts,
    square_cell,
    square_values,
    steering_sweep,
    step_probabilities,
    summarize_rollouts,
    top_right_corridor,
    top_right_vector,
    vector_field,
    vector_field_diff,
    vector_fields,
    vector_fields_of_mazes,
    with_coeff,
    zero_ablation,
)
from mazewb.analysis.chain import build_chain, hitting_probabilities, reach_probabilities
from mazewb.maze import render_observations
from mazewb.maze.graph import step
from mazewb.policy import MOVES, AddVector, ImpalaPolicy, ReplaceChannels, SetChannels, move_probs, predict

SMALL_SEED = 26  # a 7x7 level with a decision square, cheese outside the top-right 5x5
TINY_SEED = 3  # a 5x5 level with a decision square


@pytest.fixture(scope="module")
def policy() -> ImpalaPolicy:
    torch.manual_seed(0)
    return ImpalaPolicy(scale=1).eval()


@pytest.fixture(scope="module")
def small() -> Maze:
    return Maze.from_seed(SMALL_SEED)


def table(maze: Maze, rules: dict[tuple[int, int], dict[str, float]], default: str = "NOOP") -> np.ndarray:
    """Move probabilities per open square (open_cells order): ``rules[square]`` or all on ``default``."""
    out = np.zeros((len(maze.open_cells()), 5))
    for i, sq in enumerate(maze.open_cells()):
        for move, p in rules.get(sq, {default: 1.0}).items():
            out[i, MOVES.index(move)] = p
    return out


# --- exact outcomes by hand ---------------------------------------------------------------------------


def test_corridor_outcomes_by_hand() -> None:
    # M . C along the bottom row: two successful RIGHT moves reach the cheese.
    maze = Maze.from_strings(["###", "###", "M.C"])
    probs = np.tile([0.0, 0.0, 0.0, 0.5, 0.5], (3, 1))  # RIGHT or NOOP, 50/50
    # Within 3 steps: at least 2 successes in 3 fair trials = 4/8; E[min(T, 3)] = 2/4 + 3 * 3/4.
    short = outcomes_from_probs(maze, probs, horizon=3)
    assert short.p_cheese == pytest.approx(0.5, abs=1e-12)
    assert short.expected_steps == pytest.approx(2.75, abs=1e-12)
    assert short.p_timeout == pytest.approx(0.5, abs=1e-12)
    # Within 500 steps: sum of two geometric(1/2) waits, mean 4 (the tail beyond 500 is ~1e-148).
    full = outcomes_from_probs(maze, probs)
    assert full.p_cheese == pytest.approx(1.0, abs=1e-12)
    assert full.expected_steps == pytest.approx(4.0, abs=1e-9)
    assert full.p_top_right == 0.0  # the top-right square is a wall here


def test_fork_outcomes_reach_and_path_probability_by_hand(fork: Maze) -> None:
    # At the start: UP (towards the cheese, 4 moves) with 0.3, RIGHT (towards the top-right
    # square, 8 moves) with 0.7; every later square moves on deterministically.
    up = {sq: {"UP": 1.0} for sq in [(1, 0), (2, 0), (3, 0), (1, 2), (3, 3)]}
    rules = {
        (0, 0): {"UP": 0.3, "RIGHT": 0.7},
        (0, 1): {"RIGHT": 1.0},
        (0, 2): {"UP": 1.0},
        (2, 2): {"RIGHT": 1.0},
        (2, 3): {"UP": 1.0},
        (4, 3): {"RIGHT": 1.0},
        **up,
    }
    probs = table(fork, rules)
    out = outcomes_from_probs(fork, probs)
    assert out.p_cheese == pytest.approx(0.3, abs=1e-12)
    assert out.p_top_right == pytest.approx(0.7, abs=1e-12)
    assert out.p_neither == pytest.approx(0.0, abs=1e-12)
    assert out.expected_steps == pytest.approx(0.3 * 4 + 0.7 * 500, abs=1e-9)

    field = VectorField(
        fork,
        np.array(field_squares(fork)),
        np.array([probs[fork.open_cells().index(sq)] for sq in field_squares(fork)]),
    )
    reach = dict(zip(fork.open_cells(), reach_map(field), strict=True))
    assert reach[(2, 0)] == pytest.approx(0.3) and reach[(4, 0)] == pytest.approx(0.3)
    assert reach[(2, 3)] == pytest.approx(0.7) and reach[(4, 4)] == pytest.approx(0.7)
    assert reach[(0, 3)] == 0.0 and reach[(0, 0)] == 1.0
    path = dict(zip(fork.open_cells(), normalized_path_probabilities(field), strict=True))
    assert path[(4, 4)] == pytest.approx(0.7 ** (1 / 8))
    assert path[(3, 0)] == pytest.approx(0.3 ** (1 / 3))
    assert path[(0, 0)] == 1.0 and path[(0, 3)] == 0.0
    assert field_outcomes(field).p_cheese == pytest.approx(0.3, abs=1e-12)
    from_each = dict(zip(field_squares(fork), cheese_probability_from_each(field), strict=True))
    assert from_each[(0, 0)] == pytest.approx(0.3) and from_each[(1, 0)] == pytest.approx(1.0)
    assert from_each[(0, 1)] == 0.0  # heads for the top-right square and stays there
    # Greedy episodes in the real game follow the most likely move: UP at the start (0.3 is not
    # the largest, so make it so), then up the left side to the cheese in 4 steps.
    greedy_table = probs.copy()
    greedy_table[fork.open_cells().index((0, 0))] = [0.0, 0.0, 0.6, 0.4, 0.0]
    (run,) = sample_rollouts(greedy_table, fork, 1, greedy=True)
    assert run.reached_cheese and run.squares == ((0, 0), (1, 0), (2, 0), (3, 0), (4, 0))


def test_step_probabilities_and_the_choice_at_a_fork(fork: Maze) -> None:
    # Every square: UP 0.3, RIGHT 0.5, NOOP 0.2. The shortest paths from the start (0, 0): UP to
    # the cheese at (4, 0), RIGHT to the top-right square (4, 4).
    rules = {sq: {"UP": 0.3, "RIGHT": 0.5, "NOOP": 0.2} for sq in fork.open_cells()}
    probs = table(fork, rules)
    squares = field_squares(fork)
    field = VectorField(fork, np.array(squares), np.array([probs[fork.open_cells().index(sq)] for sq in squares]))
    to_cheese = dict(zip(squares, step_probabilities(field, fork.cheese), strict=True))
    assert to_cheese[(0, 0)] == pytest.approx(0.3) and to_cheese[(0, 1)] == 0.0  # (0, 1): LEFT is the way
    to_corner = dict(zip(squares, step_probabilities(field, fork.top_right), strict=True))
    assert to_corner[(0, 0)] == pytest.approx(0.5) and math.isnan(to_corner[(4, 4)])  # the goal itself
    assert np.isnan(step_probabilities(field, None)).all()
    choice = decision_choice(fork, (0, 0), field.at((0, 0)))
    assert (choice.cheese_move, choice.top_right_move) == ("UP", "RIGHT")
    assert (choice.p_cheese, choice.p_top_right, choice.p_other) == pytest.approx((0.3, 0.5, 0.2))
    assert choice.choice == "top_right"
    with pytest.raises(ValueError, match="not on the way"):
        decision_choice(fork, (4, 0), field.at((3, 0)))  # the cheese square forks nowhere


def test_cheese_blocks_squares_beyond_it() -> None:
    maze = Maze.from_strings(["####", "####", "####", "M.C."])
    probs = np.tile([0.2, 0.0, 0.0, 0.6, 0.2], (4, 1))
    reach = reach_probabilities(maze, probs)
    assert reach[3] == 0.0 and reach[2] == pytest.approx(1.0, abs=1e-9)


def _dense_hitting(chain, probs: np.ndarray, start: int, target: int, absorbing: list[int], horizon: int):
    n = len(chain.cells)
    matrix = np.zeros((n, n))
    for i in range(n):
        for m in range(5):
            matrix[i, chain.next_index[i, m]] += probs[i, m]
    dist = np.zeros(n)
    dist[start] = 1.0
    reached, alive = float(start == target), 0.0
    dist[[target, *absorbing]] = 0.0
    for _ in range(horizon):
        alive += dist.sum()
        dist = dist @ matrix
        reached += dist[target]
        dist[[target, *absorbing]] = 0.0
    return reached, alive


def test_batched_chain_matches_dense_matrix_powers() -> None:
    maze = Maze.from_seed(SMALL_SEED)
    chain = build_chain(maze)
    rng = np.random.default_rng(0)
    n = len(chain.cells)
    targets = [chain.cells[k] for k in (3, 10, 20)]
    per_target = rng.dirichlet(np.ones(5), size=(3, n))  # a different table for every target
    blockers = [[chain.cells[5]], [], [chain.cells[1], chain.cells[2]]]
    reach, alive = hitting_probabilities(
        chain, per_target, maze.mouse, targets, horizon=60, absorbing_per_target=blockers
    )
    for k, t in enumerate(targets):
        want = _dense_hitting(
            chain, per_target[k], chain.index(maze.mouse), chain.index(t), [chain.index(b) for b in blockers[k]], 60
        )
        assert reach[k] == pytest.approx(want[0], abs=1e-12)
        assert alive[k] == pytest.approx(want[1], abs=1e-9)


# --- vector fields and the prefix reuse ---------------------------------------------------------------


def test_vector_field_is_the_policy_on_every_square(policy: ImpalaPolicy, small: Maze) -> None:
    vf = vector_field(policy, small)
    squares = [sq for sq in small.open_cells() if sq != small.cheese]
    assert [tuple(c) for c in vf.cells] == squares
    assert vf.probs.shape == (len(squares), 5)
    np.testing.assert_allclose(vf.probs.sum(axis=1), 1.0, atol=1e-12)
    logits, _ = predict(policy, render_observations(small, squares))
    np.testing.assert_allclose(vf.probs, move_probs(logits).double().numpy(), atol=1e-6)
    net = vf.net()
    np.testing.assert_allclose(net[:, 0], vf.probs[:, 3] - vf.probs[:, 0])
    chain_rows = vf.chain_probs()
    assert chain_rows[small.open_cells().index(small.cheese), MOVES.index("NOOP")] == 1.0
    # Many mazes at once give the same fields as one at a time.
    many = vector_fields_of_mazes(policy, [small, Maze.from_seed(TINY_SEED)], batch_size=16)
    np.testing.assert_allclose(many[0].probs, vf.probs, atol=1e-5)


def test_prefix_reuse_is_exactly_equal(policy: ImpalaPolicy, small: Maze) -> None:
    rng = np.random.default_rng(1)
    n = len(field_squares(small))
    shape = policy.hook_points()[DEFAULT_LAYER]
    variants = [
        (),
        (AddVector(DEFAULT_LAYER, rng.normal(size=shape).astype(np.float32), 2.0),),
        (
            SetChannels(DEFAULT_LAYER, (1, 5), ((3, 4),), 3.0),
            SetChannels("embedder.block3.res2.conv1_out", (0,), None, 1.0),
        ),
        (ReplaceChannels(DEFAULT_LAYER, (2, 7), rng.normal(size=(n, 2, *shape[1:])).astype(np.float32)),),
    ]
    # A batch size that splits the squares: per-item sources are split along with them.
    reused = vector_fields(policy, small, variants, reuse=True, batch_size=12)
    separate = vector_fields(policy, small, variants, reuse=False, batch_size=12)
    for a, b in zip(reused, separate, strict=True):
        assert np.array_equal(a.probs, b.probs)
    assert not np.array_equal(reused[0].probs, reused[1].probs)  # the patches do something


def test_field_diff_and_decision_probabilities(policy: ImpalaPolicy, small: Maze) -> None:
    base, patched = vector_fields(policy, small, [(), (zero_ablation(DEFAULT_LAYER, [0, 1, 2]),)])
    diff = vector_field_diff(patched, base)
    np.testing.assert_allclose(diff.delta, patched.probs - base.probs)
    np.testing.assert_allclose(diff.tv, 0.5 * np.abs(diff.delta).sum(axis=1))
    assert diff.mean_tv == pytest.approx(diff.tv.mean())
    assert vector_field_diff(base, base).mean_tv == 0.0

    tiny = Maze.from_seed(TINY_SEED)
    no_ds = Maze.from_seed(1)
    choices = decision_probabilities(policy, [small, no_ds, tiny])
    assert choices[1] is None
    for maze, choice in ((small, choices[0]), (tiny, choices[2])):
        field = vector_field(policy, maze)
        p = field.at(choice.square)
        assert choice.p_cheese == pytest.approx(p[MOVES.index(choice.cheese_move)], abs=1e-5)
        assert choice.p_top_right == pytest.approx(p[MOVES.index(choice.top_right_move)], abs=1e-5)
        assert choice.p_cheese + choice.p_top_right + choice.p_other == pytest.approx(1.0)
    assert (choices[0].cheese_move, choices[0].top_right_move) == ("RIGHT", "UP")
    # Per-maze variants: each maze runs under its own interventions.
    cv = cheese_vector(policy, small, -3.0)
    mixed = decision_probabilities(policy, [small, tiny], per_maze=[(cv,), ()])
    alone = decision_probabilities(policy, [small], [cv])[0]
    assert mixed[0].p_cheese == pytest.approx(alone.p_cheese, abs=1e-6)
    assert mixed[1].p_cheese == pytest.approx(choices[2].p_cheese, abs=1e-6)


# --- outcomes: exact vs sampled in the real game ------------------------------------------------------


def test_exact_outcomes_agree_with_the_real_game(fork: Maze) -> None:
    # A fixed stochastic table on the hand-made fork; a 60-step horizon keeps episodes short.
    probs = np.tile([0.15, 0.1, 0.35, 0.3, 0.1], (len(fork.open_cells()), 1))
    exact = outcomes_from_probs(fork, probs, horizon=60)
    assert 0.2 < exact.p_cheese < 0.8 and 0.1 < exact.p_top_right < 0.7
    runs = sample_rollouts(probs, fork, 400, seed=3, max_steps=60)
    got = summarize_rollouts(runs, fork)
    assert abs(got.p_cheese - exact.p_cheese) < 4 * got.se_cheese
    assert abs(got.p_top_right - exact.p_top_right) < 4 * got.se_top_right
    assert abs(got.mean_steps - exact.expected_steps) < 4 * got.se_steps
    # The game's positions follow exactly the chain's moves (blocked moves stay).
    for run in runs[:50]:
        for t, move in enumerate(run.moves):
            assert run.squares[t + 1] == step(fork, run.squares[t], MOVES[move])


def test_policy_rollouts_and_outcomes(policy: ImpalaPolicy, small: Maze) -> None:
    runs = sample_rollouts(policy, small, 3, [zero_ablation(DEFAULT_LAYER, [0])], seed=0, max_steps=8)
    assert len(runs) == 3 and all(r.steps <= 8 for r in runs)
    for run in runs:
        assert run.squares[0] == small.mouse
        for t, move in enumerate(run.moves):
            assert run.squares[t + 1] == step(small, run.squares[t], MOVES[move])
    out = outcomes(policy, small)
    assert out.p_cheese + out.p_timeout == pytest.approx(1.0)
    assert 0.0 <= out.p_top_right <= 1.0 and 0.0 <= out.expected_steps <= 500.0


# --- activations --------------------------------------------------------------------------------------


def test_activations_aligned_to_the_maze(policy: ImpalaPolicy, small: Maze) -> None:
    maps = channel_maps(policy, small)
    assert maps.shape == policy.hook_points()[DEFAULT_LAYER]
    acts = activations(policy, small, [DEFAULT_LAYER, "embedder.block3.conv_out"], [small.mouse, (2, 2)])
    np.testing.assert_allclose(acts[DEFAULT_LAYER][0], maps, atol=1e-5)  # batch-size rounding
    assert acts["embedder.block3.conv_out"].shape[0] == 2
    values = square_values(small, maps)
    assert values.shape == (maps.shape[0], 7, 7)
    cell = square_cell(small, small.cheese, 16)
    assert small.cheese in cell_squares(small, cell, 16)
    np.testing.assert_array_equal(values[:, small.cheese[0], small.cheese[1]], maps[:, cell[0], cell[1]])
    wall = next((r, c) for r in range(7) for c in range(7) if small.walls[r][c])
    assert np.isnan(values[0, wall[0], wall[1]])


# --- steering -----------------------------------------------------------------------------------------


def test_cheese_and_top_right_vectors(policy: ImpalaPolicy, small: Maze) -> None:
    cv = cheese_vector(policy, small, -1.0)
    acts = activations(policy, small, [DEFAULT_LAYER])[DEFAULT_LAYER][0]
    plain = activations(policy, small.without_cheese(), [DEFAULT_LAYER])[DEFAULT_LAYER][0]
    np.testing.assert_allclose(cv.array(), acts - plain, atol=1e-6)
    assert cv.coeff == -1.0 and np.abs(cv.array()).max() > 0
    assert with_coeff(cv, 0.5).coeff == 0.5 and with_coeff(cv, 0.5).vector == cv.vector

    # 7x7 maze: margin 9, the top-right square sits at world (15, 15): 9 tiles up, 9 right.
    corridor = top_right_corridor(small)
    assert len(corridor) == 18 and corridor[0] == (16, 15) and corridor[-1] == (24, 24)
    tv = top_right_vector(policy, small)
    assert np.abs(tv.array()).max() > 0
    big = Maze.from_seed(17)
    assert big.size == 25 and top_right_corridor(big) == []
    with pytest.warns(ZeroVectorWarning, match="zero"):
        zero = top_right_vector(policy, big)
    assert not np.any(zero.array())

    # Composition: two vectors at once, and coefficient 0 changes nothing.
    base, none, both = vector_fields(policy, small, [(), (with_coeff(cv, 0.0),), (cv, tv)])
    np.testing.assert_allclose(none.probs, base.probs, atol=1e-6)
    summed = AddVector(DEFAULT_LAYER, -1.0 * cv.array() + tv.array(), 1.0)
    np.testing.assert_allclose(vector_field(policy, small, [summed]).probs, both.probs, atol=1e-5)


def test_steering_sweep_matches_add_vector(policy: ImpalaPolicy, small: Maze) -> None:
    tiny = Maze.from_seed(TINY_SEED)
    sweep = steering_sweep(policy, [small, tiny], [0.0, -2.0], [0.0, 3.0], with_outcomes=True)
    assert len(sweep) == 8 and not sweep["top_right_zero"].any()
    for maze_index, maze in enumerate((small, tiny)):
        row = sweep[(sweep.maze_index == maze_index) & (sweep.cheese_coeff == -2.0) & (sweep.top_right_coeff == 3.0)]
        ivs = [cheese_vector(policy, maze, -2.0), top_right_vector(policy, maze, 3.0)]
        choice = decision_probabilities(policy, [maze], ivs)[0]
        assert row.p_cheese_ds.item() == pytest.approx(choice.p_cheese, abs=1e-5)
        assert row.p_top_right_ds.item() == pytest.approx(choice.p_top_right, abs=1e-5)
        assert row.p_cheese.item() == pytest.approx(outcomes(policy, maze, ivs).p_cheese, abs=1e-5)


# --- retargeting --------------------------------------------------------------------------------------


def test_retargeting(policy: ImpalaPolicy) -> None:
    tiny = Maze.from_seed(TINY_SEED)
    iv = retarget(policy, tiny, (4, 4), [3, 9], 5.0)
    assert iv.cells == (square_cell(tiny, (4, 4), 16),) and iv.channels == (3, 9) and iv.value == 5.0
    with pytest.raises(ValueError, match="not an open square"):
        retarget(policy, tiny, (1, 1), [3], 1.0)
    targets = [(4, 4), (4, 0), (0, 4)]
    result = retargeting_map(policy, tiny, [3, 9], 5.0, targets=targets)
    base = vector_field(policy, tiny)
    np.testing.assert_allclose(result.p_reach_baseline, reach_map(base, targets), atol=1e-9)
    np.testing.assert_allclose(result.path_prob_baseline, normalized_path_probabilities(base, targets))
    for k, t in enumerate(targets):
        patched = vector_field(policy, tiny, [retarget(policy, tiny, t, [3, 9], 5.0)])
        assert result.p_reach[k] == pytest.approx(reach_map(patched, [t])[0], abs=1e-6)
    assert len(result.table()) == 3


# --- patching -----------------------------------------------------------------------------------------


def test_ablations(policy: ImpalaPolicy, small: Maze) -> None:
    # With every channel of the layer ablated the rest of the network sees the same input on
    # every square, so the field is constant.
    zeroed, meaned = vector_fields(
        policy, small, [(zero_ablation(DEFAULT_LAYER),), (mean_ablation(policy, DEFAULT_LAYER, n_observations=16),)]
    )
    for field in (zeroed, meaned):
        np.testing.assert_allclose(field.probs, np.broadcast_to(field.probs[0], field.probs.shape), atol=1e-6)
    first = mean_activation(policy, DEFAULT_LAYER, n_observations=16)
    assert mean_activation(policy, DEFAULT_LAYER, n_observations=16) is first  # cached
    assert first.shape == policy.hook_points()[DEFAULT_LAYER]
    effects = patch_effects(policy, small, {"zero 0-3": [zero_ablation(DEFAULT_LAYER, [0, 1, 2, 3])]})
    assert list(effects["variant"]) == ["zero 0-3"] and 0 <= effects["mean_tv"].item() <= 1


def test_resampling(policy: ImpalaPolicy, small: Maze) -> None:
    same = resampling_sources(small, 2, same_cheese=True, seed=0)
    other = resampling_sources(small, 2, same_cheese=False, seed=0)
    assert all(m.size == small.size and m.cheese == small.cheese and m.walls != small.walls for m in same)
    assert all(math.dist(m.cheese, small.cheese) > 2 for m in other)
    # Resampling from the maze itself changes nothing (up to float rounding of other batches).
    itself = resampled_channels(policy, small, small, [1, 4, 6])
    base, patched = vector_fields(policy, small, [(), (itself,)])
    np.testing.assert_allclose(patched.probs, base.probs, atol=1e-5)
    changed = vector_field(policy, small, [resampled_channels(policy, small, other[0], list(range(32)))])
    assert vector_field_diff(changed, base).mean_tv > 0


def test_top_right_vector_warning_is_silent_for_padded_mazes(policy: ImpalaPolicy, small: Maze) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        top_right_vector(policy, small)


def test_mean_activations_are_cached_in_a_bounded_lru(policy: ImpalaPolicy, monkeypatch) -> None:  # noqa: ANN001
    from mazewb.analysis import patching
    from mazewb.analysis.cache import LRU

    assert patching._MEAN_CACHE.max_entries == patching.MAX_MEANS
    monkeypatch.setattr(patching, "_MEAN_CACHE", LRU(1))
    first = mean_activation(policy, DEFAULT_LAYER, n_observations=4)
    assert mean_activation(policy, DEFAULT_LAYER, n_observations=4) is first
    assert not first.flags.writeable
    other = mean_activation(policy, DEFAULT_LAYER, n_observations=4, seed=1)  # pushes the first out
    assert len(patching._MEAN_CACHE) == 1 and other is not first
    again = mean_activation(policy, DEFAULT_LAYER, n_observations=4)
    assert again is not first and np.array_equal(again, first)  # recomputed, the same numbers
