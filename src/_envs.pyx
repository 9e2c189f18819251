# cython: language_level=3
"""Batched native environments: B copies of one environment in C arrays.

Each kernel reproduces a Gymnasium classic-control environment (gymnasium
1.x, ``gymnasium/envs/classic_control``): the same dynamics written with the
same floating-point operation order, rewards, termination and reset
distribution. Where Gymnasium computes in float32 (actions from a float32 Box,
Pendulum's torque terms, MountainCarContinuous's float32 state) the kernel
rounds at the same places. Python wrapper: ``pgfast/envs.py``.

A kernel only simulates: time limits and autoreset belong to the episode
drivers of ``_rollout.pyx`` (the fused loop, and ``step_all`` behind the
Gymnasium vector env), the one place those rules are written. Validation of
Python input is the wrapper's; the kernels trust their inputs except for the
action check that step_one must make.
"""
from libc.math cimport M_PI, cos, fabs, floor, fmod, isfinite, pow, powf, sin
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from cython cimport floating
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal, random_standard_uniform

from pgfast._common cimport MAX_ELEMENTS, alloc_doubles, as_size, bitgen_of

import math
import numbers
import os

import numpy as np

# Gymnasium's arithmetic is numpy's: one rounding per operation. CMakeLists.txt
# builds this module with -ffp-contract=off so that a*b + c is never fused.


# ------------------------------------------------------------ the spec table
# Every native environment's spec, written once: the kernels below read their
# physical constants and defaults from it, and pgfast/envs.py builds the
# Gymnasium spaces, reset options and registrations from it. Per env id:
#   kernel               the kernel class (num_envs, seed, max_episode_steps, **params)
#   max_episode_steps    the registered time limit (None: none)
#   reward_threshold     Gymnasium's registered threshold (None: none)
#   observation          (low, high, dtype) of the Box observation space
#   action               n for Discrete(n), or (low, high, dtype) of a Box
#   reset                the reset distribution's defaults, by their Gymnasium
#                        reset-option names (set_reset_bounds takes them in order)
#   constants            what the dynamics and the spaces share
# Constants are written as Gymnasium's sources compute them, so they round alike.
_CARTPOLE = dict(gravity=9.8, masscart=1.0, masspole=0.1, length=0.5, force_mag=10.0,
                 tau=0.02, theta_threshold=12 * 2 * math.pi / 360, x_threshold=2.4)
_ACROBOT = dict(dt=0.2, max_vel_1=4 * math.pi, max_vel_2=9 * math.pi)
_MOUNTAIN_CAR = dict(min_position=-1.2, max_position=0.6, max_speed=0.07)
_PENDULUM = dict(max_speed=8.0, max_torque=2.0, dt=0.05, g=10.0)
_INF = math.inf

SPECS = {
    "CartPole-v1": dict(
        kernel=CartPoleKernel, max_episode_steps=500, reward_threshold=475.0,
        observation=([-2 * _CARTPOLE["x_threshold"], -_INF, -2 * _CARTPOLE["theta_threshold"], -_INF],
                     [2 * _CARTPOLE["x_threshold"], _INF, 2 * _CARTPOLE["theta_threshold"], _INF],
                     "float32"),
        action=2, reset={"low": -0.05, "high": 0.05}, constants=_CARTPOLE),
    "Acrobot-v1": dict(
        kernel=AcrobotKernel, max_episode_steps=500, reward_threshold=-100.0,
        observation=([-1.0, -1.0, -1.0, -1.0, -_ACROBOT["max_vel_1"], -_ACROBOT["max_vel_2"]],
                     [1.0, 1.0, 1.0, 1.0, _ACROBOT["max_vel_1"], _ACROBOT["max_vel_2"]],
                     "float32"),
        action=3, reset={"low": -0.1, "high": 0.1}, constants=_ACROBOT),
    "MountainCar-v0": dict(
        kernel=MountainCarKernel, max_episode_steps=200, reward_threshold=-110.0,
        observation=([_MOUNTAIN_CAR["min_position"], -_MOUNTAIN_CAR["max_speed"]],
                     [_MOUNTAIN_CAR["max_position"], _MOUNTAIN_CAR["max_speed"]], "float32"),
        action=3, reset={"low": -0.6, "high": -0.4}, constants=_MOUNTAIN_CAR),
    "MountainCarContinuous-v0": dict(
        kernel=MountainCarContinuousKernel, max_episode_steps=999, reward_threshold=90.0,
        observation=([_MOUNTAIN_CAR["min_position"], -_MOUNTAIN_CAR["max_speed"]],
                     [_MOUNTAIN_CAR["max_position"], _MOUNTAIN_CAR["max_speed"]], "float32"),
        action=([-1.0], [1.0], "float32"), reset={"low": -0.6, "high": -0.4},
        constants=_MOUNTAIN_CAR),
    "Pendulum-v1": dict(
        kernel=PendulumKernel, max_episode_steps=200, reward_threshold=None,
        observation=([-1.0, -1.0, -_PENDULUM["max_speed"]], [1.0, 1.0, _PENDULUM["max_speed"]],
                     "float32"),
        action=([-_PENDULUM["max_torque"]], [_PENDULUM["max_torque"]], "float32"),
        reset={"x_init": math.pi, "y_init": 1.0}, constants=_PENDULUM),
    # float64 spaces: the regulator is an exact reference problem, not a benchmark env.
    "SimpleRegulator-v0": dict(
        kernel=SimpleRegulatorKernel, max_episode_steps=None, reward_threshold=None,
        observation=([-_INF], [_INF], "float64"), action=([-_INF], [_INF], "float64"),
        reset={}, constants={}),
}


