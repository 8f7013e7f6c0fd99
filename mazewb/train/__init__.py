"""Trainers and evaluation that produce mazewb's bundled agents.

- ``fast``: behavioural cloning and exact chain policy gradient on whole known mazes.
- ``ppo``: PPO on the vectorised procgen maze game, like CleanRL's ``ppo_procgen.py``.
- ``evaluate``: exact in- and off-distribution outcome probabilities on held-out seeds.
"""
