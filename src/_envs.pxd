# The C-level environment interface: B copies of one environment whose state
# lives in the kernel. The fused rollout loop and pgfast's Gymnasium VectorEnv
# call these per env slot with no Python per step. A user's own simulator
# subclasses VecEnvKernel in their extension (cimport pgfast._envs) and
# overrides reset_one and step_one.
#
# Episode boundaries are not the kernel's concern: step_one reports a terminal
# state and nothing else. The episode drivers in src/_rollout.pyx (the fused
# rollout loop and step_all, behind pgfast's Gymnasium VectorEnv) count steps,
# truncate at the time limit (max_episode_steps, or the caller's) and reset
# slots; its opening comment states the rules. Python wrapper: pgfast/envs.py.
from numpy.random cimport bitgen_t

cdef class VecEnvKernel:
    cdef readonly Py_ssize_t num_envs
    cdef readonly Py_ssize_t obs_dim
    cdef readonly Py_ssize_t act_dim            # continuous: action dimension; discrete: 1
    cdef readonly Py_ssize_t n_actions          # discrete: number of actions; continuous: 0
    cdef readonly Py_ssize_t max_episode_steps  # 0 for no time limit

    # One numpy Generator per env slot, owned by the kernel (seed() makes them),
    # so slot i draws from bitgens[i] whatever the number of slots or threads.
    # Nothing else uses these generators, so no lock is taken around them.
    cdef list _rngs
    cdef bitgen_t** bitgens

    # Draw env i's initial state from its reset distribution; write its observation.
    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil

    # Apply action (act_dim doubles; a discrete index stored as a double) to env i;
    # write the next observation and the reward. Returns 1 when the new state is
    # terminal, 0 otherwise, and -1 (state unchanged) for an invalid action
    # (NaN, or a discrete index out of range).
    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil

    # Step the envs in slots[0..n) with actions (n, act_dim), slot slots[j] drawing
    # from bitgens[j]: obs (n, obs_dim), rewards (n,) and codes (n,) as step_one's
    # per row (obs undefined where the code is -1). The fused rollout loop's call,
    # once per time step for a chunk of slots; the default calls step_one per row.
    # Override it only to step faster (no virtual call per slot); never to change
    # what a step does.
    cdef void step_rows(self, const Py_ssize_t* slots, Py_ssize_t n, const double* actions,
                        bitgen_t** bitgens, double* obs, double* rewards,
                        int* codes) noexcept nogil

    # True when step_one would accept this action. The default: a discrete
    # index in [0, n_actions), or act_dim finite doubles.
    cdef bint valid_action(self, const double* action) noexcept nogil


# RuntimeError unless VecEnvKernel.__init__ has set k up (a subclass must call it).
cdef int check_ready(VecEnvKernel k) except -1

# One caller at a time: an entry point that steps, resets or reseeds the slots
# claims the kernel first (RuntimeError if another thread holds it: two threads
# stepping one env would interleave their episodes) and releases it in a finally.
cdef int claim(VecEnvKernel k) except -1
cdef void release(VecEnvKernel k) noexcept