cdef Py_ssize_t _time_limit(str env_id, max_episode_steps) except -1:
    """The kernel's max_episode_steps: the table's when None (0 for no limit)."""
    if max_episode_steps is None:
        return SPECS[env_id]["max_episode_steps"] or 0
    return as_size(max_episode_steps, "max_episode_steps")


# Each env slot costs about this much memory (its numpy Generator), whatever the
# env: more slots than the machine's memory holds are refused up front instead
# of allocating until the process is killed.
cdef Py_ssize_t _SLOT_BYTES = 2048


cdef Py_ssize_t _max_slots() except -1:
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):   # not a POSIX system
        return MAX_ELEMENTS // _SLOT_BYTES
    return max(1, min(memory, MAX_ELEMENTS) // _SLOT_BYTES)


# ids of the kernels an entry point is using now; read and changed under the GIL.
cdef set _in_use = set()


cdef int claim(VecEnvKernel k) except -1:
    if id(k) in _in_use:   # a ValueError: the `env` argument cannot serve this call now
        raise ValueError(
            f"env: this {type(k).__name__} is in use by another thread; a native env "
            "serves one caller at a time (give each thread its own env)")
    _in_use.add(id(k))
    return 0


cdef void release(VecEnvKernel k) noexcept:
    _in_use.discard(id(k))


cdef int check_ready(VecEnvKernel k) except -1:
    if k.bitgens == NULL or k.num_envs < 1:
        raise RuntimeError(
            f"{type(k).__name__}: not initialised (a subclass must call VecEnvKernel.__init__)")
    return 0


cdef Py_ssize_t _check_slot(VecEnvKernel k, i) except -1:
    """Slot index i of k, an int in [0, num_envs), else IndexError."""
    check_ready(k)
    if isinstance(i, (bool, float)) or not isinstance(i, numbers.Integral) \
            or not 0 <= i < k.num_envs:
        raise IndexError(f"i: expected a slot in [0, {k.num_envs}), got {i!r}")
    return i


cdef class VecEnvKernel:
    """Base of every native environment kernel (see ``_envs.pxd``).

    Parameters
    ----------
    num_envs, obs_dim, act_dim, n_actions, max_episode_steps : int
        The sizes a subclass declares; ``n_actions = 0`` for a continuous action,
        ``max_episode_steps = 0`` for no time limit.
    seed : None, int, SeedSequence or sequence of num_envs seeds
        Passed to :meth:`seed`.
    """

    def __init__(self, num_envs, obs_dim, act_dim, n_actions, max_episode_steps=0,
                 seed=None):
        # Python ints of any size are checked before they become C sizes.
        cdef Py_ssize_t B = as_size(num_envs, "num_envs", 1, _max_slots())
        cdef Py_ssize_t D = as_size(obs_dim, "obs_dim", 1)
        cdef Py_ssize_t A = as_size(act_dim, "act_dim", 1)
        cdef Py_ssize_t K = as_size(n_actions, "n_actions", 0)
        cdef Py_ssize_t T = as_size(max_episode_steps, "max_episode_steps", 0)
        if K > 0 and A != 1:
            raise ValueError(f"act_dim: a discrete action has act_dim 1, got {A}")
        self.num_envs = B
        self.obs_dim = D
        self.act_dim = A
        self.n_actions = K
        self.max_episode_steps = T
        self.seed(seed)

    def __dealloc__(self):
        free(self.bitgens)

    def seed(self, seed=None):
        """Give every slot its own Generator.

        An int, None or SeedSequence is spawned into num_envs independent child
        streams (``SeedSequence(seed).spawn(num_envs)``); a sequence of num_envs
        seeds gives slot i ``np.random.default_rng(seed[i])``, the generator a
        single Gymnasium env builds from ``reset(seed=seed[i])``.
        """
        cdef Py_ssize_t i
        cdef bitgen_t** ptrs
        if isinstance(seed, (list, tuple)):
            if len(seed) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seed)}")
            rngs = [np.random.default_rng(s) for s in seed]
        else:
            if not isinstance(seed, np.random.SeedSequence):
                seed = np.random.SeedSequence(seed)
            rngs = [np.random.Generator(np.random.PCG64(s)) for s in seed.spawn(self.num_envs)]
        ptrs = <bitgen_t**> malloc(self.num_envs * sizeof(bitgen_t*))
        if ptrs == NULL:
            raise MemoryError()
        for i in range(self.num_envs):
            ptrs[i] = bitgen_of(rngs[i])
        try:
            claim(self)   # never swap the generators under a running step
        except ValueError:
            free(ptrs)
            raise
        free(self.bitgens)
        self.bitgens = ptrs
        self._rngs = rngs
        release(self)

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        pass

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        return -1

    cdef void step_rows(self, const Py_ssize_t* slots, Py_ssize_t n, const double* actions,
                        bitgen_t** bitgens, double* obs, double* rewards,
                        int* codes) noexcept nogil:
        cdef Py_ssize_t j
        for j in range(n):
            codes[j] = self.step_one(slots[j], actions + j * self.act_dim, bitgens[j],
                                     obs + j * self.obs_dim, rewards + j)

    cdef bint valid_action(self, const double* action) noexcept nogil:
        cdef Py_ssize_t k
        cdef double a
        if self.n_actions > 0:
            a = action[0]
            return a >= 0.0 and a < <double> self.n_actions and a == floor(a)
        for k in range(self.act_dim):
            if not isfinite(action[k]):
                return False
        return True

    def reset_all(self, floating[:, ::1] obs, const unsigned char[::1] mask=None):
        """Reset every slot (or those with mask[i] != 0) from its own generator;
        write their observations into obs (num_envs, obs_dim)."""
        cdef Py_ssize_t i, k, B = self.num_envs, D = self.obs_dim
        cdef double* buf
        check_ready(self)
        if obs.shape[0] != B or obs.shape[1] != D:
            raise ValueError(f"obs: expected shape ({B}, {D}), got {obs.shape[0], obs.shape[1]}")
        if mask is not None and mask.shape[0] != B:
            raise ValueError(f"mask: expected shape ({B},), got ({mask.shape[0]},)")
        buf = alloc_doubles(D)
        try:
            claim(self)
            with nogil:
                for i in range(B):
                    if mask is None or mask[i]:
                        self.reset_one(i, self.bitgens[i], buf)
                        for k in range(D):
                            obs[i, k] = <floating> buf[k]
            release(self)
        finally:
            free(buf)

    def reset_slot(self, i, rng):
        """Reset slot i drawing from the caller's Generator `rng` (held under its
        lock); return the observation as a float64 array."""
        cdef Py_ssize_t slot = _check_slot(self, i)
        cdef double[::1] obs = np.empty(self.obs_dim)
        cdef bitgen_t* bitgen = bitgen_of(rng)
        claim(self)
        try:
            with rng.bit_generator.lock, nogil:
                self.reset_one(slot, bitgen, &obs[0])
        finally:
            release(self)
        return np.asarray(obs)

    def step_slot(self, i, const double[::1] action, rng):
        """Step slot i with `action` (act_dim doubles) drawing from `rng`; return
        (obs float64 array, reward, code) with code as step_one's."""
        cdef Py_ssize_t slot = _check_slot(self, i)
        cdef double[::1] obs = np.empty(self.obs_dim)
        cdef double reward = 0.0
        cdef int code
        cdef bitgen_t* bitgen
        if action.shape[0] != self.act_dim:
            raise ValueError(f"action: expected shape ({self.act_dim},), got ({action.shape[0]},)")
        bitgen = bitgen_of(rng)
        claim(self)
        try:
            with rng.bit_generator.lock, nogil:
                code = self.step_one(slot, &action[0], bitgen, &obs[0], &reward)
        finally:
            release(self)
        return np.asarray(obs), reward, code



