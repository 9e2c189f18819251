# cython: language_level=3
"""Episode drivers of the native path, and the one owner of episode boundaries:
the only code that counts steps, applies time limits and resets env slots.
Python wrappers: ``pgfast/rollout.py`` (``rollout``, the fused loop) and
``pgfast/envs.py`` (``NativeVectorEnv.step`` calls ``NextStepAutoreset.step``).

The contract (``_envs.pxd`` states the env kernel's side):
- An env kernel only simulates: ``step_one`` / ``step_rows`` say whether the new
  state is terminal; they know no time limit and never reset a slot themselves.
- Time limit: a slot whose episode has run ``limit`` steps (``limit > 0``) is cut
  there (``_time_up``); 0 means no limit.
- ``rollout``: same-step autoreset. A step that ends an episode records its
  final observation, then the slot resets in that same step (or stops, with
  ``first_episode``). ``truncated`` marks a cut that is not also terminal, so
  the two flags never both hold.
- ``NextStepAutoreset`` (Gymnasium's ``VectorEnv`` API): next-step autoreset. The step
  after an episode ended resets that slot instead (its action ignored, reward 0,
  both flags false). ``truncated`` is "time limit reached", independent of
  ``terminated``, as Gymnasium's ``TimeLimit`` reports it: both may hold.

Each env slot b owns its bit generator and, in the multi-θ form, its own θ row,
so a slot's trajectory is a function of its stream alone: splitting slots over
threads (OpenMP) gives the same result whatever the thread count.
"""
import time

import numpy as np

cimport numpy as cnp

from cpython.exc cimport PyErr_CheckSignals
from cython.parallel cimport prange
from libc.math cimport isfinite
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

from pgfast._common cimport (alloc_doubles, as_size, as_threads, bitgen_of, check_len,
                             check_shape, scratch)
from pgfast._envs cimport VecEnvKernel, check_ready, claim, release
from pgfast._policies cimport PolicyKernel

cnp.import_array()


# Slots are stepped in chunks, time outer and slot inner, so each step's records
# for neighbouring slots land in the same cache lines of the time-major arrays.
cdef enum:
    CHUNK = 16


cdef inline bint _time_up(Py_ssize_t elapsed, Py_ssize_t limit) noexcept nogil:
    """The time limit: `elapsed` steps into an episode, with `limit` > 0, cut it."""
    return limit > 0 and elapsed >= limit


def bitgen_pointers(generators):
    """The bitgen_t* of each numpy Generator, as integers, for rollout()."""
    out = []
    for g in generators:
        out.append(<size_t> bitgen_of(g))
    return out


class InvalidAction(Exception):
    """args[0]: the first slot whose action the kernel refuses; nothing was stepped."""


class RewardOverflow(Exception):
    """args[0]: the first slot whose reward is not finite (the step was taken)."""


