# cython: language_level=3
"""The fused rollout loop: step B native environments, sample the policy and
record everything, with no Python object touched per step.

Each env slot b owns its bit generator and, in the multi-θ form, its own θ row,
so a slot's trajectory is a function of its stream alone: splitting slots over
threads (OpenMP) gives the same result whatever the thread count.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from numpy.random cimport bitgen_t

from pgfast._envs cimport VecEnvKernel
from pgfast._policies cimport PolicyKernel


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
    int[::1] status,                          # OUT (B,) 0 ok, -1 invalid action, -2 no memory
    bint deterministic=False,                 # act by the policy's mode; log_probs untouched
    int num_threads=1,
):
    """Reset every slot, then run T steps of policy and env with same-step
    autoreset (the final observation of an episode is kept, then the slot resets)."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], b
    cdef Py_ssize_t theta_stride = 0 if thetas.shape[0] == 1 else thetas.shape[1]
    for b in prange(B, nogil=True, num_threads=num_threads, schedule="static"):
        status[b] = _run_slot(env, policy, &thetas[0, 0] + b * theta_stride,
                              <bitgen_t*> bitgens[b], b, T, time_limit,
                              observations, actions, rewards, terminated, truncated,
                              log_probs, final_observations, last_observations,
                              deterministic)


cdef int _run_slot(
    VecEnvKernel env, PolicyKernel policy, const double* theta, bitgen_t* rng,
    Py_ssize_t b, Py_ssize_t T, Py_ssize_t time_limit,
    double[:, :, ::1] observations, double[:, :, ::1] actions, double[:, ::1] rewards,
    unsigned char[:, ::1] terminated, unsigned char[:, ::1] truncated,
    double[:, ::1] log_probs, double[:, :, ::1] final_observations,
    double[:, ::1] last_observations, bint deterministic,
) noexcept nogil:
    cdef Py_ssize_t t, elapsed = 0, obs_dim = env.obs_dim
    cdef size_t obs_bytes = obs_dim * sizeof(double)
    cdef int step
    cdef double* work = <double*> malloc((policy.work_size + 2 * obs_dim + 1) * sizeof(double))
    if work == NULL:
        return -2
    cdef double* obs = work + policy.work_size      # the current observation s_t
    cdef double* nxt = obs + obs_dim                # s_{t+1} as the env returns it
    env.reset_one(b, rng, obs)
    for t in range(T):
        memcpy(&observations[t, b, 0], obs, obs_bytes)
        if deterministic:
            policy.mode(theta, obs, 1, work, &actions[t, b, 0])
        else:
            policy.sample(theta, obs, 1, rng, work, &actions[t, b, 0], &log_probs[t, b])
        step = env.step_one(b, &actions[t, b, 0], rng, nxt, &rewards[t, b])
        if step < 0:
            free(work)
            return -1
        elapsed += 1
        terminated[t, b] = step == 1
        truncated[t, b] = step != 1 and time_limit > 0 and elapsed >= time_limit
        if terminated[t, b] or truncated[t, b]:
            memcpy(&final_observations[t, b, 0], nxt, obs_bytes)
            env.reset_one(b, rng, obs)
            elapsed = 0
        else:
            memcpy(obs, nxt, obs_bytes)
    memcpy(&last_observations[b, 0], obs, obs_bytes)
    free(work)
    return 0
