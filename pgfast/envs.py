"""Native environments as Gymnasium ``Env`` and ``VectorEnv`` (kernels in ``src/_envs.pyx``).

The classic-control environments reproduce Gymnasium's own (dynamics, rewards,
termination, time limits, spaces, reset distributions); their ids carry the
``pgfast/`` prefix and are registered with Gymnasium on import::

    env = gymnasium.make("pgfast/CartPole-v1")          # one env, TimeLimit as Gymnasium's
    envs = pgfast.make_vec("CartPole-v1", num_envs=256, seed=0)   # B copies, one kernel call per step
    envs.kernel                                          # the VecEnvKernel the fused rollout drives

``pgfast/SimpleRegulator-v0`` is the simple regulator of known gradient
(docs/theory/estimators.rst): s₁ ~ N(0.3, 0.1²), s′ ~ N(s + a, 0.1²), reward −s² of
the state the action is taken in, never terminal;
no time limit by default (pass ``max_episode_steps``).

Continuous actions outside a bounded Box are clipped by the dynamics, as
Gymnasium's Pendulum and MountainCarContinuous do; non-finite actions, discrete
indices out of range and wrong shapes raise ``ValueError``.

The classic-control and MuJoCo envs render (``render_mode="rgb_array"`` or
``"human"``) with Gymnasium's own drawing code: the native state is handed to
Gymnasium's env of the same id, whose ``render()`` draws it (pygame for classic
control, ``pip install "pgfast[render]"``; MuJoCo's renderer for MuJoCo), so a frame
is Gymnasium's frame of that state.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control import utils as _cc_utils
from gymnasium.error import ClosedEnvironmentError, DependencyNotInstalled, ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from . import _envs, _rollout
from . import mujoco as _mujoco
from ._validation import as_array, check_finite_float, check_positive_int, check_seed

__all__ = ["NativeEnv", "NativeVectorEnv", "make_kernel", "make_vec", "native_ids", "spaces_of"]

PREFIX = "pgfast/"
RENDER_HINT = 'pip install "pgfast[render]"'
# The classic-control envs drawn by Gymnasium's env of the same id (pygame); their
# kernels hold the state in Gymnasium's layout (CartPole (x, ẋ, θ, θ̇), Acrobot
# (θ₁, θ₂, θ̇₁, θ̇₂), the mountain cars (p, v), Pendulum (θ, θ̇)). The MuJoCo envs
# render too, through MuJoCo's renderer (see NativeEnv.render).
_DRAWN = ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
          "Pendulum-v1")
_RENDERED = _DRAWN + _mujoco.ENV_NAMES


def _box(low, high, dtype):
    return spaces.Box(np.asarray(low, dtype=dtype), np.asarray(high, dtype=dtype), dtype=dtype)


def _reset_parser(defaults):
    """Gymnasium's reset options for a kernel's reset defaults (from the spec table),
    in the order set_reset_bounds takes them; None when there are none."""
    if not defaults:
        return None
    if set(defaults) == {"low", "high"}:
        return lambda options: _cc_utils.maybe_parse_reset_bounds(
            options, defaults["low"], defaults["high"])
    return lambda options: tuple(
        _cc_utils.verify_number_and_cast((options or {}).get(name, default))
        for name, default in defaults.items())


def _set_reset_bounds(kernel, spec, options) -> None:
    """Gymnasium's reset options (a dict, or None) into the kernel, refused by name."""
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options: expected a dict or None, got {type(options).__name__}")
    if spec.reset_bounds is None:
        return
    try:
        kernel.set_reset_bounds(*spec.reset_bounds(options or None))
    except (ValueError, TypeError) as exc:   # Gymnasium's parser and the kernel's check
        raise ValueError(f"options: {exc}") from None


def _check_reset_obs(obs, options) -> None:
    """Reset bounds that are finite but wider than the arithmetic (or the float32
    observation) can hold give infinite observations: refused, naming the options."""
    if not np.isfinite(obs).all():
        raise ValueError(f"options: the reset bounds {options} give observations that are not "
                         f"finite (NaN or infinity, past the {obs.dtype} range); call reset() "
                         f"again with narrower bounds")


