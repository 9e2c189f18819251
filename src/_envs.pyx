# cython: language_level=3
"""Batched native environments: B copies of one environment in C arrays.

Each kernel reproduces a Gymnasium classic-control environment (gymnasium
1.x, ``gymnasium/envs/classic_control``): the same dynamics written with the
same floating-point operation order, rewards, termination and reset
distribution. Where Gymnasium computes in float32 (actions from a float32 Box,
Pendulum's torque terms, MountainCarContinuous's float32 state) the kernel
rounds at the same places. Time limits, autoreset and validation of Python
input are the caller's (pgfast/envs.py); the kernels trust their inputs except
for the action check that step_one must make.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.math cimport M_PI, cos, fabs, floor, fmod, isfinite, sin
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from cython cimport floating
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal, random_standard_uniform

import numpy as np


cdef bitgen_t* _bitgen_of(object rng) except NULL:
    capsule = rng.bit_generator.capsule
    return <bitgen_t*> PyCapsule_GetPointer(capsule, "BitGenerator")


cdef int _check_ready(VecEnvKernel k) except -1:
    if k.bitgens == NULL or k.num_envs < 1:
        raise RuntimeError(
            f"{type(k).__name__}: not initialised (a subclass must call VecEnvKernel.__init__)")
    return 0


cdef int _check_slot(VecEnvKernel k, Py_ssize_t i) except -1:
    _check_ready(k)
    if not 0 <= i < k.num_envs:
        raise IndexError(f"i: expected a slot in [0, {k.num_envs}), got {i}")
    return 0


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

    def __init__(self, Py_ssize_t num_envs, Py_ssize_t obs_dim, Py_ssize_t act_dim,
                 Py_ssize_t n_actions, Py_ssize_t max_episode_steps=0, seed=None):
        if num_envs < 1 or obs_dim < 1 or act_dim < 1 or n_actions < 0 \
                or max_episode_steps < 0:
            raise ValueError(
                f"VecEnvKernel: invalid sizes num_envs={num_envs}, obs_dim={obs_dim}, "
                f"act_dim={act_dim}, n_actions={n_actions}, max_episode_steps={max_episode_steps}")
        if n_actions > 0 and act_dim != 1:
            raise ValueError(f"VecEnvKernel: a discrete action has act_dim 1, got {act_dim}")
        self.num_envs = num_envs
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.n_actions = n_actions
        self.max_episode_steps = max_episode_steps
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
            ptrs[i] = _bitgen_of(rngs[i])
        free(self.bitgens)
        self.bitgens = ptrs
        self._rngs = rngs

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        pass

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        return -1

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
        _check_ready(self)
        if obs.shape[0] != B or obs.shape[1] != D:
            raise ValueError(f"obs: expected shape ({B}, {D}), got {obs.shape[0], obs.shape[1]}")
        if mask is not None and mask.shape[0] != B:
            raise ValueError(f"mask: expected shape ({B},), got ({mask.shape[0]},)")
        buf = <double*> malloc(D * sizeof(double))
        if buf == NULL:
            raise MemoryError()
        with nogil:
            for i in range(B):
                if mask is None or mask[i]:
                    self.reset_one(i, self.bitgens[i], buf)
                    for k in range(D):
                        obs[i, k] = <floating> buf[k]
        free(buf)

    def step_all(self,
                 const double[:, ::1] actions,       # IN  (B, act_dim)
                 floating[:, ::1] obs,               # OUT (B, obs_dim)
                 double[::1] rewards,                # OUT (B,)
                 unsigned char[::1] terminated,      # OUT (B,)
                 unsigned char[::1] truncated,       # OUT (B,)
                 int64_t[::1] elapsed,               # IN/OUT (B,) steps in the episode
                 unsigned char[::1] needs_reset):    # IN/OUT (B,) episode ended last step
        """One step of every slot with Gymnasium's next-step autoreset.

        A slot whose episode ended on the previous call (needs_reset) is reset
        instead: its observation is the new initial one, reward 0 and both
        flags false. Otherwise it steps; terminated is the kernel's verdict and
        truncated = (max_episode_steps > 0 and elapsed ≥ max_episode_steps),
        independently. Every action is checked first; when one is invalid
        nothing is stepped and its slot index is returned, else -1.
        """
        cdef Py_ssize_t i, k, B = self.num_envs, D = self.obs_dim, T = self.max_episode_steps
        cdef Py_ssize_t bad = -1
        cdef int code
        cdef double* buf
        _check_ready(self)
        if actions.shape[0] != B or actions.shape[1] != self.act_dim:
            raise ValueError(f"actions: expected shape ({B}, {self.act_dim}), "
                             f"got {actions.shape[0], actions.shape[1]}")
        if obs.shape[0] != B or obs.shape[1] != D:
            raise ValueError(f"obs: expected shape ({B}, {D}), got {obs.shape[0], obs.shape[1]}")
        for name, n in (("rewards", rewards.shape[0]), ("terminated", terminated.shape[0]),
                        ("truncated", truncated.shape[0]), ("elapsed", elapsed.shape[0]),
                        ("needs_reset", needs_reset.shape[0])):
            if n != B:
                raise ValueError(f"{name}: expected shape ({B},), got ({n},)")
        buf = <double*> malloc(D * sizeof(double))
        if buf == NULL:
            raise MemoryError()
        with nogil:
            for i in range(B):
                if not self.valid_action(&actions[i, 0]):
                    bad = i
                    break
            if bad < 0:
                for i in range(B):
                    if needs_reset[i]:
                        self.reset_one(i, self.bitgens[i], buf)
                        rewards[i] = 0.0
                        terminated[i] = 0
                        truncated[i] = 0
                        elapsed[i] = 0
                        needs_reset[i] = 0
                    else:
                        code = self.step_one(i, &actions[i, 0], self.bitgens[i], buf, &rewards[i])
                        if code < 0:  # valid_action and step_one disagree: a kernel bug
                            bad = i
                            break
                        elapsed[i] += 1
                        terminated[i] = code
                        truncated[i] = T > 0 and elapsed[i] >= T
                        needs_reset[i] = terminated[i] or truncated[i]
                    for k in range(D):
                        obs[i, k] = <floating> buf[k]
        free(buf)
        return bad

    def reset_slot(self, Py_ssize_t i, rng):
        """Reset slot i drawing from the caller's Generator `rng` (held under its
        lock); return the observation as a float64 array."""
        cdef double[::1] obs = np.empty(self.obs_dim)
        cdef bitgen_t* bitgen
        _check_slot(self, i)
        bitgen = _bitgen_of(rng)
        with rng.bit_generator.lock, nogil:
            self.reset_one(i, bitgen, &obs[0])
        return np.asarray(obs)

    def step_slot(self, Py_ssize_t i, const double[::1] action, rng):
        """Step slot i with `action` (act_dim doubles) drawing from `rng`; return
        (obs float64 array, reward, code) with code as step_one's."""
        cdef double[::1] obs = np.empty(self.obs_dim)
        cdef double reward = 0.0
        cdef int code
        cdef bitgen_t* bitgen
        _check_slot(self, i)
        if action.shape[0] != self.act_dim:
            raise ValueError(f"action: expected shape ({self.act_dim},), got ({action.shape[0]},)")
        bitgen = _bitgen_of(rng)
        with rng.bit_generator.lock, nogil:
            code = self.step_one(i, &action[0], bitgen, &obs[0], &reward)
        return np.asarray(obs), reward, code



