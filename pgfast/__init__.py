"""pgfast: fast, faithful policy-gradient estimation and optimization.

Cython kernels (``src/_x.pyx`` → ``pgfast._x``) for every hot loop behind a
NumPy-first API. One module per concern, each importing only those above it:

=====================  ==========================================================
``_loader``            which compiled kernels load (the CPU's x86-64 level)
``_validation``        argument checks shared by every public function
``_arrays``            arrays in, arrays out: other array libraries at the boundary
``_threads``           thread counts for the OpenMP kernels
``_signals``           Ctrl-C and SIGTERM while training: one interrupt, the rest held
``returns``            reward-to-go, GAE, episode statistics (kernel ``_returns``)
``policies``           policies and value functions (kernels ``_policies`` …)
``gradients``          score-function gradients, pseudoinverse regression
``regulator``          the simple regulator's closed-form utility and gradient
``reference``          plain NumPy references of the kernels, for tests and benchmarks
``envs``               native environments (kernel ``_envs``)
``mujoco``             the native MuJoCo environments' spec table
``rollout``            the fused rollout loop; owns time limits and autoreset
``distributed``        rollouts sharded over Ray actors
``statistics``         running statistics (observation normalisation)
``trajectories``       m first-episode trajectories, as the estimators read them
``problem``            env resolution, chunked rollouts, the utility U(θ)
``baselines``          value baselines and how they are fitted
``estimators``         the six gradient estimators (Kochenderfer et al., ch. 11)
``optim``              Adam, conjugate gradient, gradient scaling and clipping
``updates``            the five policy updates (ch. 12)
``defaults``           the per-environment settings table (data only)
``factory``            a run's settings, threshold, problem, policy and update from the table
``run``                a training run's whole state (RunState), what resumes it
``checkpoints``        atomic, verified checkpoint files of a run's state
``training``           the training loop, the stop rule and evaluation
``artifacts``          a run folder's kept policy, evaluation and learning curve
``loggers``            TensorBoard logging of a run's history and evaluations
``video``              videos of a policy's episodes (imageio)
``export``             the kept policy as ONNX or dependency-free C
``tuning``             Optuna searches of an env's settings (``pgfast tune``)
``cli``                the ``pgfast`` command line (arguments and orchestration)
``integrations``       Stable-Baselines3 and CleanRL adapters (optional frameworks)
=====================  ==========================================================
"""
from . import _loader

# Before any kernel import: a clear error from a source checkout without compiled
# modules, and the kernels built for this CPU (see _loader).
_loader.select_kernels(_loader.compiled_dir(__path__[0]))

from . import envs
from .envs import NativeEnv, NativeVectorEnv, make_kernel, make_vec, native_ids
from .baselines import ValueBaseline
from .run import RunState
from .checkpoints import load_checkpoint, save_checkpoint
from .estimators import (BaselineSubtractionGradient, Estimator, FiniteDifferenceGradient,
                         GAEGradient, LikelihoodRatioGradient, RegressionGradient,
                         RewardToGoGradient)
from .optim import Adam, clip_gradient, conjugate_gradient, scale_gradient
from .statistics import ObservationNormalizer
from .trajectories import Trajectories
from .problem import Problem, utility
from .policies import (LinearGaussian, LinearSoftmax, LinearValue, MLPGaussian, MLPSoftmax,
                       MLPValue, from_config, policy_for)
from .gradients import likelihood_ratio_gradient, optimal_baseline, regression_gradient
from .regulator import regulator_gradient, regulator_utility
from .returns import discount_powers, episode_stats, gae, reward_to_go
from .rollout import Rollout, rollout
from .training import StopWhenSolved, evaluate, train
from . import defaults, factory
from .updates import (ClampedSurrogateUpdate, NaturalPolicyUpdate, PolicyGradientUpdate,
                      RestrictedPolicyUpdate, TrustRegionUpdate, Update)

__version__ = "0.1.0"


def _moved(function, old):
    """`function` under its old name `old`, warning that the name goes next release."""
    import functools
    import warnings

    @functools.wraps(function)
    def deprecated(*args, **kwargs):
        warnings.warn(f"{old} moved to {function.__module__}.{function.__name__}; the old "
                      f"name goes in the next release", DeprecationWarning, stacklevel=2)
        return function(*args, **kwargs)

    return deprecated


# defaults.py holds the table alone now; its readers live in factory.py.
for _name in ("settings", "build", "threshold", "policy_kind"):
    setattr(defaults, _name, _moved(getattr(factory, _name), f"pgfast.defaults.{_name}"))


def get_include() -> str:
    """The folder to put on Cython's include path to cimport pgfast's kernels.

    With it on the include path (``cython -I <pgfast.get_include()>``), your own
    extension can write ``from pgfast._envs cimport VecEnvKernel``; compile its C with
    ``numpy.get_include()`` on the include path as well (examples/custom_env).

    Returns
    -------
    str
        The folder above the compiled modules, where pgfast's ``.pxd`` files are
        installed.

    Raises
    ------
    ImportError
        pgfast's compiled modules are missing (a source checkout without a build).

    Examples
    --------
    >>> import os
    >>> import pgfast
    >>> os.path.isfile(os.path.join(pgfast.get_include(), "pgfast", "_envs.pxd"))
    True
    """
    import os

    # The folder above the compiled modules, where the .pxd files are installed
    # (in an editable install too, where this file stays in the source tree).
    return os.path.dirname(_loader.compiled_dir(__path__[0]))


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
    "GAEGradient", "ValueBaseline", "Trajectories", "likelihood_ratio_gradient", "optimal_baseline", "regression_gradient",
    "regulator_gradient", "regulator_utility",
    # updates and training
    "Estimator", "Update", "PolicyGradientUpdate", "RestrictedPolicyUpdate", "NaturalPolicyUpdate",
    "TrustRegionUpdate", "ClampedSurrogateUpdate", "Adam", "conjugate_gradient",
    "scale_gradient", "clip_gradient", "train", "evaluate", "StopWhenSolved",
    "ObservationNormalizer", "defaults", "factory",
    "RunState", "save_checkpoint", "load_checkpoint",
    "get_include",
]
