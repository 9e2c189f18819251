"""Gymnasium's MuJoCo v5 environments as native pgfast environments.

The kernels (``src/mujoco/_mujoco_envs.pyx``) load Gymnasium's own XML models
and step MuJoCo's C library inside the fused rollout loop, one ``mjData`` per
env slot. This module is their spec table; :mod:`pgfast.envs` registers them
beside the classic-control ones, so the usual entry points work::

    envs = pgfast.make_vec("Hopper-v5", num_envs=64, seed=0)   # NativeVectorEnv
    env = gymnasium.make("pgfast/Hopper-v5")                   # NativeEnv + TimeLimit
    pgfast.rollout(envs, pgfast.MLPGaussian(11, 3, (64, 64)), theta, 1000, rng)

Observations, rewards, termination and reset noise are Gymnasium's v5 defaults
(checked step for step in tests/test_mujoco.py). One difference: when MuJoCo
finds the simulation unstable (NaN, Inf or huge qpos/qvel/qacc) and resets the
state, the step reports ``terminated`` instead of continuing from the reset pose.
Actions are float64 (the fused loop's); Gymnasium squares a float32 action in
float32, so for float32 actions its control cost differs by float32 rounding.

MuJoCo is an optional dependency: ``pip install "pgfast[mujoco]"`` installs the
version pgfast's kernels were compiled against.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np
from gymnasium import spaces

__all__ = ["ENV_NAMES", "INSTALL_HINT", "available", "kernel_class"]

INSTALL_HINT = 'pip install "pgfast[mujoco]"'

# name: (kernel class, max_episode_steps, reward_threshold, obs_dim, action bound, act_dim)
# as Gymnasium registers the v5 envs and their models' actuator ctrlrange.
_TABLE = {
    "Hopper-v5": ("HopperKernel", 1000, 3800.0, 11, 1.0, 3),
    "InvertedPendulum-v5": ("InvertedPendulumKernel", 1000, 950.0, 4, 3.0, 1),
    "HalfCheetah-v5": ("HalfCheetahKernel", 1000, 4800.0, 17, 1.0, 6),
    "Walker2d-v5": ("Walker2dKernel", 1000, None, 17, 1.0, 6),
    "Swimmer-v5": ("SwimmerKernel", 1000, 360.0, 8, 1.0, 2),
    "InvertedDoublePendulum-v5": ("InvertedDoublePendulumKernel", 1000, 9100.0, 9, 1.0, 1),
    "Reacher-v5": ("ReacherKernel", 50, -3.75, 10, 1.0, 2),
    "Ant-v5": ("AntKernel", 1000, 6000.0, 105, 1.0, 8),
}
ENV_NAMES = tuple(_TABLE)


def _module():
    """pgfast._mujoco_envs, or ImportError saying how to get it."""
    try:
        # Loads the libmujoco the kernels link to, wherever the mujoco package lives.
        import mujoco
    except ImportError as err:
        raise ImportError(f"MuJoCo is not installed; the MuJoCo envs need it: {INSTALL_HINT}") \
            from err
    try:
        from . import _mujoco_envs
    except ImportError as err:
        raise ImportError(
            f"this pgfast was built without its MuJoCo envs, or against another MuJoCo than "
            f"the installed {mujoco.__version__} ({err}); reinstall with {INSTALL_HINT}") from err
    v = _mujoco_envs.HEADER_VERSION
    built = f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"
    if _mujoco_envs.mujoco_version() != built:
        raise ImportError(f"pgfast's MuJoCo envs were built against MuJoCo {built}, the loaded "
                          f"library is {_mujoco_envs.mujoco_version()}: {INSTALL_HINT}")
    return _mujoco_envs


def available() -> bool:
    """Whether the MuJoCo envs can be made here.

    Returns
    -------
    bool
        True when MuJoCo is installed and this pgfast was built with its MuJoCo
        kernels against the same MuJoCo version; :mod:`pgfast.envs` registers the
        MuJoCo envs only then.

    Examples
    --------
    >>> import pgfast
    >>> from pgfast import mujoco
    >>> mujoco.available() == ("pgfast/Hopper-v5" in pgfast.native_ids())
    True
    """
    try:
        _module()
    except ImportError:
        return False
    return True


def kernel_class(name: str):
    """The kernel class of a MuJoCo env.

    Parameters
    ----------
    name : str
        One of :data:`ENV_NAMES`, e.g. "Hopper-v5".

    Returns
    -------
    type
        The compiled kernel class (a ``pgfast._envs.VecEnvKernel``), called as
        ``cls(num_envs, seed, max_episode_steps)`` and, by keyword only, the env's
        Gymnasium v5 arguments (``xml_file``, ``reset_noise_scale``, ...).

    Raises
    ------
    ImportError
        MuJoCo is missing, or pgfast was built without its MuJoCo kernels or against
        another MuJoCo version; the message says how to install.
    KeyError
        `name` is not a MuJoCo env pgfast knows.

    Examples
    --------
    Needs MuJoCo (``pip install "pgfast[mujoco]"``):

    >>> import pgfast
    >>> from pgfast import mujoco
    >>> Hopper = mujoco.kernel_class("Hopper-v5")
    >>> kernel = Hopper(2, seed=0)
    >>> kernel.num_envs, kernel.obs_dim, kernel.act_dim
    (2, 11, 3)
    >>> type(pgfast.make_kernel("Hopper-v5", 2, seed=0)) is Hopper
    True
    """
    return getattr(_module(), _TABLE[name][0])


def _make_kernel(name, num_envs, seed=None, max_episode_steps=0, **kwargs):
    return kernel_class(name)(num_envs, seed=seed, max_episode_steps=max_episode_steps, **kwargs)


def _spec(name):
    _, steps, threshold, obs_dim, bound, act_dim = _TABLE[name]
    return dict(
        kernel=partial(_make_kernel, name), max_episode_steps=steps, reward_threshold=threshold,
        observation_space=lambda: spaces.Box(-math.inf, math.inf, (obs_dim,), np.float64),
        action_space=lambda: spaces.Box(-bound, bound, (act_dim,), np.float32),
        reset_bounds=None)


# The fields of pgfast.envs' spec table, one entry per env.
SPECS = {name: _spec(name) for name in _TABLE}
