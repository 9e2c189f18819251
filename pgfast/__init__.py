"""pgfast: fast, faithful policy-gradient estimation and optimization."""
from .policies import (
    LinearGaussian,
    LinearSoftmax,
    LinearValue,
    MLPGaussian,
    MLPSoftmax,
    MLPValue,
    policy_for,
)
from .returns import discount_powers, episode_stats, gae, reward_to_go

__version__ = "0.1.0"

__all__ = [
    "LinearGaussian",
    "LinearSoftmax",
    "LinearValue",
    "MLPGaussian",
    "MLPSoftmax",
    "MLPValue",
    "policy_for",
    "discount_powers",
    "episode_stats",
    "gae",
    "reward_to_go",
]