cdef class _StateKernel(VecEnvKernel):
    """A kernel whose slot states are rows of one (num_envs, state_dim) array,
    readable and writable from Python for tests and checkpoints."""
    cdef double[:, ::1] state
    cdef readonly Py_ssize_t state_dim

    cdef void observe_one(self, Py_ssize_t i, double* obs) noexcept nogil:
        # The observation is the state itself unless a subclass says otherwise.
        cdef Py_ssize_t k
        for k in range(self.state_dim):
            obs[k] = self.state[i, k]

    cdef void _init_state(self, Py_ssize_t state_dim):
        self.state_dim = state_dim
        self.state = np.zeros((self.num_envs, state_dim))

    def get_state(self):
        """A copy of the states, shape (num_envs, state_dim)."""
        return np.array(self.state, copy=True)

    def set_state(self, state):
        """Overwrite the states (num_envs, state_dim) of finite doubles."""
        arr = np.ascontiguousarray(state, dtype=np.float64)
        if arr.shape != (self.num_envs, self.state_dim):
            raise ValueError(f"state: expected shape {(self.num_envs, self.state_dim)}, "
                             f"got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError("state: expected finite values, found NaN or infinity")
        claim(self)
        np.asarray(self.state)[...] = arr
        release(self)

    def observe(self):
        """The observations of the current states, float64 (num_envs, obs_dim)."""
        cdef double[:, ::1] out = np.empty((self.num_envs, self.obs_dim))
        cdef Py_ssize_t i
        for i in range(self.num_envs):
            self.observe_one(i, &out[i, 0])
        return np.asarray(out)



cdef class _UniformResetKernel(_StateKernel):
    """A kernel whose reset draws state components from U(low, high) (see each
    kernel), Gymnasium's reset options "low" and "high"."""
    cdef double reset_low, reset_high

    def set_reset_bounds(self, double low, double high):
        """The bounds of the reset distribution U(low, high)."""
        if not (isfinite(low) and isfinite(high) and low <= high):
            raise ValueError(f"low, high: expected finite low <= high, got {low}, {high}")
        self.reset_low = low
        self.reset_high = high

    cdef void _default_reset(self, str env_id):
        self.reset_low = SPECS[env_id]["reset"]["low"]
        self.reset_high = SPECS[env_id]["reset"]["high"]


cdef inline double _uniform(bitgen_t* bitgen, double low, double high) noexcept nogil:
    # numpy's Generator.uniform: low + (high - low) * U[0, 1), the same draw.
    return low + (high - low) * random_standard_uniform(bitgen)


cdef inline double _clip(double x, double lo, double hi) noexcept nogil:
    return lo if x < lo else (hi if x > hi else x)


# ---------------------------------------------------------------- CartPole-v1
# Derived as gymnasium's cartpole.py derives them, so they round alike.
cdef double CP_GRAVITY = _CARTPOLE["gravity"]
cdef double CP_MASSPOLE = _CARTPOLE["masspole"]
cdef double CP_TOTAL_MASS = _CARTPOLE["masspole"] + _CARTPOLE["masscart"]
cdef double CP_LENGTH = _CARTPOLE["length"]
cdef double CP_POLEMASS_LENGTH = _CARTPOLE["masspole"] * _CARTPOLE["length"]
cdef double CP_FORCE_MAG = _CARTPOLE["force_mag"]
cdef double CP_TAU = _CARTPOLE["tau"]
cdef double CP_THETA_THRESHOLD = _CARTPOLE["theta_threshold"]
cdef double CP_X_THRESHOLD = _CARTPOLE["x_threshold"]
cdef enum:
    _CP_BLOCK = 16   # rows stepped per vectorised block


cdef class CartPoleKernel(_UniformResetKernel):
    """CartPole-v1: state (x, ẋ, θ, θ̇), explicit Euler with τ = 0.02.

    force = ±10; tmp = (force + m_p l θ̇² sin θ) / M;
    θ̈ = (g sin θ − cos θ · tmp) / (l (4/3 − m_p cos²θ / M)); ẍ = tmp − m_p l θ̈ cos θ / M;
    x ← x + τ ẋ, ẋ ← ẋ + τ ẍ, θ ← θ + τ θ̇, θ̇ ← θ̇ + τ θ̈. Reward 1 every step;
    terminal when |x| > 2.4 or |θ| > 12°. Reset: each component ~ U(low, high),
    default U(−0.05, 0.05).
    """

    def __init__(self, num_envs, seed=None, max_episode_steps=None):
        VecEnvKernel.__init__(self, num_envs, 4, 1, 2, _time_limit("CartPole-v1", max_episode_steps),
                              seed)
        self._init_state(4)
        self._default_reset("CartPole-v1")

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        cdef Py_ssize_t k
        cdef double* s = &self.state[i, 0]
        for k in range(4):
            # obs from the draw, not re-read from s: a load right after the
            # stores to s waits for them (no store forwarding into one wide load)
            s[k] = obs[k] = _uniform(bitgen, self.reset_low, self.reset_high)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        cdef double a = action[0]
        cdef double* s = &self.state[i, 0]
        if not (a == 0.0 or a == 1.0):
            return -1
        _cartpole_euler(s, a, sin(s[2]), cos(s[2]))
        memcpy(obs, s, 4 * sizeof(double))
        reward[0] = 1.0
        return _cartpole_terminal(s)

    cdef void step_rows(self, const Py_ssize_t* slots, Py_ssize_t n, const double* actions,
                        bitgen_t** bitgens, double* obs, double* rewards,
                        int* codes) noexcept nogil:
        # Per block of rows: gather the states and their sines and cosines (libm's,
        # as Gymnasium's), then step the block in one loop with no call, which the
        # compiler vectorises, divisions and all; an invalid row keeps its state.
        cdef Py_ssize_t j0, j, k, m
        cdef double* s
        cdef double blk[4 * _CP_BLOCK]
        cdef double sn[_CP_BLOCK]
        cdef double cs[_CP_BLOCK]
        cdef double a
        cdef int ok
        j0 = 0
        while j0 < n:
            m = min(<Py_ssize_t> _CP_BLOCK, n - j0)
            for j in range(m):
                s = &self.state[slots[j0 + j], 0]
                memcpy(blk + 4 * j, s, 4 * sizeof(double))
                sn[j] = sin(s[2])
                cs[j] = cos(s[2])
            for j in range(m):
                a = actions[j0 + j]
                ok = (a == 0.0) | (a == 1.0)
                _cartpole_euler(blk + 4 * j, a, sn[j], cs[j])
                # terminal (0 or 1) if the action is valid, else -1, with no branch
                codes[j0 + j] = ok * _cartpole_terminal(blk + 4 * j) - (1 - ok)
                rewards[j0 + j] = 1.0
            for j in range(m):
                s = &self.state[slots[j0 + j], 0]
                if codes[j0 + j] >= 0:
                    memcpy(s, blk + 4 * j, 4 * sizeof(double))
                    memcpy(obs + 4 * (j0 + j), blk + 4 * j, 4 * sizeof(double))
                else:
                    memcpy(obs + 4 * (j0 + j), s, 4 * sizeof(double))
            j0 += m


cdef inline void _cartpole_euler(double* s, double action, double sintheta,
                                 double costheta) noexcept nogil:
    """One step of the state s = (x, ẋ, θ, θ̇) in place under action 0 or 1, given
    sin θ and cos θ; Gymnasium's operations in Gymnasium's order."""
    cdef double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3]
    cdef double force = (2.0 * action - 1.0) * CP_FORCE_MAG   # ±10 exactly, with no branch
    cdef double temp = (force + CP_POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) \
        / CP_TOTAL_MASS
    cdef double thetaacc = (CP_GRAVITY * sintheta - costheta * temp) / (
        CP_LENGTH * (4.0 / 3.0 - CP_MASSPOLE * (costheta * costheta) / CP_TOTAL_MASS))
    cdef double xacc = temp - CP_POLEMASS_LENGTH * thetaacc * costheta / CP_TOTAL_MASS
    s[0] = x + CP_TAU * x_dot
    s[1] = x_dot + CP_TAU * xacc
    s[2] = theta + CP_TAU * theta_dot
    s[3] = theta_dot + CP_TAU * thetaacc


