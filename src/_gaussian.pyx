# cython: language_level=3
"""The diagonal-Gaussian policy head: π(a | s) = N(a; μ, diag σ²) with the mean
μ = Net(θ, s) and log σ a state-independent vector (``GaussianKernel``). Python
wrapper: ``pgfast/policies.py`` (``LinearGaussian``, ``MLPGaussian``); the
network and the generic entry points are ``_net.pyx`` and ``_policies.pyx``.
"""
import numpy as np

from libc.math cimport exp, expm1
from libc.stdlib cimport free

from pgfast._common cimport alloc_doubles
from pgfast._policies cimport NetPolicy, net_of

cdef double LOG_2PI = 1.8378770664093453  # log(2π)


cdef class GaussianKernel(NetPolicy):
    """π(a | s) = N(a; μ, diag σ²), μ = Net(θ, s), log σ a state-independent vector:
    the last act_dim entries of θ (learn_std) or fixed in the kernel."""
    cdef readonly bint learn_std
    cdef double* fixed_log_std

    def __cinit__(self):
        self.fixed_log_std = NULL

    def __init__(self, obs_dim, act_dim, hidden=(), log_std=None, bint learn_std=True):
        cdef Py_ssize_t k, D
        net = net_of(obs_dim, hidden, act_dim, "act_dim")
        D = net.out_dim
        self._setup(net, D if learn_std else 0)
        self.act_dim = D
        self.n_actions = 0
        self.normal_noise = True
        self.learn_std = learn_std
        ls = np.zeros(D) if log_std is None else np.broadcast_to(log_std, (D,))
        free(self.fixed_log_std)   # __init__ may run twice
        self.fixed_log_std = NULL
        self.fixed_log_std = alloc_doubles(D)
        for k in range(D):
            self.fixed_log_std[k] = ls[k]

    def __dealloc__(self):
        free(self.fixed_log_std)

    cdef inline const double* _log_std(self, const double* theta) noexcept nogil:
        return theta + self.net.n_params if self.learn_std else self.fixed_log_std

    cdef void head_score(self, const double* theta, const double* z, const double* actions,
                         const double* weights, Py_ssize_t n, double* dz, double* extra,
                         double* logp) noexcept nogil:
        # log π = Σ_k −½ u_k² − log σ_k − ½ log 2π with u = (a − μ)/σ;
        # ∂/∂μ_k = u_k/σ_k, ∂/∂log σ_k = u_k² − 1
        cdef Py_ssize_t i, k, D = self.act_dim
        cdef const double* ls = self._log_std(theta)
        cdef double u, inv, w = 1.0, lp
        for i in range(n):
            if weights != NULL:
                w = weights[i]
            lp = 0.0
            for k in range(D):
                inv = exp(-ls[k])
                u = (actions[i * D + k] - z[i * D + k]) * inv
                lp -= 0.5 * u * u + ls[k] + 0.5 * LOG_2PI
                dz[i * D + k] = w * u * inv
                if self.learn_std:
                    extra[i * D + k] = w * (u * u - 1.0)
            if logp != NULL:
                logp[i] = lp

    cdef void head_kl(self, const double* theta_old, const double* z_old,
                      const double* theta_new, const double* z_new, Py_ssize_t n,
                      double* kl, double* dz, double* extra) noexcept nogil:
        # KL = Σ_k ½ expm1(2d_k) − d_k + ½ (μ_old − μ_new)² / σ_new², d = log σ_old − log σ_new
        # ∂/∂μ_new = (μ_new − μ_old)/σ_new², ∂/∂log σ_new = −expm1(2d) − (μ_old − μ_new)²/σ_new²
        cdef Py_ssize_t i, k, D = self.act_dim
        cdef const double* lo = self._log_std(theta_old)
        cdef const double* ln = self._log_std(theta_new)
        cdef double s, d, diff, ivar, base = 0.0
        for k in range(D):
            d = lo[k] - ln[k]
            base += 0.5 * expm1(2.0 * d) - d
            if dz != NULL and self.learn_std:
                extra[k] = -expm1(2.0 * d)
        for i in range(n):
            s = base
            for k in range(D):
                ivar = exp(-2.0 * ln[k])
                diff = z_old[i * D + k] - z_new[i * D + k]
                s += 0.5 * diff * diff * ivar
                if dz != NULL:
                    dz[i * D + k] = -diff * ivar / n
                    if self.learn_std:
                        extra[k] -= diff * diff * ivar / n
            kl[i] = 0.0 if s < 0.0 else s  # rounding can dip below the true KL ≥ 0 (NaN stays)

    cdef void head_entropy(self, const double* theta, const double* z, Py_ssize_t n,
                           double* ent) noexcept nogil:
        # H = Σ_k log σ_k + ½ (1 + log 2π)
        cdef Py_ssize_t i, k
        cdef const double* ls = self._log_std(theta)
        cdef double h = 0.0
        for k in range(self.act_dim):
            h += ls[k] + 0.5 * (1.0 + LOG_2PI)
        for i in range(n):
            ent[i] = h

    cdef void head_entropy_grad(self, const double* theta, const double* z, Py_ssize_t n,
                                double* dz, double* extra) noexcept nogil:
        # H does not depend on μ; ∂H/∂log σ_k = 1
        cdef Py_ssize_t i, k
        for i in range(n * self.act_dim):
            dz[i] = 0.0
        if self.learn_std:
            for k in range(self.act_dim):
                extra[k] = 1.0

    cdef void head_fisher(self, const double* theta, const double* z, Py_ssize_t n,
                          double* t, Py_ssize_t n_total) noexcept nogil:
        # M = diag(1/σ²)
        cdef Py_ssize_t i, k, D = self.act_dim
        cdef const double* ls = self._log_std(theta)
        for k in range(D):
            for i in range(n):
                t[i * D + k] *= exp(-2.0 * ls[k]) / n_total

    cdef void head_fisher_extra(self, const double* theta, const double* v,
                                double* out) noexcept nogil:
        # the Fisher information of log σ_k is 2, independent of s and μ
        cdef Py_ssize_t k, p_net = self.net.n_params
        if self.learn_std:
            for k in range(self.act_dim):
                out[p_net + k] = 2.0 * v[p_net + k]

    cdef void head_sample(self, const double* theta, double* z, Py_ssize_t n,
                          double* actions, double* logp) noexcept nogil:
        # a = μ + σ ε, ε ~ N(0, I); log π from ε directly (no cancellation in a − μ)
        cdef Py_ssize_t i, k, D = self.act_dim
        cdef const double* ls = self._log_std(theta)
        cdef double eps, lp
        for i in range(n):
            lp = 0.0
            for k in range(D):
                eps = actions[i * D + k]
                actions[i * D + k] = z[i * D + k] + exp(ls[k]) * eps
                lp -= 0.5 * eps * eps + ls[k] + 0.5 * LOG_2PI
            logp[i] = lp

    cdef void head_mode(self, const double* theta, const double* z, Py_ssize_t n,
                        double* actions) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n * self.act_dim):
            actions[i] = z[i]
