# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A user-style embedded env with an expensive step, for bench_distributed.py.

The point mass of examples/custom_env, integrated with `substeps` semi-implicit
Euler sub-steps per step and a sin(x) restoring force: a stand-in for a physics
engine whose step costs tens of microseconds (substeps sets the cost).
"""
from libc.math cimport fabs, isfinite, sin
from libc.stdlib cimport free, malloc

from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_uniform
from pgfast._envs cimport VecEnvKernel

cdef double DT = 0.05


cdef class BusyMass(VecEnvKernel):
    """B point masses; observation (x, v), one force in [-1, 1], `substeps` sub-steps."""

    cdef double* x
    cdef double* v
    cdef readonly Py_ssize_t substeps

    def __init__(self, Py_ssize_t num_envs, Py_ssize_t substeps=1000, seed=None,
                 Py_ssize_t max_episode_steps=200):
        if substeps < 1:
            raise ValueError(f"substeps: expected an integer >= 1, got {substeps}")
        VecEnvKernel.__init__(self, num_envs, 2, 1, 0, max_episode_steps, seed)
        free(self.x)
        free(self.v)
        self.x = <double*> malloc(num_envs * sizeof(double))
        self.v = <double*> malloc(num_envs * sizeof(double))
        if self.x == NULL or self.v == NULL:
            raise MemoryError()
        self.substeps = substeps

    def __dealloc__(self):
        free(self.x)
        free(self.v)

    cdef void reset_one(self, Py_ssize_t i, bitgen_t* bitgen, double* obs) noexcept nogil:
        self.x[i] = random_standard_uniform(bitgen) - 0.5
        self.v[i] = random_standard_uniform(bitgen) - 0.5
        obs[0] = self.x[i]
        obs[1] = self.v[i]

    cdef int step_one(self, Py_ssize_t i, const double* action, bitgen_t* bitgen,
                      double* obs, double* reward) noexcept nogil:
        if not isfinite(action[0]):
            return -1
        cdef double force = min(max(action[0], -1.0), 1.0)
        cdef double x = self.x[i], v = self.v[i], h = DT / self.substeps
        cdef Py_ssize_t k
        reward[0] = -(x * x + 0.1 * v * v)
        for k in range(self.substeps):
            v = v + h * (force - 0.5 * sin(x))
            x = x + h * v
        self.x[i] = x
        self.v[i] = v
        obs[0] = x
        obs[1] = v
        return 1 if fabs(x) > 2.0 else 0
