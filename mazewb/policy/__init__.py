"""The policy network: the interpretable IMPALA, checkpoints, moves, hooks and interventions.

Hook points are the module names of ``ImpalaPolicy`` (``policy.hook_points()``); interventions
are frozen data applied during one call of ``run_with_hooks``; nothing stays patched.
"""

from mazewb.policy.checkpoint import (
    CheckpointError,
    load_policy,
    load_policy_bytes,
    make_placeholder_checkpoint,
    save_policy,
)
from mazewb.policy.hooks import observations_to_tensor, predict, run_with_cache, run_with_hooks
from mazewb.policy.impala import CUT_POINTS, HOOK_NAMES, ImpalaPolicy, resume_point
from mazewb.policy.interventions import (
    Ablate,
    AddVector,
    FrozenArray,
    Intervention,
    InterventionError,
    ReplaceChannels,
    SetChannels,
    intervention_from_dict,
    interventions_from_json,
    interventions_to_json,
)
from mazewb.policy.moves import ACTION_TO_MOVE, CANONICAL_ACTION, MOVE_ACTIONS, MOVES, move_probs

__all__ = [
    "ACTION_TO_MOVE",
    "CANONICAL_ACTION",
    "CUT_POINTS",
    "HOOK_NAMES",
    "MOVES",
    "MOVE_ACTIONS",
    "Ablate",
    "AddVector",
    "CheckpointError",
    "FrozenArray",
    "ImpalaPolicy",
    "Intervention",
    "InterventionError",
    "ReplaceChannels",
    "SetChannels",
    "intervention_from_dict",
    "interventions_from_json",
    "interventions_to_json",
    "load_policy",
    "load_policy_bytes",
    "make_placeholder_checkpoint",
    "move_probs",
    "observations_to_tensor",
    "predict",
    "resume_point",
    "run_with_cache",
    "run_with_hooks",
    "save_policy",
]
