# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A user's own simulator running inside pgfast's fused rollout loop.

Copy this file to write your own: subclass ``pgfast._envs.VecEnvKernel``, keep
the state of every env slot in C memory, and override the two ``cdef`` methods
``reset_one`` and ``step_one``. ``pgfast.rollout(env, policy, theta, T, rng)``
then calls them from its nogil loop: no Python call per step.

Build with ``python examples/custom_env/build.py`` (Cython with
``-I pgfast.get_include()``, then the C compiler), see the README.

The environment: a 1-D point mass, state s = (x, v), a force a clipped to
[-1, 1], time step dt = 0.05 (semi-implicit Euler):

    v′ = v + dt · clip(a, −1, 1),   x′ = x + dt · v′,
    reward −(x² + 0.1 v²) of the state the force is applied in,
    terminated when |x′| > 2, reset x, v ~ U(−0.5, 0.5) independently.
"""
from libc.math cimport fabs, isfinite
from libc.stdlib cimport free, malloc

# The contract (pgfast/_envs.pxd, shipped in the wheel) and numpy's C random API:
# the fused loop passes each slot its own numpy bit generator.
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_uniform
from pgfast._envs cimport VecEnvKernel

cdef double DT = 0.05
cdef double X_LIMIT = 2.0


cdef class PointMass(VecEnvKernel):
    """B copies of the point mass; observation (x, v), one continuous action.

    Parameters
    ----------
    num_envs : int
        Number of env slots B.
    seed : None, int or sequence of num_envs ints
        Seeds the kernel's own per-slot generators (used by ``reset_all`` and
        ``pgfast._rollout.step_all``; ``pgfast.rollout`` draws from the generator
        it is given).
    max_episode_steps : int
        Time limit the rollout truncates at (0: none).
    """

    # C attributes of a cdef class: invisible to Python, read without the GIL.
    # The loop may run different slots on different threads (num_threads > 1):
    # reset_one / step_one touch slot i's state only.
    cdef double* x   # (num_envs,) positions
    cdef double* v   # (num_envs,) velocities

    def __init__(self, Py_ssize_t num_envs, seed=None, Py_ssize_t max_episode_steps=200):
        cdef Py_ssize_t i
        # Declare the sizes: obs_dim 2, act_dim 1, n_actions 0 (continuous).
        # The base class validates them and sets up the per-slot generators.
        VecEnvKernel.__init__(self, num_envs, 2, 1, 0, max_episode_steps, seed)
        free(self.x)   # __init__ may run twice; never leak the first arrays
        free(self.v)
        self.x = <double*> malloc(num_envs * sizeof(double))
        self.v = <double*> malloc(num_envs * sizeof(double))
        if self.x == NULL or self.v == NULL:
            raise MemoryError()
        for i in range(num_envs):
            self.x[i] = 0.0
            self.v[i] = 0.0

    def __dealloc__(self):
        # Runs before the base class's own __dealloc__; free(NULL) is a no-op.
        free(self.x)
        free(self.v)

    # Called by the loop when slot i starts an episode: draw its initial state
    # from `bitgen` (never from a private RNG: same seed, same rollout) and
    # write its observation (obs_dim doubles).
    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        self.x[i] = random_standard_uniform(bitgen) - 0.5
        self.v[i] = random_standard_uniform(bitgen) - 0.5
        obs[0] = self.x[i]
        obs[1] = self.v[i]

    # Called once per step of slot i: apply `action` (act_dim doubles), write
    # the next observation and the reward, return 1 if the new state is
    # terminal, 0 if not, and -1 for an invalid action (state left unchanged;
    # pgfast.rollout then raises ValueError instead of recording NaN states).
    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        if not isfinite(action[0]):
            return -1
        cdef double force = action[0]
        if force > 1.0:
            force = 1.0
        elif force < -1.0:
            force = -1.0
        cdef double x = self.x[i], v = self.v[i]
        reward[0] = -(x * x + 0.1 * v * v)
        v = v + DT * force
        x = x + DT * v
        self.x[i] = x
        self.v[i] = v
        obs[0] = x
        obs[1] = v
        return 1 if fabs(x) > X_LIMIT else 0
