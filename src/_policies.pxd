# The C-level policy interface the fused rollout loop calls (no Python per step).
# Each public policy object (pgfast.LinearSoftmax, ...) exposes one of these as
# `policy.kernel`. theta is the flat float64 parameter vector the caller owns.
from numpy.random cimport bitgen_t

cdef class PolicyKernel:
    cdef readonly Py_ssize_t obs_dim
    cdef readonly Py_ssize_t act_dim      # Gaussian: action dimension; softmax: 1
    cdef readonly Py_ssize_t n_actions    # softmax: number of actions; Gaussian: 0
    cdef readonly Py_ssize_t n_params
    cdef readonly Py_ssize_t work_size    # scratch doubles needed per observation row

    # Sample one action per row of obs (n, obs_dim) into actions (n, act_dim)
    # (a softmax action index is stored as a double) and its log-probability
    # into logp (n,). work holds n * work_size doubles of scratch.
    cdef void sample(self, const double* theta, const double* obs, Py_ssize_t n,
                     bitgen_t* bitgen, double* work,
                     double* actions, double* logp) noexcept nogil

    # The most likely action per row (argmax / mean), for deterministic evaluation.
    cdef void mode(self, const double* theta, const double* obs, Py_ssize_t n,
                   double* work, double* actions) noexcept nogil

    # The fused rollout loop's calls, once per time step for a chunk of env slots:
    # row i has its own parameters thetas[i] and (sample_rows) its own generator
    # bitgens[i], from which it draws exactly what sample() would for that row.
    cdef void sample_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                          bitgen_t** bitgens, double* work,
                          double* actions, double* logp) noexcept nogil
    cdef void mode_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                        double* work, double* actions) noexcept nogil


# Uninitialised memory for kernels' scratch, 64-byte aligned (2 MiB pages when
# large, on Linux); release it with free(). NULL when out of memory.
cdef void* scratch(size_t nbytes) noexcept nogil
