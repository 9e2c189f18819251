# cython: language_level=3
"""The softmax policy head: π(a | s) = softmax(z)_a over the logits z = Net(θ, s),
actions stored as doubles (``SoftmaxKernel``). Python wrapper:
``pgfast/policies.py`` (``LinearSoftmax``, ``MLPSoftmax``); the network and the
generic entry points are ``_net.pyx`` and ``_policies.pyx``.

The linear policy with two actions (CartPole's) has one-pass score kernels and
a sampling loop with no call per row, the fused rollout's inner loop.
"""
from libc.math cimport fabs, log, log1p, exp
from libc.stdint cimport int64_t
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_uniform

from pgfast._math cimport (argmax, exp_neg_abs, log1p_unit, logsumexp, select, sigmoid,
                           softmax_row)
from pgfast._common cimport check_len
from pgfast._policies cimport NetPolicy, net_of, shared_theta

# Widest observation the one-pass linear-softmax score sum keeps on the stack.
cdef enum:
    _FUSED_MAX_OBS = 64
    _FUSED_BLOCK = 256
    _LANES = 8        # rows summed side by side in the score sum
    _SPREAD = 2048    # doubles of a block of obs, copied by columns, in the score sum


cdef class SoftmaxKernel(NetPolicy):
    """π(a | s) = softmax(z)_a, z = Net(θ, s) the logits; actions stored as doubles."""

    def __init__(self, obs_dim, n_actions, hidden=()):
        self._setup(net_of(obs_dim, hidden, n_actions, "n_actions"), 0)
        self.act_dim = 1
        self.n_actions = self.net.out_dim

    cdef void head_score(self, const double* theta, const double* z, const double* actions,
                         const double* weights, Py_ssize_t n, double* dz, double* extra,
                         double* logp) noexcept nogil:
        # ∂ log softmax(z)_a / ∂z = e_a − p
        cdef Py_ssize_t i, k, a, K = self.n_actions
        cdef double s, inv, w = 1.0
        cdef const double* zi
        cdef double* d
        for i in range(n):
            zi = z + i * K
            d = dz + i * K
            a = <Py_ssize_t> actions[i]
            s = softmax_row(zi, K, d)
            if logp != NULL:
                logp[i] = zi[a] - zi[argmax(zi, K)] - log1p(s)
            if weights != NULL:
                w = weights[i]
            inv = -w / (1.0 + s)
            for k in range(K):
                d[k] *= inv
            d[a] += w

    cdef bint fused_scores(self, const double* theta, const double* obs,
                           const double* actions, const double* weights, Py_ssize_t n,
                           double* grad, double* rows, Py_ssize_t ld) noexcept nogil:
        # Linear with two actions (the common binary case), in one pass over the
        # rows. Classic-control widths get the loops with D a constant, so that the
        # compiler keeps the per-column values in registers.
        cdef Py_ssize_t D = self.obs_dim
        if self.net.n_layers != 1 or self.n_actions != 2 or D > _FUSED_MAX_OBS:
            return False
        if weights != NULL:
            _binary_score_sum_of(theta, obs, actions, weights, n, D, grad)
        elif D == 2:
            _binary_score_rows(theta, obs, actions, n, 2, rows, ld)
        elif D == 3:
            _binary_score_rows(theta, obs, actions, n, 3, rows, ld)
        elif D == 4:
            _binary_score_rows(theta, obs, actions, n, 4, rows, ld)
        elif D == 6:
            _binary_score_rows(theta, obs, actions, n, 6, rows, ld)
        else:
            _binary_score_rows(theta, obs, actions, n, D, rows, ld)
        return True

    def index_score_sum(self, const double[::1] theta, const double[:, ::1] obs,
                        const int64_t[::1] actions, const double[::1] weights,
                        double[::1] grad):
        """grad ← Σ_i w_i ∇θ log π(a_i | s_i) reading the actions as int64 indices
        (no copy to doubles), for the policies with a one-pass score sum (linear,
        two actions). Returns False, grad then meaningless, for the other policies,
        an empty batch or an action that is not 0 or 1: the caller checks and falls
        back to grad_log_prob_into."""
        cdef Py_ssize_t n = obs.shape[0], D = self.obs_dim
        cdef bint ok
        if self.net.n_layers != 1 or self.n_actions != 2 or D > _FUSED_MAX_OBS or n == 0:
            return False
        self._check(theta, obs)
        check_len("actions", actions.shape[0], n)
        check_len("weights", weights.shape[0], n)
        check_len("grad", grad.shape[0], self.n_params)
        with nogil:
            ok = _binary_score_sum_of(&theta[0], &obs[0, 0], &actions[0], &weights[0], n, D,
                                      &grad[0])
        return ok

    cdef void head_kl(self, const double* theta_old, const double* z_old,
                      const double* theta_new, const double* z_new, Py_ssize_t n,
                      double* kl, double* dz, double* extra) noexcept nogil:
        # KL = Σ_k p_k (log p_k − log q_k);  ∂(mean KL)/∂z_new = (q − p) / n
        cdef Py_ssize_t i, k, K = self.n_actions
        cdef double lo, ln, s, po, qn
        cdef const double* zo
        cdef const double* zn
        for i in range(n):
            zo = z_old + i * K
            zn = z_new + i * K
            lo = logsumexp(zo, K)
            ln = logsumexp(zn, K)
            s = 0.0
            for k in range(K):
                po = exp(zo[k] - lo)
                s += po * ((zo[k] - lo) - (zn[k] - ln))
                if dz != NULL:
                    qn = exp(zn[k] - ln)
                    dz[i * K + k] = (qn - po) / n
            kl[i] = 0.0 if s < 0.0 else s  # rounding can dip below the true KL ≥ 0 (NaN stays)

    cdef void head_entropy(self, const double* theta, const double* z, Py_ssize_t n,
                           double* ent) noexcept nogil:
        # H = −Σ_k p_k log p_k
        cdef Py_ssize_t i, k, K = self.n_actions
        cdef double lse, s, lp
        cdef const double* zi
        for i in range(n):
            zi = z + i * K
            lse = logsumexp(zi, K)
            s = 0.0
            for k in range(K):
                lp = zi[k] - lse
                s -= exp(lp) * lp
            ent[i] = s

    cdef void head_entropy_grad(self, const double* theta, const double* z, Py_ssize_t n,
                                double* dz, double* extra) noexcept nogil:
        # ∂H/∂z_k = −p_k (z_k − Σ_j p_j z_j), averaged over the rows
        cdef Py_ssize_t i, k, K = self.n_actions
        cdef double lse, zbar
        cdef const double* zi
        cdef double* d
        for i in range(n):
            zi = z + i * K
            d = dz + i * K
            lse = logsumexp(zi, K)
            zbar = 0.0
            for k in range(K):
                d[k] = exp(zi[k] - lse)
                zbar += d[k] * zi[k]
            for k in range(K):
                d[k] *= (zbar - zi[k]) / n

    cdef void head_fisher(self, const double* theta, const double* z, Py_ssize_t n,
                          double* t, Py_ssize_t n_total) noexcept nogil:
        # M = diag(p) − p pᵀ:  M t = p ⊙ (t − pᵀt)
        cdef Py_ssize_t i, k, K = self.n_actions
        cdef double lse, pt
        cdef const double* zi
        cdef double* ti
        for i in range(n):
            zi = z + i * K
            ti = t + i * K
            lse = logsumexp(zi, K)
            pt = 0.0
            for k in range(K):
                pt += exp(zi[k] - lse) * ti[k]
            for k in range(K):
                ti[k] = exp(zi[k] - lse) * (ti[k] - pt) / n_total

    cdef void sample_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                          bitgen_t** bitgens, double* work,
                          double* actions, double* logp) noexcept nogil:
        # Linear with two actions and one θ (the fused CartPole loop's case): the
        # logits in one loop with no call per row, summed in Net.forward's order.
        cdef Py_ssize_t i, j, D = self.obs_dim
        cdef const double* W = thetas[0]
        cdef const double* x
        cdef double z0, z1
        if self.net.n_layers != 1 or self.n_actions != 2 or not shared_theta(thetas, n):
            NetPolicy.sample_rows(self, thetas, obs, n, bitgens, work, actions, logp)
            return
        for i in range(n):
            actions[i] = random_standard_uniform(bitgens[i])
        for i in range(n):
            x = obs + i * D
            z0 = W[2 * D]
            z1 = W[2 * D + 1]
            for j in range(D):
                z0 += x[j] * W[2 * j]
                z1 += x[j] * W[2 * j + 1]
            work[2 * i] = z0
            work[2 * i + 1] = z1
        self.head_sample(W, work, n, actions, logp)

    cdef void head_sample(self, const double* theta, double* z, Py_ssize_t n,
                          double* actions, double* logp) noexcept nogil:
        # inverse CDF with one uniform u: the first k with Σ_{j≤k} e_j > u Σ_j e_j
        cdef Py_ssize_t i, k, a, K = self.n_actions
        cdef double s, target, c, d, e
        cdef bint top0, pick1
        cdef double* zi
        if K == 2:
            # The same draw and comparisons as below, without the loops: with
            # e = exp(−|z1 − z0|) the better action has e_k = 1, the other e.
            # This loop has no call and vectorises; it leaves e and the logit
            # gap of each row in z for the second, which takes the logarithms.
            for i in range(n):
                zi = z + i * 2
                d = zi[1] - zi[0]
                e = exp_neg_abs(d)
                top0 = zi[0] >= zi[1]
                pick1 = not (select(top0, 1.0, e) > actions[i] * (1.0 + e))
                actions[i] = pick1
                zi[1] = select(pick1 == top0, fabs(d), 0.0)
                zi[0] = e
            for i in range(n):
                # log π(a) = (z_a − max z) − log(1 + e)
                logp[i] = -log1p_unit(z[2 * i]) - z[2 * i + 1]
            return
        for i in range(n):
            zi = z + i * K
            s = softmax_row(zi, K, zi)  # zi now holds e_k = exp(z_k − max z)
            target = actions[i] * (1.0 + s)
            a = -1
            c = 0.0
            for k in range(K):
                c += zi[k]
                if c > target:
                    a = k
                    break
            if a < 0:  # u Σ e rounded up to Σ e: the last action with mass
                a = K - 1
                while zi[a] <= 0.0:
                    a -= 1
            actions[i] = a
            logp[i] = log(zi[a]) - log1p(s)

    cdef void head_mode(self, const double* theta, const double* z, Py_ssize_t n,
                        double* actions) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            actions[i] = argmax(z + i * self.n_actions, self.n_actions)