@dataclass(frozen=True)
class _Spec:
    """What pgfast/envs.py needs of an entry of the kernels' spec table (_envs.SPECS)."""
    kernel: type
    max_episode_steps: int | None
    reward_threshold: float | None
    observation_space: Callable[[], spaces.Space]
    action_space: Callable[[], spaces.Space]
    reset_bounds: Callable[[dict | None], tuple] | None

    @classmethod
    def from_table(cls, entry):
        obs = entry["observation"]
        act = entry["action"]
        action_space = (lambda: spaces.Discrete(act)) if isinstance(act, int) \
            else (lambda: _box(*act))
        return cls(entry["kernel"], entry["max_episode_steps"], entry["reward_threshold"],
                   lambda: _box(*obs), action_space, _reset_parser(entry["reset"]))


_SPECS = {name: _Spec.from_table(entry) for name, entry in _envs.SPECS.items()}

# Gymnasium's MuJoCo v5 envs (pgfast/mujoco.py): always registered, so asking for
# one without MuJoCo installed says how to get it; their kernels load MuJoCo on use.
_SPECS.update({name: _Spec(**spec) for name, spec in _mujoco.SPECS.items()})


def native_ids() -> list[str]:
    """The registered ids of pgfast's native environments that can be made here.

    Returns
    -------
    list of str
        ``"pgfast/CartPole-v1"``, ...; the MuJoCo ones only when MuJoCo is installed.

    Examples
    --------
    >>> import pgfast
    >>> ids = pgfast.native_ids()
    >>> "pgfast/CartPole-v1" in ids, "pgfast/SimpleRegulator-v0" in ids
    (True, True)
    """
    mujoco = _mujoco.available()
    return [PREFIX + name for name in _SPECS if mujoco or name not in _mujoco.SPECS]


def is_native(env_id: str) -> bool:
    """Whether pgfast implements `env_id` ("CartPole-v1" or "pgfast/CartPole-v1")."""
    name = env_id[len(PREFIX):] if env_id.startswith(PREFIX) else env_id
    return name in _SPECS


def spaces_of(env_id: str):
    """The observation and action space of one slot of a native env, without making it.

    Parameters
    ----------
    env_id : str
        A native id ("CartPole-v1" or "pgfast/CartPole-v1").

    Returns
    -------
    observation_space, action_space : gymnasium.spaces.Space

    Raises
    ------
    ValueError
        An id pgfast does not implement.

    Examples
    --------
    >>> import pgfast
    >>> pgfast.envs.spaces_of("Pendulum-v1")[1]
    Box(-2.0, 2.0, (1,), float32)
    """
    _, spec = _spec_of(env_id)
    return spec.observation_space(), spec.action_space()


def _spec_of(env_id) -> tuple[str, _Spec]:
    if not isinstance(env_id, str):
        raise TypeError(f"env_id: expected a string such as 'CartPole-v1', got {type(env_id).__name__}")
    name = env_id[len(PREFIX):] if env_id.startswith(PREFIX) else env_id
    if name not in _SPECS:
        raise ValueError(f"env_id: expected one of {native_ids()} (prefix optional), got {env_id!r}")
    return name, _SPECS[name]


def _check_max_steps(max_episode_steps, default):
    """None keeps the registered limit; 0 means none."""
    if max_episode_steps is None:
        return default or 0
    return check_positive_int(max_episode_steps, "max_episode_steps", minimum=0)


def make_kernel(env_id: str, num_envs: int = 1, seed: int | list[int] | None = None,
                max_episode_steps: int | None = None, **kwargs: Any) -> _envs._StateKernel:
    """The batched C kernel of a native environment.

    Parameters
    ----------
    env_id : str
        A native id, with or without the ``pgfast/`` prefix.
    num_envs : int
        Number of env slots B.
    seed : None, int, SeedSequence or sequence of num_envs ints
        Slot i draws from its own generator: ``SeedSequence(seed).spawn(B)[i]``, or
        ``default_rng(seed[i])`` for a sequence.
    max_episode_steps : int, optional
        Time limit reported by the kernel (0: none); default as registered.
    **kwargs
        Environment parameters (Pendulum: ``g``).

    Returns
    -------
    pgfast._envs.VecEnvKernel
        The kernel: ``num_envs``, ``obs_dim``, ``n_actions`` (0 for continuous
        actions), ``act_dim`` and the per-slot ``reset_slot`` / ``step_slot`` the
        fused rollout drives.

    Raises
    ------
    TypeError
        `env_id` is not a string.
    ValueError
        An unknown id, or `num_envs` below 1.

    Examples
    --------
    >>> import pgfast
    >>> kernel = pgfast.make_kernel("CartPole-v1", num_envs=8, seed=0)
    >>> kernel.num_envs, kernel.obs_dim, kernel.n_actions, kernel.max_episode_steps
    (8, 4, 2, 500)
    """
    _, spec = _spec_of(env_id)
    num_envs = check_positive_int(num_envs, "num_envs")
    steps = _check_max_steps(max_episode_steps, spec.max_episode_steps)
    return _new_kernel(spec, num_envs, check_seed(seed, num_envs), steps, kwargs)


