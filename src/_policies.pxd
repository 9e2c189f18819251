# The C-level policy interface the fused rollout loop calls (no Python per step),
# and NetPolicy, the network-plus-head policy every pgfast policy is
# (src/_policies.pyx; its heads: src/_softmax.pyx, src/_gaussian.pyx; its network:
# src/_net.pyx). Each public policy object (pgfast.LinearSoftmax, ...) in
# pgfast/policies.py exposes one of these as `policy.kernel`. theta is the flat
# float64 parameter vector the caller owns.
from numpy.random cimport bitgen_t

from pgfast._net cimport Net

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


cdef class NetPolicy(PolicyKernel):
    cdef readonly Net net
    cdef readonly Py_ssize_t n_extra   # head parameters after the network's (log_std)
    # A sample's randomness: act_dim draws per row, standard normal (Gaussian) or
    # uniform on [0, 1) (softmax), which head_sample turns into actions.
    cdef bint normal_noise

    cdef void _setup(self, Net net, Py_ssize_t n_extra)

    # The head, per row of outputs z (n, out_dim); a subclass overrides these
    # (see _policies.pyx for each one's contract).
    cdef void head_score(self, const double* theta, const double* z, const double* actions,
                         const double* weights, Py_ssize_t n, double* dz, double* extra,
                         double* logp) noexcept nogil
    cdef bint fused_scores(self, const double* theta, const double* obs,
                           const double* actions, const double* weights, Py_ssize_t n,
                           double* grad, double* rows, Py_ssize_t ld) noexcept nogil
    cdef void head_kl(self, const double* theta_old, const double* z_old,
                      const double* theta_new, const double* z_new, Py_ssize_t n,
                      double* kl, double* dz, double* extra) noexcept nogil
    cdef void head_entropy(self, const double* theta, const double* z, Py_ssize_t n,
                           double* ent) noexcept nogil
    cdef void head_entropy_grad(self, const double* theta, const double* z, Py_ssize_t n,
                                double* dz, double* extra) noexcept nogil
    cdef void head_fisher(self, const double* theta, const double* z, Py_ssize_t n,
                          double* t, Py_ssize_t n_total) noexcept nogil
    cdef void head_fisher_extra(self, const double* theta, const double* v,
                                double* out) noexcept nogil
    cdef void head_sample(self, const double* theta, double* z, Py_ssize_t n,
                          double* actions, double* logp) noexcept nogil
    cdef void head_mode(self, const double* theta, const double* z, Py_ssize_t n,
                        double* actions) noexcept nogil

    cdef int _check(self, const double[::1] theta, const double[:, ::1] obs,
                    str name=*) except -1
    cdef void _forward_blocks(self, const double* theta, const double* obs, Py_ssize_t n,
                              double* cache, int num_threads) noexcept nogil
    cdef void _fvp_blocks(self, const double* theta, const double* v, const double* obs,
                          Py_ssize_t n, const double* fwd, double* t, double* scratch,
                          double* sums, int num_threads) noexcept nogil


# The network of a head: widths (obs_dim, hidden..., out_dim), each checked and
# named (out_name: "n_actions" or "act_dim"), the total size bounded.
cdef Net net_of(obs_dim, hidden, out_dim, str out_name)


cdef inline bint shared_theta(const double** thetas, Py_ssize_t n) noexcept nogil:
    """True when every row has the same parameters (one policy, many env slots)."""
    cdef Py_ssize_t i
    for i in range(1, n):
        if thetas[i] != thetas[0]:
            return False
    return True