ctypedef fused action_t:
    double
    int64_t


cdef bint _binary_score_sum_of(const double* theta, const double* obs,
                               const action_t* actions, const double* weights,
                               Py_ssize_t n, Py_ssize_t D, double* grad) noexcept nogil:
    """_binary_score_sum with the classic-control widths as constants, so that the
    compiler keeps the per-column values in registers."""
    if D == 2:
        return _binary_score_sum(theta, obs, actions, weights, n, 2, grad)
    if D == 3:
        return _binary_score_sum(theta, obs, actions, weights, n, 3, grad)
    if D == 4:
        return _binary_score_sum(theta, obs, actions, weights, n, 4, grad)
    if D == 6:
        return _binary_score_sum(theta, obs, actions, weights, n, 6, grad)
    return _binary_score_sum(theta, obs, actions, weights, n, D, grad)


cdef inline bint _binary_score_sum(const double* theta, const double* obs,
                                   const action_t* actions, const double* weights,
                                   Py_ssize_t n, Py_ssize_t D, double* grad) noexcept nogil:
    """grad ← Σ_i w_i ∇θ log π(a_i | s_i) for a linear softmax with two actions.
    Returns False when an action index (int64) is not 0 or 1; grad is then
    meaningless.

    With t = z_1 − z_0, p_1 = σ(t) and ∂ log π/∂z = (a − p_1)·(−1, 1), so one pass
    sums only the column-1 gradients; column 0 is their negative.

    Each block of rows is first copied column by column (xt), so that the loops
    over its rows read contiguous values and vectorise: t_i = Δb + Σ_j x_ij Δw_j
    in the order of j, as Net.forward sums, then the sigmoid, then the sums. Row i
    adds into lane i % _LANES of each column's sum (acc[j _LANES + i % _LANES]),
    the lanes added in order at the end: a fixed order whatever the vector width.
    Every value of obs and of the weights meets the sum through a product, so a
    NaN or infinity among them makes grad non-finite.
    """
    cdef Py_ssize_t i, i0, m, j, l, g, full, lanes = _LANES
    # rows per block: a multiple of _LANES whose columns fit in xt
    cdef Py_ssize_t block = min(<Py_ssize_t> _FUSED_BLOCK, _SPREAD // (D * lanes) * lanes)
    cdef double s, gb = 0.0, db
    cdef int64_t bits = 0
    cdef double dw[_FUSED_MAX_OBS]
    cdef double acc[_LANES * _FUSED_MAX_OBS]
    cdef double gbl[_LANES]
    cdef double d[_FUSED_BLOCK]
    cdef double xt[_SPREAD]
    cdef const double* x
    db = theta[2 * D + 1] - theta[2 * D]
    for j in range(D):
        dw[j] = theta[2 * j + 1] - theta[2 * j]
    for l in range(lanes * D):
        acc[l] = 0.0
    for l in range(lanes):
        gbl[l] = 0.0
    i0 = 0
    while i0 < n:
        m = min(block, n - i0)
        x = obs + i0 * D
        for i in range(m):
            for j in range(D):
                xt[j * block + i] = x[i * D + j]
        for i in range(m):
            d[i] = db
        for j in range(D):
            for i in range(m):
                d[i] += xt[j * block + i] * dw[j]
        # the sigmoid's loop has no calls and vectorises
        for i in range(m):
            d[i] = weights[i0 + i] * (<double> actions[i0 + i] - sigmoid(d[i]))
        if action_t is int64_t:
            for i in range(m):   # 0 and 1 set no other bit
                bits |= actions[i0 + i]
        full = m - m % lanes
        for j in range(D):
            for g in range(full // lanes):
                for l in range(lanes):
                    acc[j * lanes + l] += xt[j * block + g * lanes + l] * d[g * lanes + l]
        for g in range(full // lanes):
            for l in range(lanes):
                gbl[l] += d[g * lanes + l]
        for i in range(full, m):   # the last block's tail: the same lanes
            for j in range(D):
                acc[j * lanes + i - full] += xt[j * block + i] * d[i]
            gbl[i - full] += d[i]
        i0 += m
    for j in range(D):
        s = 0.0
        for l in range(lanes):
            s += acc[j * lanes + l]
        grad[2 * j] = -s
        grad[2 * j + 1] = s
    for l in range(lanes):
        gb += gbl[l]
    grad[2 * D] = -gb
    grad[2 * D + 1] = gb
    return (bits & ~(<int64_t> 1)) == 0


cdef inline void _binary_score_rows(const double* theta, const double* obs,
                                    const double* actions, Py_ssize_t n, Py_ssize_t D,
                                    double* rows, Py_ssize_t ld) noexcept nogil:
    """Row i of rows (stride ld) ← ∇θ log π(a_i | s_i) for a linear softmax with two
    actions: [x_i0 (−d_i), x_i0 d_i, ..., −d_i, d_i] with d_i = a_i − σ(t_i)
    (see _binary_score_sum)."""
    cdef Py_ssize_t i, j
    cdef double t, d, db = theta[2 * D + 1] - theta[2 * D]
    cdef double dw[_FUSED_MAX_OBS]
    cdef const double* x
    cdef double* g
    for j in range(D):
        dw[j] = theta[2 * j + 1] - theta[2 * j]
    for i in range(n):
        x = obs + i * D
        t = db
        for j in range(D):
            t += x[j] * dw[j]
        d = actions[i] - sigmoid(t)
        g = rows + i * ld
        for j in range(D):
            g[2 * j] = -(x[j] * d)
            g[2 * j + 1] = x[j] * d
        g[2 * D] = -d
        g[2 * D + 1] = d
