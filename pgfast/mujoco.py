"""Gymnasium's MuJoCo v5 environments as native pgfast environments.

The kernels (``src/mujoco/_mujoco_envs.pyx``) load Gymnasium's XML models (HalfCheetah:
pgfast's copy in pgfast/assets/, the same mjModel without MuJoCo 4's deprecated settotalmass)
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

MuJoCo is an optional dependency: ``pip install "pgfast[mujoco]"`` installs a
release of the line pgfast's kernels were compiled for (4.0.x). The kernels use the
libmujoco of whichever such release is installed; importing them checks its version
(``mj_version``) and that it lays out every struct member they read as their headers do.
"""
from __future__ import annotations

import ctypes
import glob
import math
import os
from functools import lru_cache, partial

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
    "Humanoid-v5": ("HumanoidKernel", 1000, None, 348, 0.4, 17),
}
ENV_NAMES = tuple(_TABLE)


# A model with one of everything the kernels read (a body, a joint, a site, an
# actuator), so every array member of mjModel and mjData has a non-empty address.
_PROBE_XML = """<mujoco><worldbody><body><joint name="j"/><geom size="0.1"/><site/></body>
</worldbody><actuator><motor joint="j"/></actuator></mujoco>"""


def _version_name(v):
    # mjVERSION_HEADER / mj_version(): 4.0.1 is 4000001.
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


def _load_library(mujoco):
    """Make the libmujoco that the mujoco package ships visible to pgfast._mujoco_envs.

    The kernels are not linked to a libmujoco (its file name carries the version);
    loading the package's own library with RTLD_GLOBAL resolves their MuJoCo symbols
    when they are imported, whichever release that is.
    """
    folder = os.path.dirname(mujoco.__file__)
    found = sorted(glob.glob(os.path.join(folder, "libmujoco.so.*"))
                   + glob.glob(os.path.join(folder, "libmujoco.*.dylib")))
    if not found:
        raise ImportError(f"the mujoco package in {folder} has no libmujoco: {INSTALL_HINT}")
    ctypes.CDLL(found[0], mode=ctypes.RTLD_GLOBAL)


def _check_layout(module, mujoco):
    """ImportError unless the loaded MuJoCo keeps every struct member the kernels
    read where their headers put it: the mujoco package's view of a model and its
    data against the kernels' view of the same structs."""
    model = mujoco.MjModel.from_xml_string(_PROBE_XML)
    data = mujoco.MjData(model)
    model.opt.timestep = 0.0123      # values no default has, so a shifted read shows
    data.time = 0.25
    unstable = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                mujoco.mjtWarning.mjWARN_BADQACC)
    for count, kind in enumerate(unstable, start=3):
        data.warning[kind].number = count
    ours_model, ours_data = module.struct_fields(model._address, data._address)
    # The members that are not plain attributes of the package's MjModel/MjData.
    nested = {"opt.timestep": model.opt.timestep,
              "warning.number": [data.warning[kind].number for kind in unstable]}
    wrong = []
    for struct, ours in ((model, ours_model), (data, ours_data)):
        for name, value in ours.items():
            expected = nested[name] if name in nested else getattr(struct, name)
            if isinstance(expected, np.ndarray):
                expected = expected.ctypes.data     # an array member: its address
            if value != expected:
                wrong.append(name)
    if wrong:
        raise ImportError(
            f"the installed MuJoCo {mujoco.__version__} lays out mjModel/mjData differently "
            f"from the {_version_name(module.HEADER_VERSION)} headers pgfast's MuJoCo envs were "
            f"compiled with ({', '.join(wrong)}): {INSTALL_HINT}")


@lru_cache(maxsize=1)
def _module():
    """pgfast._mujoco_envs, or ImportError saying how to get it."""
    try:
        import mujoco
    except ImportError as err:
        raise ImportError(f"MuJoCo is not installed; the MuJoCo envs need it: {INSTALL_HINT}") \
            from err
    _load_library(mujoco)
    try:
        from . import _mujoco_envs
    except ImportError as err:
        raise ImportError(
            f"this pgfast was built without its MuJoCo envs, or for another MuJoCo than "
            f"the installed {mujoco.__version__} ({err}); reinstall with {INSTALL_HINT}") from err
    header, loaded = _mujoco_envs.HEADER_VERSION, _mujoco_envs.library_version()
    # MuJoCo keeps its API within a release line (4.0.x); a new line may change it.
    if loaded // 1000 != header // 1000:
        line = _version_name(header).rsplit(".", 1)[0]
        raise ImportError(f"pgfast's MuJoCo envs need MuJoCo {line}.x, the loaded library is "
                          f"{_version_name(loaded)}: {INSTALL_HINT}")
    _check_layout(_mujoco_envs, mujoco)
    return _mujoco_envs


def available() -> bool:
    """Whether the MuJoCo envs can be made here.

    Returns
    -------
    bool
        True when MuJoCo is installed, this pgfast was built with its MuJoCo
        kernels and the installed MuJoCo passes their version and layout checks;
        :mod:`pgfast.envs` registers the MuJoCo envs only then.

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
        MuJoCo is missing, pgfast was built without its MuJoCo kernels, or the
        installed MuJoCo is of another API line or struct layout than the kernels'
        headers; the message says how to install.
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