cdef inline int _cartpole_terminal(const double* s) noexcept nogil:
    return (s[0] < -CP_X_THRESHOLD) | (s[0] > CP_X_THRESHOLD) \
        | (s[2] < -CP_THETA_THRESHOLD) | (s[2] > CP_THETA_THRESHOLD)


# ---------------------------------------------------------------- Acrobot-v1
# Gymnasium squares with numpy's scalar power, i.e. libm's pow / powf, which
# are not always the correctly rounded x*x. Called through pointers so the
# compiler cannot rewrite pow(x, 2) as x*x.
ctypedef float (*_powf_t)(float, float) noexcept nogil
ctypedef double (*_pow_t)(double, double) noexcept nogil
cdef _powf_t _libm_powf = powf
cdef _pow_t _libm_pow = pow

cdef double AC_DT = _ACROBOT["dt"]
cdef double AC_MAX_VEL_1 = _ACROBOT["max_vel_1"]
cdef double AC_MAX_VEL_2 = _ACROBOT["max_vel_2"]


cdef void _acrobot_dsdt(const double* s, double a, double* ds) noexcept nogil:
    # gymnasium AcrobotEnv._dsdt ("book" dynamics): unit masses and lengths,
    # centres of mass at 0.5, moments of inertia 1, g = 9.8; same operation order.
    cdef double m1 = 1.0, m2 = 1.0, l1 = 1.0, lc1 = 0.5, lc2 = 0.5, I1 = 1.0, I2 = 1.0
    cdef double g = 9.8
    cdef double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3]
    cdef double d1 = m1 * (lc1 * lc1) + m2 * ((l1 * l1) + (lc2 * lc2)
                                           + 2 * l1 * lc2 * cos(theta2)) + I1 + I2
    cdef double d2 = m2 * ((lc2 * lc2) + l1 * lc2 * cos(theta2)) + I2
    cdef double phi2 = m2 * lc2 * g * cos(theta1 + theta2 - M_PI / 2.0)
    cdef double phi1 = (-m2 * l1 * lc2 * _libm_pow(dtheta2, 2.0) * sin(theta2)
                        - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
                        + (m1 * lc1 + m2 * l1) * g * cos(theta1 - M_PI / 2)
                        + phi2)
    cdef double ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * _libm_pow(dtheta1, 2.0) * sin(theta2)
                            - phi2) / (m2 * (lc2 * lc2) + I2 - _libm_pow(d2, 2.0) / d1)
    cdef double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
    ds[0] = dtheta1
    ds[1] = dtheta2
    ds[2] = ddtheta1
    ds[3] = ddtheta2