cdef class _StateKernel(VecEnvKernel):
    """A kernel whose slot states are rows of one (num_envs, state_dim) array,
    readable and writable from Python for tests and checkpoints."""
    cdef double[:, ::1] state
    cdef readonly Py_ssize_t state_dim
    cdef double reset_low, reset_high

    cdef void observe_one(self, Py_ssize_t i, double* obs) noexcept nogil:
        pass

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
        np.asarray(self.state)[...] = arr

    def observe(self):
        """The observations of the current states, float64 (num_envs, obs_dim)."""
        cdef double[:, ::1] out = np.empty((self.num_envs, self.obs_dim))
        cdef Py_ssize_t i
        for i in range(self.num_envs):
            self.observe_one(i, &out[i, 0])
        return np.asarray(out)

    def set_reset_bounds(self, double low, double high):
        """The reset distribution's parameters (see each kernel); Gymnasium's
        reset options."""
        if not (isfinite(low) and isfinite(high) and low <= high):
            raise ValueError(f"low, high: expected finite low <= high, got {low}, {high}")
        self.reset_low = low
        self.reset_high = high


cdef inline double _uniform(bitgen_t* bitgen, double low, double high) noexcept nogil:
    # numpy's Generator.uniform: low + (high - low) * U[0, 1), the same draw.
    return low + (high - low) * random_standard_uniform(bitgen)