cdef class NextStepAutoreset:
    """Gymnasium's ``VectorEnv.step`` over every slot of `env`, with next-step autoreset:
    what ``NativeVectorEnv.step`` runs, its checks and allocations included, in one call.

    A slot whose episode ended on the previous step (needs_reset) is reset instead:
    its observation is the new initial one, reward 0 and both flags false, its action
    ignored. Otherwise it steps; terminated is the kernel's verdict and, independently,
    truncated = (elapsed ≥ max_episode_steps > 0).

    Actions that are an ndarray of `action_shape` and of dtype float64, float32, int64
    or int32 are read directly; anything else goes through `convert` first, which
    returns (B, act_dim) float64 rows or raises the caller's TypeError/ValueError.
    """
    cdef VecEnvKernel env
    cdef readonly cnp.ndarray elapsed      # (B,) int64: steps into each slot's episode
    cdef readonly cnp.ndarray needs_reset  # (B,) uint8: the slot's episode ended last step
    cdef readonly cnp.ndarray last_obs     # (B, obs_dim): the observations last returned
    cdef cnp.ndarray rows                  # (B, act_dim) float64: this step's actions
    cdef object convert
    cdef int obs_type                      # NPY_FLOAT32 or NPY_FLOAT64
    cdef int action_ndim
    cdef cnp.npy_intp action_dims[2]
    cdef double* buf

    def __cinit__(self, VecEnvKernel env, obs_dtype, action_shape, convert):
        check_ready(env)
        self.env = env
        self.obs_type = np.dtype(obs_dtype).num
        if self.obs_type not in (cnp.NPY_FLOAT32, cnp.NPY_FLOAT64):
            raise ValueError(f"obs_dtype: expected float32 or float64, got {obs_dtype}")
        shape = tuple(action_shape)
        if len(shape) not in (1, 2) or shape[0] != env.num_envs \
                or int(np.prod(shape[1:])) != env.act_dim:
            raise ValueError(f"action_shape: expected ({env.num_envs},) or "
                             f"({env.num_envs}, {env.act_dim}), got {shape}")
        self.action_ndim = len(shape)
        for k in range(len(shape)):
            self.action_dims[k] = shape[k]
        self.convert = convert
        self.elapsed = np.zeros(env.num_envs, dtype=np.int64)
        self.needs_reset = np.zeros(env.num_envs, dtype=np.uint8)
        self.last_obs = np.zeros((env.num_envs, env.obs_dim), dtype=obs_dtype)
        self.rows = np.zeros((env.num_envs, env.act_dim))
        self.buf = alloc_doubles(env.obs_dim)

    def __dealloc__(self):
        free(self.buf)

    cdef bint _read(self, actions) except -1:
        """Copy `actions` into rows when they are an ndarray of the action shape and a
        common dtype (native byte order, C order); False to take the convert path."""
        cdef cnp.ndarray a
        cdef Py_ssize_t j, n = self.env.num_envs * self.env.act_dim
        cdef double* dst = <double*> cnp.PyArray_DATA(self.rows)
        cdef void* src
        cdef int t
        if type(actions) is not np.ndarray:
            return False
        a = <cnp.ndarray> actions
        if cnp.PyArray_NDIM(a) != self.action_ndim or not cnp.PyArray_IS_C_CONTIGUOUS(a) \
                or not cnp.PyArray_ISNOTSWAPPED(a):
            return False
        for j in range(self.action_ndim):
            if cnp.PyArray_DIM(a, j) != self.action_dims[j]:
                return False
        src = cnp.PyArray_DATA(a)
        t = cnp.PyArray_TYPE(a)
        if t == cnp.NPY_FLOAT64:
            memcpy(dst, src, n * sizeof(double))
        elif t == cnp.NPY_FLOAT32:
            for j in range(n):
                dst[j] = (<float*> src)[j]
        elif t == cnp.NPY_INT64:
            for j in range(n):
                dst[j] = <double> (<int64_t*> src)[j]
        elif t == cnp.NPY_INT32:
            for j in range(n):
                dst[j] = (<int32_t*> src)[j]
        else:
            return False
        return True

    def step(self, actions):
        """(observations, rewards, terminated, truncated) after one step of every slot.

        Raises InvalidAction (nothing stepped) or RewardOverflow (stepped), each with
        the first such slot, and whatever `convert` raises.
        """
        cdef VecEnvKernel env = self.env
        cdef Py_ssize_t i, k, B = env.num_envs, D = env.obs_dim, A = env.act_dim
        cdef Py_ssize_t T = env.max_episode_steps, bad = -1, overflow = -1
        cdef int code
        cdef cnp.npy_intp dims[2]
        cdef cnp.ndarray rows
        if not self._read(actions):
            rows = self.convert(actions)
            if cnp.PyArray_TYPE(rows) != cnp.NPY_FLOAT64 or not cnp.PyArray_IS_C_CONTIGUOUS(rows) \
                    or rows.size != B * A:
                raise RuntimeError("convert: expected (B, act_dim) float64 rows in C order")
            memcpy(cnp.PyArray_DATA(self.rows), cnp.PyArray_DATA(rows), B * A * sizeof(double))
        dims[0], dims[1] = B, D
        obs = cnp.PyArray_EMPTY(2, dims, self.obs_type, 0)
        rewards = cnp.PyArray_EMPTY(1, dims, cnp.NPY_FLOAT64, 0)
        terminated = cnp.PyArray_EMPTY(1, dims, cnp.NPY_BOOL, 0)
        truncated = cnp.PyArray_EMPTY(1, dims, cnp.NPY_BOOL, 0)
        cdef const double* act = <double*> cnp.PyArray_DATA(self.rows)
        cdef double* r = <double*> cnp.PyArray_DATA(rewards)
        cdef unsigned char* te = <unsigned char*> cnp.PyArray_DATA(terminated)
        cdef unsigned char* tr = <unsigned char*> cnp.PyArray_DATA(truncated)
        cdef int64_t* elapsed = <int64_t*> cnp.PyArray_DATA(self.elapsed)
        cdef unsigned char* needs_reset = <unsigned char*> cnp.PyArray_DATA(self.needs_reset)
        cdef void* o = cnp.PyArray_DATA(obs)
        cdef bint single = self.obs_type == cnp.NPY_FLOAT32
        claim(env)
        try:
            with nogil:
                for i in range(B):
                    if not env.valid_action(act + i * A):
                        bad = i
                        break
                if bad < 0:
                    for i in range(B):
                        if needs_reset[i]:
                            env.reset_one(i, env.bitgens[i], self.buf)
                            r[i] = 0.0
                            te[i] = 0
                            tr[i] = 0
                            elapsed[i] = 0
                            needs_reset[i] = 0
                        else:
                            code = env.step_one(i, act + i * A, env.bitgens[i], self.buf, r + i)
                            if code < 0:  # valid_action and step_one disagree: a kernel bug
                                bad = i
                                break
                            elapsed[i] += 1
                            te[i] = code
                            tr[i] = _time_up(elapsed[i], T)
                            needs_reset[i] = te[i] or tr[i]
                            if overflow < 0 and not isfinite(r[i]):
                                overflow = i
                        if single:
                            for k in range(D):
                                (<float*> o)[i * D + k] = <float> self.buf[k]
                        else:
                            memcpy(<double*> o + i * D, self.buf, D * sizeof(double))
        finally:
            release(env)
        if bad >= 0:
            raise InvalidAction(bad)
        memcpy(cnp.PyArray_DATA(self.last_obs), o, cnp.PyArray_NBYTES(obs))
        if overflow >= 0:
            raise RewardOverflow(overflow)
        return obs, rewards, terminated, truncated


