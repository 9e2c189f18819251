"""pgfast: fast, faithful policy-gradient estimation and optimization."""
from .gradients import likelihood_ratio_gradient, optimal_baseline, regression_gradient
from .regulator import regulator_gradient, regulator_utility
from .returns import discount_powers, episode_stats, gae, reward_to_go

__version__ = "0.1.0"

__all__ = [
    "discount_powers",
    "episode_stats",
    "gae",
    "likelihood_ratio_gradient",
    "optimal_baseline",
    "regression_gradient",
    "regulator_gradient",
    "regulator_utility",
    "reward_to_go",
]
