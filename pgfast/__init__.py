"""pgfast: fast, faithful policy-gradient estimation and optimization.

Cython kernels for every hot loop behind a NumPy-first API: returns and
advantages (:mod:`pgfast.returns`), policies with analytic gradients
(:mod:`pgfast.policies`), native environments (:mod:`pgfast.envs`), the fused
rollout loop (:mod:`pgfast.rollout`), the chapter-11 estimators
(:mod:`pgfast.gradients`, :mod:`pgfast.estimators`), the chapter-12 updates
(:mod:`pgfast.updates`) and training (:mod:`pgfast.training`).
"""
from . import envs
from .envs import NativeEnv, NativeVectorEnv, make_kernel, make_vec, native_ids
from .estimators import (BaselineSubtractionGradient, FiniteDifferenceGradient, GAEGradient,
                         LikelihoodRatioGradient, Problem, RegressionGradient,
                         RewardToGoGradient, utility)
from .policies import (LinearGaussian, LinearSoftmax, LinearValue, MLPGaussian, MLPSoftmax,
                       MLPValue, from_config, policy_for)
from .gradients import likelihood_ratio_gradient, optimal_baseline, regression_gradient
from .regulator import regulator_gradient, regulator_utility
from .returns import discount_powers, episode_stats, gae, reward_to_go
from .rollout import Rollout, rollout
from .training import evaluate, load_checkpoint, save_checkpoint, train
from .updates import (ClampedSurrogateUpdate, NaturalPolicyUpdate, PolicyGradientUpdate,
                      RestrictedPolicyUpdate, TrustRegionUpdate)

__version__ = "0.1.0"


def get_include() -> str:
    """The folder to put on Cython's include path (``-I``) to cimport pgfast's kernel
    interfaces in your own extension, e.g. ``from pgfast._envs cimport VecEnvKernel``
    (compile with ``numpy.get_include()`` on the C include path as well)."""
    import os

    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


__all__ = [
    # returns and advantages
    "discount_powers", "episode_stats", "gae", "reward_to_go",
    # policies and value functions
    "LinearSoftmax", "LinearGaussian", "MLPSoftmax", "MLPGaussian", "LinearValue", "MLPValue",
    "policy_for", "from_config",
    # environments and rollouts
    "envs", "NativeEnv", "NativeVectorEnv", "make_kernel", "make_vec", "native_ids",
    "Rollout", "rollout",
    # estimators
    "Problem", "utility", "FiniteDifferenceGradient", "RegressionGradient",
    "LikelihoodRatioGradient", "RewardToGoGradient", "BaselineSubtractionGradient",
    "GAEGradient", "likelihood_ratio_gradient", "optimal_baseline", "regression_gradient",
    "regulator_gradient", "regulator_utility",
    # updates and training
    "PolicyGradientUpdate", "RestrictedPolicyUpdate", "NaturalPolicyUpdate",
    "TrustRegionUpdate", "ClampedSurrogateUpdate", "train", "evaluate",
    "save_checkpoint", "load_checkpoint",
    "get_include",
]
