# cython: language_level=3
"""The fused rollout loop: step B native environments, sample the policy and
record everything, with no Python object touched per step.

Each env slot b owns its bit generator and, in the multi-θ form, its own θ row,
so a slot's trajectory is a function of its stream alone: splitting slots over
threads (OpenMP) gives the same result whatever the thread count.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

from pgfast._envs cimport VecEnvKernel
from pgfast._policies cimport PolicyKernel


# Slots are stepped in chunks, time outer and slot inner, so each step's records
# for neighbouring slots land in the same cache lines of the time-major arrays.
cdef enum:
    CHUNK = 16


def bitgen_pointers(generators):
    """The bitgen_t* of each numpy Generator, as integers, for rollout()."""
    out = []
    for g in generators:
        out.append(<size_t> PyCapsule_GetPointer(g.bit_generator.capsule, "BitGenerator"))
    return out


def rollout(
    VecEnvKernel env,
    PolicyKernel policy,
    const double[:, ::1] thetas,              # IN  (1, P) shared or (B, P) one per slot
    const size_t[::1] bitgens,                # IN  (B,) bitgen_t* per slot
    Py_ssize_t time_limit,                    # truncate episodes after this many steps (0: none)
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
    int num_threads=1,
):
    """Reset every slot, then run T steps of policy and env with same-step
    autoreset (the final observation of an episode is kept, then the slot resets),
    or with `first_episode` stop each slot at its first episode's end, leaving the
    later rows untouched."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], c
    cdef Py_ssize_t theta_stride = 0 if thetas.shape[0] == 1 else thetas.shape[1]
    cdef Py_ssize_t n_chunks = (B + CHUNK - 1) // CHUNK
    for c in prange(n_chunks, nogil=True, num_threads=num_threads, schedule="static"):
        _run_chunk(env, policy, &thetas[0, 0], theta_stride, &bitgens[0],
                   c * CHUNK, min(B, (c + 1) * CHUNK), T, time_limit,
                   observations, actions, rewards, terminated, truncated,
                   log_probs, final_observations, last_observations, status, steps,
                   deterministic, first_episode)


cdef void _run_chunk(
    VecEnvKernel env, PolicyKernel policy, const double* thetas, Py_ssize_t theta_stride,
    const size_t* bitgens, Py_ssize_t b0, Py_ssize_t b1, Py_ssize_t T,
    Py_ssize_t time_limit,
    double[:, :, ::1] observations, double[:, :, ::1] actions, double[:, ::1] rewards,
    unsigned char[:, ::1] terminated, unsigned char[:, ::1] truncated,
    double[:, ::1] log_probs, double[:, :, ::1] final_observations,
    double[:, ::1] last_observations, int[::1] status, long long[::1] steps,
    bint deterministic, bint first_episode,
) noexcept nogil:
    cdef Py_ssize_t t, b, i, n = b1 - b0, running = n, obs_dim = env.obs_dim
    cdef size_t obs_bytes = obs_dim * sizeof(double)
    cdef int step
    cdef bint done
    cdef bitgen_t* rng
    cdef const double* theta
    # Per slot: the current observation s_t and the step count of its episode;
    # shared: the policy's scratch and the env's next observation.
    cdef double* obs = <double*> malloc((n * obs_dim + policy.work_size + obs_dim) * sizeof(double))
    cdef Py_ssize_t* elapsed = <Py_ssize_t*> calloc(n, sizeof(Py_ssize_t))
    if obs == NULL or elapsed == NULL:
        free(obs)
        free(elapsed)
        for b in range(b0, b1):
            status[b] = -2
        return
    cdef double* work = obs + n * obs_dim
    cdef double* nxt = work + policy.work_size
    for i in range(n):
        status[b0 + i] = 0
        steps[b0 + i] = 0
        env.reset_one(b0 + i, <bitgen_t*> bitgens[b0 + i], obs + i * obs_dim)
    for t in range(T):
        if running == 0:
            break
        for i in range(n):
            b = b0 + i
            if status[b] != 0:   # an invalid action, or (first_episode) finished
                continue
            rng = <bitgen_t*> bitgens[b]
            theta = thetas + b * theta_stride
            memcpy(&observations[t, b, 0], obs + i * obs_dim, obs_bytes)
            if deterministic:
                policy.mode(theta, obs + i * obs_dim, 1, work, &actions[t, b, 0])
            else:
                policy.sample(theta, obs + i * obs_dim, 1, rng, work, &actions[t, b, 0],
                              &log_probs[t, b])
            step = env.step_one(b, &actions[t, b, 0], rng, nxt, &rewards[t, b])
            if step < 0:
                status[b] = -1
                running -= 1
                continue
            steps[b] += 1
            elapsed[i] += 1
            terminated[t, b] = step == 1
            truncated[t, b] = step != 1 and time_limit > 0 and elapsed[i] >= time_limit
            done = terminated[t, b] or truncated[t, b]
            if done:
                memcpy(&final_observations[t, b, 0], nxt, obs_bytes)
                if first_episode:
                    status[b] = 1
                    running -= 1
                    memcpy(obs + i * obs_dim, nxt, obs_bytes)
                    continue
                env.reset_one(b, rng, obs + i * obs_dim)
                elapsed[i] = 0
            else:
                memcpy(obs + i * obs_dim, nxt, obs_bytes)
    for i in range(n):
        memcpy(&last_observations[b0 + i, 0], obs + i * obs_dim, obs_bytes)
    free(obs)
    free(elapsed)