def _new_kernel(spec, num_envs, seed, max_episode_steps, options):
    """The kernel, its env options checked: a path for ``xml_file``, a bool or a finite
    number for the others (each kernel checks its own ranges)."""
    for name, value in options.items():
        if name == "xml_file":
            if not isinstance(value, (str, os.PathLike)):
                raise TypeError(f"xml_file: expected a path, got {type(value).__name__}")
        elif not isinstance(value, (bool, np.bool_)):
            check_finite_float(value, name)
    try:
        return spec.kernel(num_envs, seed=seed, max_episode_steps=max_episode_steps,
                           **options)
    except TypeError as exc:   # with the values checked above: an option it does not take
        if not options:
            raise
        raise TypeError(f"{', '.join(options)}: not an option of this env ({exc})") from None


def _check_actions(actions, space, kernel, name):
    """Actions as a C-contiguous float64 (n, act_dim) array for the kernel, of the
    space's dtype kind and shape. Their values are the kernel's to check (it refuses an
    invalid one before stepping anything); _check_action_values names it."""
    arr = as_array(actions, name)
    if arr.dtype.kind not in "iuf":   # (signed, unsigned integers, floats)
        kind = "integers" if kernel.n_actions > 0 else "floats"
        raise TypeError(f"{name}: expected {kind}, got dtype {arr.dtype}")
    if arr.shape != space.shape:
        raise ValueError(f"{name}: expected shape {space.shape} for {space}, got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64).reshape(-1, kernel.act_dim)


def _check_action_values(rows, actions, kernel, name):
    """A ValueError naming the first invalid action (rows from _check_actions):
    discrete ones outside the integers [0, n), continuous ones not finite."""
    if kernel.n_actions > 0:
        bad = ~((rows >= 0) & (rows < kernel.n_actions) & (rows == np.floor(rows)))
        if bad.any():
            raise ValueError(f"{name}: expected integers in [0, {kernel.n_actions}), got "
                             f"{np.asarray(actions).reshape(-1)[np.flatnonzero(bad)[0]]!r}")
    elif not np.isfinite(rows).all():
        raise ValueError(f"{name}: expected finite values, found NaN or infinity")


def _check_rewards(rewards, actions, name):
    """A ValueError naming the actions when a reward overflowed (e.g. a control cost of
    an action of 1e200: finite actions, too large for float64)."""
    finite = np.isfinite(rewards)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(-1))[0]
        raise _reward_overflow(np.asarray(actions)[bad] if np.ndim(finite) else actions, name)


def _reward_overflow(action, name):
    return ValueError(f"{name}: {action!r} gives a reward that is not finite; the env's "
                      "arithmetic overflows (keep actions within the action space)")


def _painter(name, render_mode, options):
    """Gymnasium's env of the id `name` (and the env `options`), made to draw states in
    `render_mode`."""
    if not isinstance(render_mode, str):
        raise TypeError(f"render_mode: expected None, 'rgb_array' or 'human', "
                        f"got {type(render_mode).__name__}")
    if render_mode not in NativeEnv.metadata["render_modes"]:
        raise ValueError(f"render_mode: expected None, 'rgb_array' or 'human', "
                         f"got {render_mode!r}")
    if name not in _RENDERED:
        raise ValueError(f"render_mode: {PREFIX}{name} does not render (the classic-control "
                         f"and MuJoCo envs do), got {render_mode!r}")
    if name in _DRAWN:
        try:
            import pygame  # noqa: F401  (Gymnasium imports it only when it first draws)
        except ImportError:
            raise DependencyNotInstalled(f"render_mode: drawing {name} needs pygame: "
                                         f"{RENDER_HINT}") from None
    elif sys.platform.startswith("linux") \
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        if render_mode == "human":   # glfw would abort the process without a display
            raise ValueError(f"render_mode: 'human' opens a window, and there is no display "
                             f"(DISPLAY unset); use 'rgb_array' to render {name} offscreen")
        # Offscreen through EGL, MuJoCo's advice for headless machines (Gymnasium's
        # renderer would try glfw first, which fails without a display and leaves
        # MuJoCo unable to draw). The variable is read when it first draws.
        os.environ.setdefault("MUJOCO_GL", "egl")
    return gymnasium.make(name, render_mode=render_mode, **options).unwrapped


