# cython: language_level=3
"""Episode drivers of the native path, and the one owner of episode boundaries:
the only code that counts steps, applies time limits and resets env slots.
Python wrappers: ``pgfast/rollout.py`` (``rollout``, the fused loop) and
``pgfast/envs.py`` (``NativeVectorEnv.step`` calls ``step_all``).

The contract (``_envs.pxd`` states the env kernel's side):
- An env kernel only simulates: ``step_one`` / ``step_rows`` say whether the new
  state is terminal; they know no time limit and never reset a slot themselves.
- Time limit: a slot whose episode has run ``limit`` steps (``limit > 0``) is cut
  there (``_time_up``); 0 means no limit.
- ``rollout``: same-step autoreset. A step that ends an episode records its
  final observation, then the slot resets in that same step (or stops, with
  ``first_episode``). ``truncated`` marks a cut that is not also terminal, so
  the two flags never both hold.
- ``step_all`` (Gymnasium's ``VectorEnv`` API): next-step autoreset. The step
  after an episode ended resets that slot instead (its action ignored, reward 0,
  both flags false). ``truncated`` is "time limit reached", independent of
  ``terminated``, as Gymnasium's ``TimeLimit`` reports it: both may hold.

Each env slot b owns its bit generator and, in the multi-θ form, its own θ row,
so a slot's trajectory is a function of its stream alone: splitting slots over
threads (OpenMP) gives the same result whatever the thread count.
"""
import time

from cpython.exc cimport PyErr_CheckSignals
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

from pgfast._common cimport (alloc_doubles, as_size, as_threads, bitgen_of, check_len,
                             check_shape, scratch)
from pgfast._envs cimport VecEnvKernel, check_ready, claim, release
from pgfast._policies cimport PolicyKernel


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


def step_all(
    VecEnvKernel env,                   # the B = env.num_envs slots, stepped in place
    const double[:, ::1] actions,       # IN  (B, act_dim)
    floating[:, ::1] obs,               # OUT (B, obs_dim)
    double[::1] rewards,                # OUT (B,)
    unsigned char[::1] terminated,      # OUT (B,)
    unsigned char[::1] truncated,       # OUT (B,)
    int64_t[::1] elapsed,               # IN/OUT (B,) steps in the episode
    unsigned char[::1] needs_reset,     # IN/OUT (B,) episode ended last step
):
    """One step of every slot of `env` with Gymnasium's next-step autoreset.

    A slot whose episode ended on the previous call (needs_reset) is reset
    instead: its observation is the new initial one, reward 0 and both
    flags false. Otherwise it steps; terminated is the kernel's verdict and,
    independently, truncated = (elapsed ≥ max_episode_steps > 0). Every action
    is checked first; when one is invalid nothing is stepped and its slot index
    is returned, else -1.
    """
    cdef Py_ssize_t i, k, B = env.num_envs, D = env.obs_dim, T = env.max_episode_steps
    cdef Py_ssize_t bad = -1
    cdef int code
    cdef double* buf
    check_ready(env)
    if actions.shape[0] != B or actions.shape[1] != env.act_dim:
        raise ValueError(f"actions: expected shape ({B}, {env.act_dim}), "
                         f"got {actions.shape[0], actions.shape[1]}")
    if obs.shape[0] != B or obs.shape[1] != D:
        raise ValueError(f"obs: expected shape ({B}, {D}), got {obs.shape[0], obs.shape[1]}")
    for name, n in (("rewards", rewards.shape[0]), ("terminated", terminated.shape[0]),
                    ("truncated", truncated.shape[0]), ("elapsed", elapsed.shape[0]),
                    ("needs_reset", needs_reset.shape[0])):
        if n != B:
            raise ValueError(f"{name}: expected shape ({B},), got ({n},)")
    buf = alloc_doubles(D)
    try:
        claim(env)
        with nogil:
            for i in range(B):
                if not env.valid_action(&actions[i, 0]):
                    bad = i
                    break
            if bad < 0:
                for i in range(B):
                    if needs_reset[i]:
                        env.reset_one(i, env.bitgens[i], buf)
                        rewards[i] = 0.0
                        terminated[i] = 0
                        truncated[i] = 0
                        elapsed[i] = 0
                        needs_reset[i] = 0
                    else:
                        code = env.step_one(i, &actions[i, 0], env.bitgens[i], buf, &rewards[i])
                        if code < 0:  # valid_action and step_one disagree: a kernel bug
                            bad = i
                            break
                        elapsed[i] += 1
                        terminated[i] = code
                        truncated[i] = _time_up(elapsed[i], T)
                        needs_reset[i] = terminated[i] or truncated[i]
                    for k in range(D):
                        obs[i, k] = <floating> buf[k]
        release(env)
    finally:
        free(buf)
    return bad


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
    # Chunks of up to CHUNK slots, narrower when that leaves a thread without one (a
    # few costly slots, such as a physics engine's, still use every thread).
    cdef Py_ssize_t chunk_width = max(1, min(CHUNK, (B + threads - 1) // threads))
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
                for c in prange(n_chunks, num_threads=threads, schedule="static"):
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