cdef inline double _wrap(double x, double m, double M) noexcept nogil:
    cdef double diff = M - m
    if fabs(x) > 1e6:  # far outside: skip the loop (never reached from a valid state)
        x = fmod(x, diff)
    while x > M:
        x = x - diff
    while x < m:
        x = x + diff
    return x


cdef class AcrobotKernel(_UniformResetKernel):
    """Acrobot-v1: state (θ₁, θ₂, θ̇₁, θ̇₂), one RK4 step of dt = 0.2 with torque
    τ ∈ {−1, 0, +1}; angles wrapped to [−π, π], velocities clipped to ±4π, ±9π.
    Observation (cos θ₁, sin θ₁, cos θ₂, sin θ₂, θ̇₁, θ̇₂). Reward −1 per step, 0 on
    the step reaching the terminal set −cos θ₁ − cos(θ₁ + θ₂) > 1. Reset: each
    component ~ U(low, high) rounded to float32, default U(−0.1, 0.1).
    """

    def __init__(self, num_envs, seed=None, max_episode_steps=None):
        VecEnvKernel.__init__(self, num_envs, 6, 1, 3, _time_limit("Acrobot-v1", max_episode_steps),
                              seed)
        self._init_state(4)
        self._default_reset("Acrobot-v1")

    cdef void observe_one(self, Py_ssize_t i, double* obs) noexcept nogil:
        cdef double* s = &self.state[i, 0]
        obs[0] = cos(s[0])
        obs[1] = sin(s[0])
        obs[2] = cos(s[1])
        obs[3] = sin(s[1])
        obs[4] = s[2]
        obs[5] = s[3]

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        cdef Py_ssize_t k
        for k in range(4):
            self.state[i, k] = <float> _uniform(bitgen, self.reset_low, self.reset_high)
        self.observe_one(i, obs)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        cdef double a = action[0]
        if not (a == 0.0 or a == 1.0 or a == 2.0):
            return -1
        cdef double torque = a - 1.0
        cdef double* s = &self.state[i, 0]
        cdef double k1[4]
        cdef double k2[4]
        cdef double k3[4]
        cdef double k4[4]
        cdef double y[4]
        cdef double dt2 = AC_DT / 2.0, dt6 = AC_DT / 6.0
        cdef Py_ssize_t k
        _acrobot_dsdt(s, torque, k1)
        for k in range(4):
            y[k] = s[k] + dt2 * k1[k]
        _acrobot_dsdt(y, torque, k2)
        for k in range(4):
            y[k] = s[k] + dt2 * k2[k]
        _acrobot_dsdt(y, torque, k3)
        for k in range(4):
            y[k] = s[k] + AC_DT * k3[k]
        _acrobot_dsdt(y, torque, k4)
        for k in range(4):
            y[k] = s[k] + dt6 * (k1[k] + 2 * k2[k] + 2 * k3[k] + k4[k])
        s[0] = _wrap(y[0], -M_PI, M_PI)
        s[1] = _wrap(y[1], -M_PI, M_PI)
        s[2] = _clip(y[2], -AC_MAX_VEL_1, AC_MAX_VEL_1)
        s[3] = _clip(y[3], -AC_MAX_VEL_2, AC_MAX_VEL_2)
        self.observe_one(i, obs)
        cdef bint terminal = -cos(s[0]) - cos(s[1] + s[0]) > 1.0
        reward[0] = 0.0 if terminal else -1.0
        return terminal