class NativeEnv(gymnasium.Env):
    """One native environment as a Gymnasium ``Env`` (use ``gymnasium.make("pgfast/...")``,
    which adds the registered TimeLimit).

    Its randomness is the Env's ``np_random``, seeded by ``reset(seed=...)`` as
    Gymnasium does, so for the classic-control ids ``reset(seed=s)`` returns the
    same observation as Gymnasium's own environment.

    Parameters
    ----------
    env_id : str
        A native id, with or without the ``pgfast/`` prefix.
    render_mode : {None, "rgb_array", "human"}
        ``"rgb_array"``: ``render()`` returns the frame, an (H, W, 3) uint8 array;
        ``"human"``: each reset and step draws it in a window. Drawn by Gymnasium's
        env of the same id: the classic-control envs with pygame
        (``pip install "pgfast[render]"``), the MuJoCo envs with MuJoCo's renderer
        (offscreen through the OpenGL that ``MUJOCO_GL`` names: egl or osmesa; with
        no display and ``MUJOCO_GL`` unset, ``rgb_array`` sets it to egl).
    **kwargs
        Environment parameters (Pendulum: ``g``).

    Raises
    ------
    ValueError
        An unknown id, or a render mode that is not one of the above or for an env
        that does not render.
    TypeError
        ``max_episode_steps`` (a time limit comes from ``gymnasium.make``), or a
        render mode that is not a string.
    gymnasium.error.DependencyNotInstalled
        A render mode without pygame.

    Examples
    --------
    >>> import gymnasium
    >>> import numpy as np
    >>> import pgfast
    >>> env = gymnasium.make("pgfast/CartPole-v1")
    >>> obs, info = env.reset(seed=0)
    >>> reference = gymnasium.make("CartPole-v1")
    >>> bool(np.array_equal(obs, reference.reset(seed=0)[0]))   # the same initial state
    True
    >>> obs, reward, terminated, truncated, info = env.step(1)
    >>> obs.dtype, reward, terminated, truncated
    (dtype('float32'), 1.0, False, False)
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 50}

    def __init__(self, env_id: str, render_mode: str | None = None, **kwargs: Any) -> None:
        if "max_episode_steps" in kwargs:
            raise TypeError("max_episode_steps: a NativeEnv has no time limit of its own; "
                            "gymnasium.make(id, max_episode_steps=...) adds one")
        name, spec = _spec_of(env_id)
        self._name, self._spec = name, spec
        self.kernel = _new_kernel(spec, 1, None, 0, kwargs)
        self._painter = None if render_mode is None else _painter(name, render_mode, kwargs)
        # The class lists every mode (gymnasium.make checks the class); an env that
        # does not render says so in its own metadata.
        self.metadata = {**self.metadata, "render_modes": self.metadata["render_modes"]
                         if name in _RENDERED else []}
        if self._painter is not None:
            self.metadata["render_fps"] = self._painter.metadata["render_fps"]
        self.render_mode = render_mode
        self._last_action = None   # what Pendulum's picture shows as the torque arrow
        self.observation_space = spec.observation_space()
        self.action_space = spec.action_space()
        self._obs_dtype = self.observation_space.dtype
        self._needs_reset = True
        self._closed = False

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode.

        Parameters
        ----------
        seed : int, optional
            Seeds ``np_random`` (as Gymnasium does); None continues its stream.
        options : dict, optional
            Gymnasium's reset options of the env (e.g. ``low`` and ``high`` of the
            initial-state range).

        Returns
        -------
        observation : numpy.ndarray
            The initial observation, of the observation space's dtype.
        info : dict
            Empty.
        """
        if self._closed:
            raise ClosedEnvironmentError(f"{PREFIX}{self._name}: reset() on a closed env")
        if isinstance(seed, (list, tuple, np.random.SeedSequence)):   # one slot: an int
            raise TypeError(f"seed: expected an int or None, got {type(seed).__name__}")
        super().reset(seed=check_seed(seed, 1))
        _set_reset_bounds(self.kernel, self._spec, options)
        self._needs_reset = True   # until the new state is known to be usable
        obs = self.kernel.reset_slot(0, self.np_random).astype(self._obs_dtype)
        _check_reset_obs(obs, options)
        self._needs_reset = False
        self._last_action = None
        if self.render_mode == "human":
            self.render()
        return obs.astype(self._obs_dtype), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one action.

        Parameters
        ----------
        action : int or array_like
            An index in [0, n) for a discrete action space, a finite array of the
            action space's shape otherwise (clipped by the dynamics).

        Returns
        -------
        observation : numpy.ndarray
            The next observation.
        reward : float
            The step's reward.
        terminated : bool
            Whether a terminal state was reached.
        truncated : bool
            Always False: the registered TimeLimit wrapper truncates.
        info : dict
            Empty.

        Raises
        ------
        ValueError
            An action outside the action space, non-finite or of the wrong shape.
        """
        if self._closed:
            raise ClosedEnvironmentError(f"{PREFIX}{self._name}: step() on a closed env")
        if self._needs_reset:
            raise ResetNeeded(f"{PREFIX}{self._name}: call reset() before step()")
        rows = _check_actions(action, self.action_space, self.kernel, "action")
        _check_action_values(rows, action, self.kernel, "action")   # one action: cheap
        obs, reward, code = self.kernel.step_slot(0, rows[0], self.np_random)
        if code < 0:
            raise ValueError(f"action: {action!r} is outside the action space {self.action_space}")
        _check_rewards(reward, action, "action")
        self._last_action = action
        if self.render_mode == "human":
            self.render()
        return obs.astype(self._obs_dtype), float(reward), bool(code), False, {}

    def render(self) -> np.ndarray | None:
        """Draw the current state as Gymnasium's env of the same id draws it.

        Returns
        -------
        numpy.ndarray or None
            ``"rgb_array"``: the frame, (H, W, 3) uint8 (CartPole 400 x 600);
            ``"human"``: None, the frame is shown in the window; no render mode: None.

        Raises
        ------
        gymnasium.error.ResetNeeded
            Before the first ``reset``.
        RuntimeError
            A MuJoCo env where no OpenGL context can be opened (it says what to install).

        Examples
        --------
        >>> import gymnasium, pgfast
        >>> env = gymnasium.make("pgfast/CartPole-v1", render_mode="rgb_array")
        >>> _ = env.reset(seed=0)
        >>> env.render().shape
        (400, 600, 3)
        """
        if self._painter is None:
            gymnasium.logger.warn(f"{PREFIX}{self._name}: render() without a render_mode; "
                                  f"make the env with render_mode='rgb_array'")
            return None
        if self._needs_reset:
            raise ResetNeeded(f"{PREFIX}{self._name}: call reset() before render()")
        painter = self._painter
        if self._name in _DRAWN:
            painter.state = self.kernel.get_state()[0]
            if self._name == "Pendulum-v1":   # the arrow of the last torque, as it clips it
                painter.last_u = None if self._last_action is None else np.clip(
                    self._last_action, -painter.max_torque, painter.max_torque).reshape(-1)[0]
            return painter.render()
        # MuJoCo: the whole mjData, as the last mj_step left it (the frames and positions
        # MuJoCo's renderer reads), into Gymnasium's env of the same model, which renders
        # with the OpenGL that MUJOCO_GL names (unset: glfw, then egl, osmesa; without a
        # display _painter has chosen egl).
        self.kernel.copy_data_into(0, painter.data)
        try:
            return painter.render()
        except Exception as exc:   # no OpenGL: MuJoCo's and glfw's errors vary in kind
            chosen = os.environ.get("MUJOCO_GL")
            raise RuntimeError(
                f"render: MuJoCo could not open an OpenGL context "
                f"({'MUJOCO_GL=' + chosen if chosen else 'MUJOCO_GL unset: tried glfw, egl, osmesa'}"
                f"): offscreen rendering needs EGL (Debian: libegl1) or OSMesa (libosmesa6), "
                f"chosen with MUJOCO_GL=egl or MUJOCO_GL=osmesa "
                f"({type(exc).__name__}: {exc})") from exc

    def close(self) -> None:
        """Close the env (and its window): later ``reset`` and ``step`` calls raise.

        Returns
        -------
        None
        """
        if self._painter is not None:
            self._painter.close()
        self._closed = True


class NativeVectorEnv(VectorEnv):
    """B copies of a native environment stepped in one kernel call.

    Gymnasium's next-step autoreset (``metadata["autoreset_mode"]``): the step after
    an episode ends (terminated or truncated) resets that slot and returns its
    initial observation with reward 0 and both flags false; its action is ignored.
    ``terminated`` (a terminal state, no bootstrap) and ``truncated`` (the time
    limit, elapsed ≥ max_episode_steps) are kept separate and may both be true.

    Seeding: ``reset(seed=int)`` gives slot i ``SeedSequence(seed).spawn(B)[i]``;
    ``reset(seed=[s_0, …])`` gives slot i the generator ``reset(seed=s_i)`` gives
    one env. ``reset()`` without a seed continues the current streams (the
    ``seed`` given to the constructor, or fresh entropy).

    Parameters
    ----------
    env_id : str
        A native id, with or without the ``pgfast/`` prefix.
    num_envs : int
        The number of slots B.
    seed : None, int or list of num_envs ints
        Seeds the per-slot generators now; the first ``reset()`` uses them.
    max_episode_steps : int, optional
        Time limit (truncation); default as registered; 0: none.
    **kwargs
        Environment parameters (Pendulum: ``g``).

    Raises
    ------
    TypeError
        `env_id` is not a string.
    ValueError
        An unknown id, or `num_envs` below 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> envs = pgfast.NativeVectorEnv("CartPole-v1", num_envs=4, seed=0)
    >>> obs, info = envs.reset()
    >>> obs.shape
    (4, 4)
    >>> obs, rewards, terminated, truncated, info = envs.step(np.ones(4, dtype=np.int64))
    >>> rewards, terminated
    (array([1., 1., 1., 1.]), array([False, False, False, False]))
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, env_id: str, num_envs: int = 1, seed: int | list[int] | None = None,
                 max_episode_steps: int | None = None, **kwargs: Any) -> None:
        name, spec = _spec_of(env_id)
        self.kernel = make_kernel(name, num_envs, seed=seed,
                                  max_episode_steps=max_episode_steps, **kwargs)
        self._name, self._spec = name, spec
        self.num_envs = self.kernel.num_envs
        self.max_episode_steps = self.kernel.max_episode_steps or None
        self.single_observation_space = spec.observation_space()
        self.single_action_space = spec.action_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._obs_dtype = self.single_observation_space.dtype
        # The episode counters, the last observations and the step itself.
        self._autoreset = _rollout.NextStepAutoreset(
            self.kernel, self._obs_dtype, self.action_space.shape,
            partial(_check_actions, space=self.action_space, kernel=self.kernel,
                    name="actions"))
        self._started = False

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every slot (or those in ``options["reset_mask"]``).

        Parameters
        ----------
        seed : int or list of int, optional
            An int gives slot i ``SeedSequence(seed).spawn(B)[i]``; a list of B ints
            gives slot i what ``reset(seed=s_i)`` gives one env; None continues the
            current streams.
        options : dict, optional
            ``"reset_mask"``: a (B,) bool array of the slots to reset (the first
            reset must reset all); the env's Gymnasium reset options otherwise.

        Returns
        -------
        observations : numpy.ndarray, shape (B, obs_dim)
            The slots' observations (the others' current ones under a mask).
        info : dict
            Empty.

        Raises
        ------
        TypeError
            A seed that is neither an int nor a list of ints.
        ValueError
            A reset mask of the wrong shape or dtype.
        """
        self._check_open("reset")
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"options: expected a dict or None, got {type(options).__name__}")
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if seed is not None:
            self.kernel.seed(check_seed(seed, self.num_envs))
        _set_reset_bounds(self.kernel, self._spec, options)
        if mask is not None:
            mask = as_array(mask, "options['reset_mask']")
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask']: expected a bool array of shape "
                                 f"({self.num_envs},), got {mask.dtype} {mask.shape}")
            if not self._started and not mask.all():
                raise ResetNeeded("options['reset_mask']: the first reset must reset every slot")
            obs = self._autoreset.last_obs.copy()
            m = np.ascontiguousarray(mask).view(np.uint8)
        else:
            obs = np.empty((self.num_envs, self.kernel.obs_dim), dtype=self._obs_dtype)
            m = np.ones(self.num_envs, dtype=np.uint8)
        self.kernel.reset_all(obs, m)
        if not np.isfinite(obs).all():
            self._started = False   # the slots hold unusable states: reset them all again
            _check_reset_obs(obs, options)
        self._autoreset.elapsed[m != 0] = 0
        self._autoreset.needs_reset[m != 0] = 0
        self._started = True
        self._autoreset.last_obs[...] = obs
        return obs, {}

    def step(self, actions: Any
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every slot (next-step autoreset: see the class's docstring).

        Parameters
        ----------
        actions : array_like
            (B,) indices for discrete actions; otherwise floats of shape (B,) + the
            action shape.

        Returns
        -------
        observations : numpy.ndarray, shape (B, obs_dim)
            The next observations.
        rewards : numpy.ndarray, shape (B,)
            float64 rewards.
        terminated, truncated : numpy.ndarray, shape (B,)
            bool flags, kept separate.
        info : dict
            Empty.

        Raises
        ------
        ValueError
            Actions outside the action space, non-finite or of the wrong shape.
        """
        self._check_open("step")
        if not self._started:
            raise ResetNeeded("step() before reset(): call reset() first")
        try:
            obs, rewards, terminated, truncated = self._autoreset.step(actions)
        except _rollout.InvalidAction as refused:   # nothing was stepped
            bad, = refused.args
            rows = _check_actions(actions, self.action_space, self.kernel, "actions")
            _check_action_values(rows, actions, self.kernel, "actions")
            raise ValueError(f"actions: entry {bad} ({np.asarray(actions)[bad]!r}) is outside "
                             f"the action space {self.single_action_space}") from None
        except _rollout.RewardOverflow as overflow:
            bad, = overflow.args
            raise _reward_overflow(np.asarray(actions)[bad], "actions") from None
        return obs, rewards, terminated, truncated, {}

    def close_extras(self, **kwargs):
        """Nothing to release: the kernel's memory goes with the object.

        Parameters
        ----------
        **kwargs
            Gymnasium's ``close`` arguments, unused.

        Returns
        -------
        None
        """

    def _check_open(self, what):
        if self.closed:
            raise ClosedEnvironmentError(f"{PREFIX}{self._name}: {what}() on a closed vector env")

    def __repr__(self):
        return f"NativeVectorEnv({PREFIX}{self._name}, num_envs={self.num_envs})"


