# cython: language_level=3
"""The fused rollout loop: step B native environments, sample the policy and
record everything, with no Python object touched per step.

Each env slot b owns its bit generator and, in the multi-θ form, its own θ row,
so a slot's trajectory is a function of its stream alone: splitting slots over
threads (OpenMP) gives the same result whatever the thread count.
"""
from cython.parallel cimport prange
from libc.stdlib cimport free
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

from pgfast._common cimport bitgen_of, scratch
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
        out.append(<size_t> bitgen_of(g))
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
    # The running slots of the chunk are rows 0..m of the arrays below; one policy
    # call and one env call per time step serve them all. A slot that stops (its
    # first episode ended, or an invalid action) is swapped out with the last row:
    # rows are independent, so the order does not change any result.
    cdef Py_ssize_t t, b, j, k, m = b1 - b0, D = env.obs_dim, A = env.act_dim
    cdef size_t obs_bytes = D * sizeof(double)
    cdef bint term, trunc, stop
    cdef Py_ssize_t slot[CHUNK]
    cdef Py_ssize_t elapsed[CHUNK]
    cdef bitgen_t* rng[CHUNK]
    cdef const double* theta[CHUNK]
    cdef int code[CHUNK]
    cdef double logp[CHUNK]
    cdef double reward[CHUNK]
    # s_t of each row, then the actions and the policy's scratch
    cdef double* obs = <double*> scratch((CHUNK * (D + A) + CHUNK * policy.work_size)
                                         * sizeof(double))
    if obs == NULL:
        for b in range(b0, b1):
            status[b] = -2
        return
    cdef double* act = obs + CHUNK * D
    cdef double* work = act + CHUNK * A
    for j in range(m):
        b = b0 + j
        slot[j] = b
        elapsed[j] = 0
        rng[j] = <bitgen_t*> bitgens[b]
        theta[j] = thetas + b * theta_stride
        status[b] = 0
        steps[b] = 0
        env.reset_one(b, rng[j], obs + j * D)
    for t in range(T):
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
                trunc = not term and time_limit > 0 and elapsed[j] >= time_limit
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
    for j in range(m):
        memcpy(&last_observations[slot[j], 0], obs + j * D, obs_bytes)
    free(obs)
