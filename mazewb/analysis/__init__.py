"""The science: pure functions of (policy, mazes, interventions) returning arrays, dataclasses
and pandas tables. Figures for each live in ``mazewb.plots``.

    from mazewb import Maze, load_policy
    from mazewb.analysis import vector_field, outcomes, cheese_vector, decision_probabilities
    policy, maze = load_policy(), Maze.from_seed(0)
    vf = vector_field(policy, maze)                        # vf.cells (N, 2), vf.probs (N, 5)
    vf = vector_field(policy, maze, mode="fast")           # maybe approximate: fast_mode_error(policy)
    out = outcomes(policy, maze, [cheese_vector(policy, maze, coeff=-1.0)])

Squares are ``(row, col)`` maze squares (row 0 at the bottom); moves are in the order LEFT,
DOWN, UP, RIGHT, NOOP; activation maps are (C, H, W) with rows top-down.

Every analysis runs in ``mode="exact"`` unless told otherwise: fp32 in the device's fastest exact
layout, within 1e-5 of a plain fp32 NCHW pass in every probability (``mazewb.policy.runtime``
describes the modes ``"exact"``, ``"fast"``, ``"bf16"`` and ``"reference"``).
"""

from mazewb.analysis.activations import (
    activation_diff,
    activations,
    cell_squares,
    channel_maps,
    square_cell,
    square_values,
)
from mazewb.analysis.attribution import Attribution, integrated_gradients
from mazewb.analysis.cache import policy_identity
from mazewb.analysis.chain import (
    OUTCOME_DEFINITION,
    OUTCOME_EVENTS,
    ExactOutcomes,
    exact_outcomes,
    reach_probabilities,
)
from mazewb.analysis.channels import rank_cheese_channels
from mazewb.analysis.fastmode import FastModeError, fast_mode_error
from mazewb.analysis.forward import DEFAULT_LAYER, move_probabilities, move_probabilities_variants
from mazewb.analysis.outcomes import (
    cheese_probability_from_each,
    field_outcomes,
    normalized_path_probabilities,
    outcome_table,
    outcomes,
    outcomes_from_probs,
    p_reach_target,
    reach_map,
)
from mazewb.analysis.patching import (
    mean_ablation,
    mean_activation,
    patch_effects,
    random_channels,
    resampled_channels,
    resampling_experiment,
    resampling_sources,
    zero_ablation,
)
from mazewb.analysis.rollouts import RolloutSummary, Trajectory, sample_rollouts, summarize_rollouts
from mazewb.analysis.spec import SteerSpec, effective_spec, spec_interventions
from mazewb.analysis.stats import (
    FEATURES,
    GLOSSARY,
    BehaviourStats,
    behaviour_batch,
    behaviour_regressions,
    behaviour_table,
    qualifying_sample,
    regression_warnings,
)
from mazewb.analysis.steering import (
    CHEESE_CHANNELS_TURNER,
    EFFECTIVE_CHANNELS_TURNER,
    RetargetingMap,
    RetargetOutcome,
    ZeroVectorWarning,
    cheese_vector,
    decision_probabilities_steered,
    difference_vector,
    retarget,
    retarget_outcome,
    retargeting_map,
    steering_sweep,
    top_right_corridor,
    top_right_vector,
    with_coeff,
)
from mazewb.analysis.vfield import (
    DecisionChoice,
    VectorField,
    VectorFieldDiff,
    decision_choice,
    decision_probabilities,
    field_squares,
    step_probabilities,
    vector_field,
    vector_field_diff,
    vector_fields,
    vector_fields_of_mazes,
)
from mazewb.maze.graph import decision_square

__all__ = [
    "CHEESE_CHANNELS_TURNER",
    "DEFAULT_LAYER",
    "EFFECTIVE_CHANNELS_TURNER",
    "FEATURES",
    "GLOSSARY",
    "OUTCOME_DEFINITION",
    "OUTCOME_EVENTS",
    "Attribution",
    "BehaviourStats",
    "DecisionChoice",
    "ExactOutcomes",
    "FastModeError",
    "RetargetOutcome",
    "RetargetingMap",
    "RolloutSummary",
    "SteerSpec",
    "Trajectory",
    "VectorField",
    "VectorFieldDiff",
    "ZeroVectorWarning",
    "activation_diff",
    "activations",
    "integrated_gradients",
    "behaviour_batch",
    "behaviour_regressions",
    "behaviour_table",
    "cell_squares",
    "channel_maps",
    "cheese_probability_from_each",
    "cheese_vector",
    "decision_choice",
    "decision_probabilities",
    "decision_probabilities_steered",
    "decision_square",
    "difference_vector",
    "effective_spec",
    "exact_outcomes",
    "fast_mode_error",
    "field_outcomes",
    "field_squares",
    "mean_ablation",
    "mean_activation",
    "move_probabilities",
    "move_probabilities_variants",
    "normalized_path_probabilities",
    "outcome_table",
    "outcomes",
    "outcomes_from_probs",
    "patch_effects",
    "policy_identity",
    "qualifying_sample",
    "random_channels",
    "rank_cheese_channels",
    "regression_warnings",
    "p_reach_target",
    "reach_map",
    "reach_probabilities",
    "resampled_channels",
    "resampling_experiment",
    "resampling_sources",
    "retarget",
    "retarget_outcome",
    "retargeting_map",
    "sample_rollouts",
    "square_cell",
    "spec_interventions",
    "square_values",
    "steering_sweep",
    "step_probabilities",
    "summarize_rollouts",
    "top_right_corridor",
    "top_right_vector",
    "vector_field",
    "vector_field_diff",
    "vector_fields",
    "vector_fields_of_mazes",
    "with_coeff",
    "zero_ablation",
]