# ------------------------------------------------------------ MountainCar-v0
cdef double MC_MIN_POSITION = _MOUNTAIN_CAR["min_position"]
cdef double MC_MAX_POSITION = _MOUNTAIN_CAR["max_position"]
cdef double MC_MAX_SPEED = _MOUNTAIN_CAR["max_speed"]


cdef class _MountainCarBase(_UniformResetKernel):
    """What both mountain cars share: the state (p, v) and its reset,
    p ~ U(low, high) (default U(−0.6, −0.4)), v = 0."""

    def __init__(self, str env_id, num_envs, Py_ssize_t n_actions, max_episode_steps, seed):
        VecEnvKernel.__init__(self, num_envs, 2, 1, n_actions,
                              _time_limit(env_id, max_episode_steps), seed)
        self._init_state(2)
        self._default_reset(env_id)

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        self.state[i, 0] = _uniform(bitgen, self.reset_low, self.reset_high)
        self.state[i, 1] = 0.0
        self.observe_one(i, obs)


cdef class MountainCarKernel(_MountainCarBase):
    """MountainCar-v0: state (position, velocity), action ∈ {0, 1, 2}.

    v ← clip(v + (a − 1)·0.001 − 0.0025 cos(3p), ±0.07); p ← clip(p + v, [−1.2, 0.6]);
    v ← 0 when p hits −1.2 moving left. Reward −1; terminal when p ≥ 0.5 and v ≥ 0.
    Reset: p ~ U(low, high), default U(−0.6, −0.4); v = 0.
    """

    def __init__(self, num_envs, seed=None, max_episode_steps=None):
        _MountainCarBase.__init__(self, "MountainCar-v0", num_envs, 3, max_episode_steps, seed)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        cdef double a = action[0]
        if not (a == 0.0 or a == 1.0 or a == 2.0):
            return -1
        cdef double position = self.state[i, 0], velocity = self.state[i, 1]
        velocity = velocity + ((a - 1.0) * 0.001 + cos(3 * position) * (-0.0025))
        velocity = _clip(velocity, -MC_MAX_SPEED, MC_MAX_SPEED)
        position = _clip(position + velocity, MC_MIN_POSITION, MC_MAX_POSITION)
        if position == MC_MIN_POSITION and velocity < 0:
            velocity = 0.0
        self.state[i, 0] = position
        self.state[i, 1] = velocity
        self.observe_one(i, obs)
        reward[0] = -1.0
        return position >= 0.5 and velocity >= 0.0