def make_vec(env_id: str, num_envs: int = 1, seed: int | list[int] | None = None,
             max_episode_steps: int | None = None, **kwargs: Any) -> NativeVectorEnv:
    """A :class:`NativeVectorEnv` of B = num_envs copies.

    Parameters
    ----------
    env_id : str
        "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
        "Pendulum-v1" or "SimpleRegulator-v0", with or without "pgfast/".
    num_envs : int
        The number of slots B.
    seed : None, int or list of num_envs ints
        Seeds the per-slot generators now; the first ``reset()`` uses them.
    max_episode_steps : int, optional
        Time limit (truncation); default as registered (the regulator: none); 0: none.
    **kwargs
        Environment parameters (Pendulum: ``g``).

    Returns
    -------
    NativeVectorEnv
        Reset it before stepping.

    Raises
    ------
    TypeError
        `env_id` is not a string.
    ValueError
        An unknown id, or `num_envs` below 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> envs = pgfast.make_vec("Pendulum-v1", num_envs=3, seed=0, g=9.81)
    >>> obs, info = envs.reset()
    >>> obs.shape, envs.single_action_space.shape
    ((3, 3), (1,))
    >>> rewards = envs.step(np.zeros((3, 1)))[1]
    >>> rewards.dtype, bool((rewards <= 0).all())
    (dtype('float64'), True)
    """
    return NativeVectorEnv(env_id, num_envs=num_envs, seed=seed,
                           max_episode_steps=max_episode_steps, **kwargs)


def _register():
    for name, spec in _SPECS.items():
        if PREFIX + name not in gymnasium.registry:
            gymnasium.register(id=PREFIX + name, entry_point="pgfast.envs:NativeEnv",
                               kwargs={"env_id": name}, max_episode_steps=spec.max_episode_steps,
                               reward_threshold=spec.reward_threshold)


_register()