cdef inline double _clip(double x, double lo, double hi) noexcept nogil:
    return lo if x < lo else (hi if x > hi else x)


# ---------------------------------------------------------------- CartPole-v1
# Constants written as gymnasium's cartpole.py computes them, so they round alike.
cdef double CP_GRAVITY = 9.8
cdef double CP_MASSPOLE = 0.1
cdef double CP_TOTAL_MASS = 0.1 + 1.0
cdef double CP_LENGTH = 0.5
cdef double CP_POLEMASS_LENGTH = 0.1 * 0.5
cdef double CP_FORCE_MAG = 10.0
cdef double CP_TAU = 0.02
cdef double CP_THETA_THRESHOLD = 12 * 2 * M_PI / 360
cdef double CP_X_THRESHOLD = 2.4


cdef class CartPoleKernel(_StateKernel):
    """CartPole-v1: state (x, ẋ, θ, θ̇), explicit Euler with τ = 0.02.

    force = ±10; tmp = (force + m_p l θ̇² sin θ) / M;
    θ̈ = (g sin θ − cos θ · tmp) / (l (4/3 − m_p cos²θ / M)); ẍ = tmp − m_p l θ̈ cos θ / M;
    x ← x + τ ẋ, ẋ ← ẋ + τ ẍ, θ ← θ + τ θ̇, θ̇ ← θ̇ + τ θ̈. Reward 1 every step;
    terminal when |x| > 2.4 or |θ| > 12°. Reset: each component ~ U(low, high),
    default U(−0.05, 0.05).
    """

    def __init__(self, Py_ssize_t num_envs, seed=None, Py_ssize_t max_episode_steps=500):
        VecEnvKernel.__init__(self, num_envs, 4, 1, 2, max_episode_steps, seed)
        self._init_state(4)
        self.reset_low, self.reset_high = -0.05, 0.05

    cdef void observe_one(self, Py_ssize_t i, double* obs) noexcept nogil:
        cdef Py_ssize_t k
        for k in range(4):
            obs[k] = self.state[i, k]

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        cdef Py_ssize_t k
        for k in range(4):
            self.state[i, k] = _uniform(bitgen, self.reset_low, self.reset_high)
        self.observe_one(i, obs)

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        cdef double a = action[0]
        if not (a == 0.0 or a == 1.0):
            return -1
        cdef double* s = &self.state[i, 0]
        cdef double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3]
        cdef double force = CP_FORCE_MAG if a == 1.0 else -CP_FORCE_MAG
        cdef double costheta = cos(theta), sintheta = sin(theta)
        cdef double temp = (force + CP_POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) \
            / CP_TOTAL_MASS
        cdef double thetaacc = (CP_GRAVITY * sintheta - costheta * temp) / (
            CP_LENGTH * (4.0 / 3.0 - CP_MASSPOLE * (costheta * costheta) / CP_TOTAL_MASS))
        cdef double xacc = temp - CP_POLEMASS_LENGTH * thetaacc * costheta / CP_TOTAL_MASS
        x = x + CP_TAU * x_dot
        x_dot = x_dot + CP_TAU * xacc
        theta = theta + CP_TAU * theta_dot
        theta_dot = theta_dot + CP_TAU * thetaacc
        s[0] = x
        s[1] = x_dot
        s[2] = theta
        s[3] = theta_dot
        self.observe_one(i, obs)
        reward[0] = 1.0
        return (x < -CP_X_THRESHOLD or x > CP_X_THRESHOLD
                or theta < -CP_THETA_THRESHOLD or theta > CP_THETA_THRESHOLD)