cdef class MountainCarContinuousKernel(_MountainCarBase):
    """MountainCarContinuous-v0: state (position, velocity), action u ∈ ℝ¹ (float32).

    v ← clip(v + clip(u, ±1)·0.0015 − 0.0025 cos(3p), ±0.07); p ← clip(p + v, [−1.2, 0.6]);
    v ← 0 when p hits −1.2 moving left; the state is stored as float32, as Gymnasium
    does. Reward 100·[terminal] − 0.1 u² (unclipped u); terminal when p ≥ 0.45 and
    v ≥ 0. Reset: p ~ U(low, high), default U(−0.6, −0.4); v = 0.
    """

    def __init__(self, num_envs, seed=None, max_episode_steps=None):
        _MountainCarBase.__init__(self, "MountainCarContinuous-v0", num_envs, 0,
                                  max_episode_steps, seed)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        if not isfinite(action[0]):
            return -1
        cdef double u = <float> action[0]
        cdef double position = self.state[i, 0], velocity = self.state[i, 1]
        cdef bint terminal
        # Gymnasium keeps this state as float32 after a step (float64 after a
        # reset) and numpy then computes in float32, Python floats rounded to
        # float32 first; a float32-representable state marks that case.
        cdef bint f32 = <float> position == position and <float> velocity == velocity
        cdef double c = 0.0025 * cos(<float> (<float> 3.0 * <float> position) if f32
                                     else 3 * position)
        cdef double dv
        if -1.0 <= u <= 1.0:  # the force stays a float32
            dv = <float> (<float> (<float> u * <float> 0.0015) - <float> c)
        else:                 # clipped to a Python float
            dv = (1.0 if u > 1.0 else -1.0) * 0.0015 - c
        if f32:
            velocity = <float> (<float> velocity + <float> dv)
            if velocity > <float> MC_MAX_SPEED:
                velocity = MC_MAX_SPEED
            if velocity < <float> -MC_MAX_SPEED:
                velocity = -MC_MAX_SPEED
            position = <float> (<float> position + <float> velocity)
            if position > <float> MC_MAX_POSITION:
                position = MC_MAX_POSITION
            if position < <float> MC_MIN_POSITION:
                position = MC_MIN_POSITION
            if <float> position == <float> MC_MIN_POSITION and velocity < 0:
                velocity = 0.0
            terminal = <float> position >= <float> 0.45 and velocity >= 0.0
        else:
            velocity = _clip(velocity + dv, -MC_MAX_SPEED, MC_MAX_SPEED)
            position = _clip(position + velocity, MC_MIN_POSITION, MC_MAX_POSITION)
            if position == MC_MIN_POSITION and velocity < 0:
                velocity = 0.0
            terminal = position >= 0.45 and velocity >= 0.0
        self.state[i, 0] = <float> position
        self.state[i, 1] = <float> velocity
        self.observe_one(i, obs)
        reward[0] = (100.0 if terminal else 0.0) - u * u * 0.1
        return terminal


# ---------------------------------------------------------------- Pendulum-v1
cdef double PD_MAX_SPEED = _PENDULUM["max_speed"]
cdef double PD_MAX_TORQUE = _PENDULUM["max_torque"]
cdef double PD_DT = _PENDULUM["dt"]


