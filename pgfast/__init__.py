"""pgfast: fast, faithful policy-gradient estimation and optimization."""
from .returns import discount_powers, episode_stats, gae, reward_to_go

__version__ = "0.1.0"

__all__ = [
    "discount_powers",
    "episode_stats",
    "gae",
    "reward_to_go",
]