def rollout(
    VecEnvKernel env,
    PolicyKernel policy,
    const double[:, ::1] thetas,              # IN  (1, P) shared or (B, P) one per slot
    const size_t[::1] bitgens,                # IN  (B,) bitgen_t* per slot
    time_limit,                               # truncate episodes after this many steps (0: none)
    double[:, :, ::1] observations,           # OUT (T, B, obs_dim) s_t
    double[:, :, ::1] actions,                # OUT (T, B, act_dim) a_t
    double[:, ::1] rewards,                   # OUT (T, B)
    unsigned char[:, ::1] terminated,         # OUT (T, B)
    unsigned char[:, ::1] truncated,          # OUT (T, B)
    double[:, ::1] log_probs,                 # OUT (T, B)
    double[:, :, ::1] final_observations,     # OUT (T, B, obs_dim), written where done
    double[:, ::1] last_observations,         # OUT (B, obs_dim) s_T, after the last step
    int[::1] status,                          # OUT (B,) 0 ok, 1 done (first_episode),
                                              #     -1 invalid action, -2 no memory
    long long[::1] steps,                     # OUT (B,) steps recorded per slot
    bint deterministic=False,                 # act by the policy's mode; log_probs untouched
    bint first_episode=False,                 # a slot stops when its first episode ends
    num_threads=1,
):
    """Reset every slot, then run T steps of policy and env with same-step
    autoreset (the final observation of an episode is kept, then the slot resets),
    or with `first_episode` stop each slot at its first episode's end, leaving the
    later rows untouched.

    The steps run in slices of time, all slots and threads at once, between
    which the GIL is taken to let Python handle signals: Ctrl-C interrupts a long
    rollout within a slice (at most about _SLICE_SECONDS) with KeyboardInterrupt.
    Slicing changes no result: each slot's steps and draws are the same."""
    cdef Py_ssize_t T = rewards.shape[0], B = env.num_envs, c, t0 = 0, t1, span = 1
    cdef Py_ssize_t D = env.obs_dim, A = env.act_dim, P = policy.n_params
    cdef Py_ssize_t limit = as_size(time_limit, "time_limit")
    cdef int threads = as_threads(num_threads)
    cdef Py_ssize_t theta_stride = 0 if thetas.shape[0] == 1 else P
    # Chunks of up to CHUNK slots. On threads, narrow enough for four chunks a thread,
    # handed out as threads come free: slots whose episodes end at different times
    # (a physics engine's, a few to a thread) then keep every thread busy.
    cdef Py_ssize_t chunk_width = min(CHUNK, B) if threads == 1 else \
        max(1, min(CHUNK, B // (4 * threads)))
    cdef Py_ssize_t n_chunks = (B + chunk_width - 1) // chunk_width
    cdef _Chunk* chunks = NULL
    cdef bint running = True
    # The arrays must fit the env and the policy: each is checked once, here.
    check_ready(env)
    if policy.obs_dim != D or policy.act_dim != A:
        raise ValueError(f"policy: acts on {policy.obs_dim} observation and {policy.act_dim} "
                         f"action values, the env has {D} and {A}")
    check_shape("thetas", thetas.shape[0], thetas.shape[1],
                1 if thetas.shape[0] == 1 else B, P)
    check_len("bitgens", bitgens.shape[0], B)
    for name, a3, width in (("observations", observations, D), ("actions", actions, A),
                            ("final_observations", final_observations, D)):
        check_shape(name, a3.shape[0], a3.shape[1], T, B)
        check_len(name + ".shape[2]", a3.shape[2], width)
    check_shape("rewards", rewards.shape[0], rewards.shape[1], T, B)
    check_shape("log_probs", log_probs.shape[0], log_probs.shape[1], T, B)
    check_shape("terminated", terminated.shape[0], terminated.shape[1], T, B)
    check_shape("truncated", truncated.shape[0], truncated.shape[1], T, B)
    check_shape("last_observations", last_observations.shape[0], last_observations.shape[1],
                B, D)
    check_len("status", status.shape[0], B)
    check_len("steps", steps.shape[0], B)
    claim(env)
    try:
        chunks = <_Chunk*> calloc(n_chunks if n_chunks > 0 else 1, sizeof(_Chunk))
        if chunks == NULL:
            raise MemoryError("rollout: could not allocate the per-chunk state")
        with nogil:
            for c in prange(n_chunks, num_threads=threads, schedule="static"):
                _start_chunk(&chunks[c], env, policy, &thetas[0, 0], theta_stride, &bitgens[0],
                             c * chunk_width, min(B, (c + 1) * chunk_width), status, steps)
        while t0 < T and running:
            t1 = min(T, t0 + span)
            clock = time.perf_counter()
            with nogil:
                for c in prange(n_chunks, num_threads=threads, schedule="dynamic"):
                    _run_chunk(&chunks[c], env, policy, t0, t1, T, limit,
                               observations, actions, rewards, terminated, truncated,
                               log_probs, final_observations, last_observations, status,
                               steps, deterministic, first_episode)
            PyErr_CheckSignals()   # Ctrl-C: KeyboardInterrupt from here
            # Slices of about _SLICE_SECONDS: the span doubles while they are
            # shorter, halves when one took twice as long.
            clock = time.perf_counter() - clock
            if clock < _SLICE_SECONDS / 2:
                span *= 2
            elif clock > 2 * _SLICE_SECONDS and span > 1:
                span //= 2
            t0 = t1
            running = False
            for c in range(n_chunks):
                running = running or chunks[c].m > 0
        for c in range(n_chunks):
            _finish_chunk(&chunks[c], env, last_observations)
    finally:
        if chunks != NULL:
            for c in range(n_chunks):
                free(chunks[c].obs)
        free(chunks)
        release(env)


# How long the rollout runs without the GIL before it lets Python handle signals.
cdef double _SLICE_SECONDS = 0.02


# One chunk's running state between time slices. Its running slots are rows
# 0..m of the arrays; a slot that stops (its first episode ended, or an invalid
# action) is swapped out with the last row: rows are independent, so the order
# does not change any result.
cdef struct _Chunk:
    Py_ssize_t m
    Py_ssize_t slot[CHUNK]
    Py_ssize_t elapsed[CHUNK]
    bitgen_t* rng[CHUNK]
    const double* theta[CHUNK]
    double* obs   # s_t of each row, then the actions and the policy's scratch


cdef void _start_chunk(
    _Chunk* ch, VecEnvKernel env, PolicyKernel policy, const double* thetas,
    Py_ssize_t theta_stride, const size_t* bitgens, Py_ssize_t b0, Py_ssize_t b1,
    int[::1] status, long long[::1] steps,
) noexcept nogil:
    """Reset the chunk's slots b0..b1 (status -2 for all when out of memory)."""
    cdef Py_ssize_t b, j, D = env.obs_dim
    ch.m = 0
    ch.obs = <double*> scratch((CHUNK * (D + env.act_dim) + CHUNK * policy.work_size)
                               * sizeof(double))
    if ch.obs == NULL:
        for b in range(b0, b1):
            status[b] = -2
            steps[b] = 0
        return
    ch.m = b1 - b0
    for j in range(ch.m):
        b = b0 + j
        ch.slot[j] = b
        ch.elapsed[j] = 0
        ch.rng[j] = <bitgen_t*> bitgens[b]
        ch.theta[j] = thetas + b * theta_stride
        status[b] = 0
        steps[b] = 0
        env.reset_one(b, ch.rng[j], ch.obs + j * D)


cdef void _finish_chunk(_Chunk* ch, VecEnvKernel env,
                        double[:, ::1] last_observations) noexcept nogil:
    """s_T of the slots still running after the last step."""
    cdef Py_ssize_t j, D = env.obs_dim
    for j in range(ch.m):
        memcpy(&last_observations[ch.slot[j], 0], ch.obs + j * D, D * sizeof(double))


cdef void _run_chunk(
    _Chunk* ch, VecEnvKernel env, PolicyKernel policy, Py_ssize_t t0, Py_ssize_t t1,
    Py_ssize_t T, Py_ssize_t time_limit,
    double[:, :, ::1] observations, double[:, :, ::1] actions, double[:, ::1] rewards,
    unsigned char[:, ::1] terminated, unsigned char[:, ::1] truncated,
    double[:, ::1] log_probs, double[:, :, ::1] final_observations,
    double[:, ::1] last_observations, int[::1] status, long long[::1] steps,
    bint deterministic, bint first_episode,
) noexcept nogil:
    # Steps t0..t1 of the chunk: one policy call and one env call per time step
    # serve all its running slots. The state is copied into locals for the slice
    # (the loop then reads the stack, not the heap) and back at its end.
    cdef Py_ssize_t t, b, j, k, m = ch.m, D = env.obs_dim, A = env.act_dim
    cdef size_t obs_bytes = D * sizeof(double)
    cdef bint term, trunc, stop
    cdef Py_ssize_t slot[CHUNK]
    cdef Py_ssize_t elapsed[CHUNK]
    cdef bitgen_t* rng[CHUNK]
    cdef const double* theta[CHUNK]
    cdef int code[CHUNK]
    cdef double logp[CHUNK]
    cdef double reward[CHUNK]
    cdef double* obs = ch.obs
    if m == 0:
        return
    cdef double* act = obs + CHUNK * D
    cdef double* work = act + CHUNK * A
    memcpy(slot, ch.slot, sizeof(slot))
    memcpy(elapsed, ch.elapsed, sizeof(elapsed))
    memcpy(rng, ch.rng, sizeof(rng))
    memcpy(theta, ch.theta, sizeof(theta))
    for t in range(t0, t1):
        if m == 0:
            break
        if deterministic:
            policy.mode_rows(theta, obs, m, work, act)
        else:
            policy.sample_rows(theta, obs, m, rng, work, act, logp)
        for j in range(m):
            b = slot[j]
            for k in range(D):
                observations[t, b, k] = obs[j * D + k]
            for k in range(A):
                actions[t, b, k] = act[j * A + k]
            if not deterministic:
                log_probs[t, b] = logp[j]
        env.step_rows(slot, m, act, rng, obs, reward, code)
        j = 0
        while j < m:
            b = slot[j]
            stop = code[j] < 0
            if stop:
                status[b] = -1
            else:
                rewards[t, b] = reward[j]
                steps[b] += 1
                elapsed[j] += 1
                term = code[j] == 1
                trunc = not term and _time_up(elapsed[j], time_limit)
                terminated[t, b] = term
                truncated[t, b] = trunc
                if term or trunc:
                    memcpy(&final_observations[t, b, 0], obs + j * D, obs_bytes)
                    if first_episode:
                        status[b] = 1
                        stop = True
                    else:
                        env.reset_one(b, rng[j], obs + j * D)
                        elapsed[j] = 0
            if not stop:
                j += 1
                continue
            # its final observation is its last (after an invalid action the row
            # is undefined, and the rollout is refused anyway)
            memcpy(&last_observations[b, 0], obs + j * D, obs_bytes)
            m -= 1
            slot[j] = slot[m]
            elapsed[j] = elapsed[m]
            rng[j] = rng[m]
            theta[j] = theta[m]
            code[j] = code[m]
            reward[j] = reward[m]
            memcpy(obs + j * D, obs + m * D, obs_bytes)
    ch.m = m
    memcpy(ch.slot, slot, sizeof(slot))
    memcpy(ch.elapsed, elapsed, sizeof(elapsed))
    memcpy(ch.rng, rng, sizeof(rng))
    memcpy(ch.theta, theta, sizeof(theta))