cdef class PendulumKernel(_StateKernel):
    """Pendulum-v1: state (θ, θ̇), torque u = clip(action, ±2) in float32.

    cost = norm(θ)² + 0.1 θ̇² + 0.001 u², norm(θ) = ((θ + π) mod 2π) − π, reward −cost;
    θ̇ ← clip(θ̇ + (3g/2 sin θ + 3u)·0.05, ±8); θ ← θ + θ̇·0.05. Observation
    (cos θ, sin θ, θ̇); never terminal. Reset: θ ~ U(−x_init, x_init), θ̇ ~ U(−y_init,
    y_init), default (π, 1) (Gymnasium's reset options of those names).
    """
    cdef readonly double g
    cdef double x_init, y_init

    def __init__(self, num_envs, seed=None, max_episode_steps=None, g=None):
        VecEnvKernel.__init__(self, num_envs, 3, 1, 0, _time_limit("Pendulum-v1", max_episode_steps),
                              seed)
        cdef double gravity = _PENDULUM["g"] if g is None else g
        if not (isfinite(gravity) and gravity >= 0.0):
            raise ValueError(f"g: expected a finite non-negative gravity, got {g}")
        self._init_state(2)
        self.g = gravity
        reset = SPECS["Pendulum-v1"]["reset"]
        self.x_init, self.y_init = reset["x_init"], reset["y_init"]

    def set_reset_bounds(self, double x_init, double y_init):
        """θ ~ U(−x_init, x_init), θ̇ ~ U(−y_init, y_init) at reset."""
        if not (isfinite(x_init) and isfinite(y_init)):
            raise ValueError(f"x_init, y_init: expected finite values, got {x_init}, {y_init}")
        self.x_init, self.y_init = x_init, y_init

    cdef void observe_one(self, Py_ssize_t i, double* obs) noexcept nogil:
        obs[0] = cos(self.state[i, 0])
        obs[1] = sin(self.state[i, 0])
        obs[2] = self.state[i, 1]

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        self.state[i, 0] = _uniform(bitgen, -self.x_init, self.x_init)
        self.state[i, 1] = _uniform(bitgen, -self.y_init, self.y_init)
        self.observe_one(i, obs)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        if not isfinite(action[0]):
            return -1
        cdef float u = <float> _clip(<float> action[0], -PD_MAX_TORQUE, PD_MAX_TORQUE)
        cdef double th = self.state[i, 0], thdot = self.state[i, 1], dt = PD_DT
        # numpy's float remainder: fmod shifted to the divisor's sign.
        cdef double norm = fmod(th + M_PI, 2 * M_PI)
        if norm < 0:
            norm = norm + 2 * M_PI
        norm = norm - M_PI
        # u², 0.001·u² and 3u are float32 operations in Gymnasium (float32 action).
        cdef float u2 = _libm_powf(u, 2.0)
        cdef float ucost = <float> 0.001 * u2
        cdef float u3 = <float> 3.0 * u
        cdef double costs = _libm_pow(norm, 2.0) + 0.1 * _libm_pow(thdot, 2.0) + <double> ucost
        cdef double newthdot = thdot + (3 * self.g / (2 * 1.0) * sin(th) + <double> u3) * dt
        newthdot = _clip(newthdot, -PD_MAX_SPEED, PD_MAX_SPEED)
        self.state[i, 0] = th + newthdot * dt
        self.state[i, 1] = newthdot
        self.observe_one(i, obs)
        reward[0] = -costs
        return 0


# --------------------------------------------------- pgfast/SimpleRegulator-v0
cdef class SimpleRegulatorKernel(_StateKernel):
    """The simple regulator of known gradient (docs/theory/estimators.rst): one real
    state s and action a.

    s₁ ~ N(0.3, 0.1²); s′ = s + a + 0.1 ε, ε ~ N(0, 1); reward −s² of the state the
    action is taken in; never terminal; no time limit unless max_episode_steps > 0.
    Any finite action is valid (no clipping: the state stays Gaussian under a
    linear-Gaussian policy, which gives the closed-form test problem).
    """

    def __init__(self, num_envs, seed=None, max_episode_steps=None):
        VecEnvKernel.__init__(self, num_envs, 1, 1, 0,
                              _time_limit("SimpleRegulator-v0", max_episode_steps), seed)
        self._init_state(1)

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        self.state[i, 0] = 0.3 + 0.1 * random_standard_normal(bitgen)
        self.observe_one(i, obs)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        if not isfinite(action[0]):
            return -1
        cdef double s = self.state[i, 0]
        reward[0] = -(s * s)
        self.state[i, 0] = (s + action[0]) + 0.1 * random_standard_normal(bitgen)
        self.observe_one(i, obs)
        return 0
