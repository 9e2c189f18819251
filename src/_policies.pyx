# cython: language_level=3
"""Policy and value-function kernels: a tanh MLP (no hidden layer = linear)
with a softmax or diagonal-Gaussian head.

The Python wrappers in ``pgfast/policies.py`` validate; these kernels trust
their inputs: C-contiguous float64 arrays of matching shapes, theta of length
n_params, discrete actions stored as doubles in [0, n_actions).

Flat parameter layout (row-major W of shape (in, out), applied as x @ W + b):
    [W0, b0, W1, b1, ..., W_{L-1}, b_{L-1}, log_std (Gaussian, learn_std)]

Batched intermediates are laid out row-major, one block per layer: the
activations of hidden layer l for n rows are an (n, h_l) block starting at
n * (h_0 + ... + h_{l-1}), so a whole layer is one BLAS call.
"""
import numpy as np

from cpython.pycapsule cimport PyCapsule_GetPointer
from cython.parallel cimport prange
from libc.math cimport copysign, exp, expm1, fabs, log, log1p
from libc.stdlib cimport malloc, free
from numpy.random cimport bitgen_t
from numpy.random.c_distributions cimport random_standard_normal, random_standard_uniform
from scipy.linalg.cython_blas cimport dgemm


# c ? a : b as a C expression, which the compiler turns into a blend, so a loop
# using it still vectorises (Cython writes its conditional expression as a branch).
cdef extern from *:
    """
    static inline double pgfast_select(int c, double a, double b) { return c ? a : b; }
    """
    double select "pgfast_select"(bint c, double a, double b) noexcept nogil

cdef double _LOG_2PI = 1.8378770664093453  # log(2π)
# Below this many weights in a layer a plain loop beats the cost of a BLAS call
# (the linear policies: obs_dim x n_actions is tiny, N is large).
cdef Py_ssize_t _BLAS_MIN = 64
# Widest observation the one-pass linear-softmax score sum keeps on the stack.
cdef enum:
    _FUSED_MAX_OBS = 64
    _FUSED_BLOCK = 256


# ---------------------------------------------------------------------------
# tanh: the hidden-layer activation is most of an MLP's cost after BLAS, and
# libm's tanh (a call into expm1 with branches) costs several times this one.
# ---------------------------------------------------------------------------

cdef union _Bits:
    double d
    unsigned long long u

cdef double _INV_LN2 = 1.4426950408889634
cdef double _LN2_HI = 6.93147180369123816490e-01  # ln 2 = _LN2_HI + _LN2_LO; k·_LN2_HI is exact
cdef double _LN2_LO = 1.90821492927058770002e-10
cdef double _ROUND = 6755399441055744.0  # 1.5·2^52: (x + _ROUND) − _ROUND rounds x


cdef inline double _expm1_reduced(double y, double* scale) noexcept nogil:
    """For −709 < y ≤ 0: returns expm1(r) and sets scale = 2^k, where y = k ln 2 + r,
    |r| ≤ ln2/2 (Cody–Waite). Then exp(y) = scale (1 + expm1(r)) and
    expm1(y) = scale expm1(r) + (scale − 1), neither with cancellation.

    expm1(r) = r + r² Σ_{j=0..11} r^j / (j+2)! (truncation below 1e-17 relative),
    the sum in Estrin's scheme: a short dependency chain, so that consecutive
    elements overlap in the pipeline.
    """
    cdef double r, r2, r4, p
    cdef _Bits t, two_k
    t.d = y * _INV_LN2 + _ROUND      # the low bits of t hold k = round(y / ln 2)
    r = (y - (t.d - _ROUND) * _LN2_HI) - (t.d - _ROUND) * _LN2_LO
    r2 = r * r
    r4 = r2 * r2
    p = (((1.0 / 2.0 + r * (1.0 / 6.0)) + r2 * (1.0 / 24.0 + r * (1.0 / 120.0)))
         + r4 * ((1.0 / 720.0 + r * (1.0 / 5040.0))
                 + r2 * (1.0 / 40320.0 + r * (1.0 / 362880.0)))
         + (r4 * r4) * ((1.0 / 3628800.0 + r * (1.0 / 39916800.0))
                        + r2 * (1.0 / 479001600.0 + r * (1.0 / 6227020800.0))))
    two_k.u = (t.u + 1023) << 52     # 2^k from k's bits (−1022 ≤ k ≤ 0)
    scale[0] = two_k.d
    return r + r2 * p


cdef inline double _tanh(double x) noexcept nogil:
    """tanh(x) within a few ulp, several times faster than libm's:
    tanh|x| = −e / (2 + e) with e = expm1(−2|x|); |x| is clamped at 22, where
    tanh rounds to 1. NaN stays NaN."""
    cdef double a = fabs(x), scale, e
    if a > 22.0:
        a = 22.0
    e = _expm1_reduced(-2.0 * a, &scale)
    e = scale * e + (scale - 1.0)
    return copysign(-e / (2.0 + e), x)


cdef inline double _exp_neg_abs(double t) noexcept nogil:
    """exp(−|t|) ∈ (0, 1] with no call, so loops over it vectorise; |t| is clamped
    at 700, where exp(−|t|) is already negligible next to 1."""
    cdef double a = fabs(t), scale, e
    if a > 700.0:
        a = 700.0
    e = _expm1_reduced(-a, &scale)
    return scale * e + scale


cdef inline double _sigmoid(double t) noexcept nogil:
    """σ(t) = 1 / (1 + exp(−t)) from e = exp(−|t|), accurate in both tails."""
    cdef double e = _exp_neg_abs(t)
    return (1.0 if t >= 0.0 else e) / (1.0 + e)


# ---------------------------------------------------------------------------
# Dense linear algebra on row-major blocks
# ---------------------------------------------------------------------------

cdef void _gemm_acc(const double* X, const double* W, Py_ssize_t n, Py_ssize_t nin,
                    Py_ssize_t nout, double* Y, bint blas=True) noexcept nogil:
    """Y (n, nout) += X (n, nin) @ W (nin, nout); blas=False: row by row, so that
    each row's result does not depend on n."""
    cdef int m_ = <int> nout, n_ = <int> n, k_ = <int> nin
    cdef double one = 1.0
    cdef char tn = b'N'
    cdef Py_ssize_t i, j, k
    cdef double* y
    cdef const double* x
    if blas and n > 1 and nin * nout >= _BLAS_MIN:
        # row-major Y = X W is column-major Yᵀ = Wᵀ Xᵀ
        dgemm(&tn, &tn, &m_, &n_, &k_, &one, <double*> W, &m_, <double*> X, &k_,
              &one, Y, &m_)
        return
    # Both forms sum each output in the order j = 0, 1, …
    cdef double acc
    for i in range(n):
        y = Y + i * nout
        x = X + i * nin
        if nout <= 4:
            # a few outputs (linear policies): each summed in a register, with no
            # store-to-load chain through y
            for k in range(nout):
                acc = y[k]
                for j in range(nin):
                    acc += x[j] * W[j * nout + k]
                y[k] = acc
        else:
            # wide layers: row axpys, vectorised over the outputs
            for j in range(nin):
                acc = x[j]
                for k in range(nout):
                    y[k] += acc * W[j * nout + k]


cdef void _gemm_tn_acc(const double* X, const double* D, Py_ssize_t n, Py_ssize_t nin,
                       Py_ssize_t nout, double* G) noexcept nogil:
    """G (nin, nout) += X (n, nin)ᵀ @ D (n, nout): the summed weight gradient."""
    cdef int m_ = <int> nout, n_ = <int> nin, k_ = <int> n
    cdef double one = 1.0
    cdef char tn = b'N', tt = b'T'
    cdef Py_ssize_t i, j, k
    cdef double xij
    cdef double* g
    cdef const double* d
    if n > 1 and nin * nout >= _BLAS_MIN:
        dgemm(&tn, &tt, &m_, &n_, &k_, &one, <double*> D, &m_, <double*> X, &n_,
              &one, G, &m_)
        return
    for i in range(n):
        d = D + i * nout
        for j in range(nin):
            xij = X[i * nin + j]
            g = G + j * nout
            for k in range(nout):
                g[k] += xij * d[k]


cdef void _gemm_nt(const double* D, const double* W, Py_ssize_t n, Py_ssize_t nin,
                   Py_ssize_t nout, double* R) noexcept nogil:
    """R (n, nin) = D (n, nout) @ W (nin, nout)ᵀ: back-propagation through a layer."""
    cdef int m_ = <int> nin, n_ = <int> n, k_ = <int> nout
    cdef double one = 1.0, zero = 0.0
    cdef char tn = b'N', tt = b'T'
    cdef Py_ssize_t i, j, k
    cdef double s
    cdef const double* d
    cdef const double* w
    if n > 1 and nin * nout >= _BLAS_MIN:
        dgemm(&tt, &tn, &m_, &n_, &k_, &one, <double*> W, &k_, <double*> D, &k_,
              &zero, R, &m_)
        return
    for i in range(n):
        d = D + i * nout
        for j in range(nin):
            w = W + j * nout
            s = 0.0
            for k in range(nout):
                s += d[k] * w[k]
            R[i * nin + j] = s


# Scratch starts on a 64-byte boundary, so that rows whose length is a multiple
# of 8 doubles never straddle cache lines (a 64-byte store that splits a line
# stalls the next load of it, and a layer's update loads what it just stored).
# Large scratch is fresh memory from the OS on every call, and faulting it in
# 4 KiB pages costs as much as the arithmetic on it; in 2 MiB pages (as numpy
# asks for its own large arrays) it costs a few per cent.
cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    static void *pgfast_scratch(size_t bytes) {
        void *p = NULL;
        size_t align = 64;
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (bytes >= ((size_t) 4 << 20))
            align = (size_t) 2 << 20;
    #endif
        if (posix_memalign(&p, align, bytes ? bytes : 1) != 0)
            return NULL;
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (align > 64)
            madvise(p, bytes, MADV_HUGEPAGE);
    #endif
        return p;
    }
    """
    void* _scratch "pgfast_scratch"(size_t nbytes) noexcept nogil


cdef void* scratch(size_t nbytes) noexcept nogil:
    return _scratch(nbytes)


cdef double* _buffer(Py_ssize_t n) except NULL:
    """Uninitialised scratch of n doubles (at least one), freed by the caller."""
    cdef double* p = <double*> _scratch((n if n > 0 else 1) * sizeof(double))
    if p == NULL:
        raise MemoryError()
    return p


cdef bitgen_t* _bitgen(rng) except NULL:
    return <bitgen_t*> PyCapsule_GetPointer(rng.bit_generator.capsule, "BitGenerator")


# ---------------------------------------------------------------------------
# The network: tanh hidden layers, linear output
# ---------------------------------------------------------------------------

cdef class Net:
    """A multilayer perceptron z = W_{L-1}ᵀ h_{L-1} + b_{L-1},
    h_{l+1} = tanh(W_lᵀ h_l + b_l), h_0 = x; no hidden layer is a linear map.

    Parameters
    ----------
    sizes : sequence of int
        (in_dim, hidden..., out_dim).
    """
    cdef readonly Py_ssize_t n_layers, in_dim, out_dim, n_params, sum_hidden
    cdef Py_ssize_t* sizes
    cdef Py_ssize_t* w_off
    cdef Py_ssize_t* b_off
    cdef Py_ssize_t* h_off

    def __cinit__(self, sizes):
        cdef Py_ssize_t l, L = len(sizes) - 1, off = 0, hoff = 0
        self.sizes = <Py_ssize_t*> malloc((L + 1) * sizeof(Py_ssize_t))
        self.w_off = <Py_ssize_t*> malloc(L * sizeof(Py_ssize_t))
        self.b_off = <Py_ssize_t*> malloc(L * sizeof(Py_ssize_t))
        self.h_off = <Py_ssize_t*> malloc(L * sizeof(Py_ssize_t))
        if not (self.sizes and self.w_off and self.b_off and self.h_off):
            raise MemoryError()
        self.n_layers = L
        for l in range(L + 1):
            self.sizes[l] = sizes[l]
        for l in range(L):
            self.w_off[l] = off
            off += self.sizes[l] * self.sizes[l + 1]
            self.b_off[l] = off
            off += self.sizes[l + 1]
            self.h_off[l] = hoff
            if l < L - 1:
                hoff += self.sizes[l + 1]
        self.in_dim = self.sizes[0]
        self.out_dim = self.sizes[L]
        self.n_params = off
        self.sum_hidden = hoff

    def __dealloc__(self):
        free(self.sizes)
        free(self.w_off)
        free(self.b_off)
        free(self.h_off)

    cdef void affine(self, const double* theta, Py_ssize_t l, const double* inp,
                     Py_ssize_t n, double* outp, bint blas) noexcept nogil:
        """outp (n, out) ← inp (n, in) @ W_l + b_l; blas=False row by row (_gemm_acc)."""
        cdef Py_ssize_t i, k, nout = self.sizes[l + 1]
        cdef const double* b = theta + self.b_off[l]
        for i in range(n):
            for k in range(nout):
                outp[i * nout + k] = b[k]
        _gemm_acc(inp, theta + self.w_off[l], n, self.sizes[l], nout, outp, blas)

    cdef void forward(self, const double* theta, const double* x, Py_ssize_t n,
                      double* hid, double* z, bint blas=True) noexcept nogil:
        """hid (n * sum_hidden) ← hidden activations, z (n, out_dim) ← outputs."""
        cdef Py_ssize_t l, i, L = self.n_layers
        cdef const double* inp = x
        cdef double* outp
        for l in range(L):
            outp = z if l == L - 1 else hid + n * self.h_off[l]
            self.affine(theta, l, inp, n, outp, blas)
            if l < L - 1:
                for i in range(n * self.sizes[l + 1]):
                    outp[i] = _tanh(outp[i])
            inp = outp

    cdef void forward_batch(self, const double* theta, const double* x, Py_ssize_t n,
                            double* hid, double* z):
        """forward for the batched entry points: the same, with numpy's SIMD tanh
        on each whole hidden layer (several times faster than a scalar tanh); the
        GIL is released around the matrix products."""
        cdef Py_ssize_t l, L = self.n_layers, size
        cdef const double* inp = x
        cdef double* outp
        for l in range(L):
            outp = z if l == L - 1 else hid + n * self.h_off[l]
            with nogil:
                self.affine(theta, l, inp, n, outp, True)
            size = n * self.sizes[l + 1]
            if l < L - 1 and size > 0:
                block = np.asarray(<double[:size]> outp)
                np.tanh(block, out=block)
            inp = outp

    cdef void backward(self, const double* theta, const double* x, Py_ssize_t n,
                       const double* hid, const double* dz, double* scratch,
                       double* grad, Py_ssize_t ld, int num_threads=1) noexcept nogil:
        """Vector-Jacobian product for the output cotangents dz (n, out_dim).

        ld == 0: grad (n_params,) += Σ_i J_iᵀ dz_i.  ld > 0: row i of grad (stride ld)
        is set to J_iᵀ dz_i in the network's columns, the per-sample gradient,
        the rows split over num_threads threads.
        scratch: n sum_hidden doubles (δ of every hidden layer, laid out like hid).
        """
        cdef Py_ssize_t l, i, k, nin, nout
        cdef int threads
        cdef const double* cur = dz
        cdef const double* inp
        cdef double* nxt
        cdef double* gb
        for l in range(self.n_layers - 1, -1, -1):
            nin = self.sizes[l]
            nout = self.sizes[l + 1]
            inp = x if l == 0 else hid + n * self.h_off[l - 1]
            if ld == 0:
                _gemm_tn_acc(inp, cur, n, nin, nout, grad + self.w_off[l])
                gb = grad + self.b_off[l]
                for i in range(n):
                    for k in range(nout):
                        gb[k] += cur[i * nout + k]
            if l > 0:
                # δ_{l-1} = (δ_l W_lᵀ) ⊙ (1 − h²)
                nxt = scratch + n * self.h_off[l - 1]
                _gemm_nt(cur, theta + self.w_off[l], n, nin, nout, nxt)
                for i in range(n * nin):
                    nxt[i] *= 1.0 - inp[i] * inp[i]
                cur = nxt
        if ld > 0:
            # Writing the (n, ld) rows, far larger than the cache, is most of the
            # cost: each thread streams through its own contiguous block of rows
            # (and takes the page faults of a fresh matrix in parallel).
            threads = num_threads   # a plain local: prange cannot name an optional argument
            for i in prange(n, num_threads=threads, schedule="static"):
                self._score_row(x, n, hid, dz, scratch, i, grad + i * ld)

    cdef void _score_row(self, const double* x, Py_ssize_t n, const double* hid,
                         const double* dz, const double* delta, Py_ssize_t i,
                         double* g) noexcept nogil:
        """g ← [x_i ⊗ δ0_i, δ0_i, h1_i ⊗ δ1_i, δ1_i, ...], row i's score."""
        cdef Py_ssize_t l, j, k, nin, nout, L = self.n_layers
        cdef const double* xi
        cdef const double* di
        cdef double xj
        for l in range(L):
            nin = self.sizes[l]
            nout = self.sizes[l + 1]
            xi = (x if l == 0 else hid + n * self.h_off[l - 1]) + i * nin
            di = (dz if l == L - 1 else delta + n * self.h_off[l]) + i * nout
            for j in range(nin):
                xj = xi[j]
                for k in range(nout):
                    g[k] = xj * di[k]
                g += nout
            for k in range(nout):
                g[k] = di[k]
            g += nout

    cdef void jvp(self, const double* theta, const double* v, const double* x,
                  Py_ssize_t n, const double* hid, double* scratch,
                  double* tz) noexcept nogil:
        """Jacobian-vector product: tz (n, out_dim) ← J_i v, the directional
        derivative of the outputs along v (forward mode; hid from forward).
        scratch: n sum_hidden doubles."""
        cdef Py_ssize_t l, i, k, nin, nout, L = self.n_layers
        cdef const double* inp = x
        cdef const double* tin = NULL
        cdef const double* b
        cdef const double* h
        cdef double* tout
        for l in range(L):
            nin = self.sizes[l]
            nout = self.sizes[l + 1]
            tout = tz if l == L - 1 else scratch + n * self.h_off[l]
            # t_{l+1} = h_l V_l + c_l + t_l W_l, then through tanh: ⊙ (1 − h_{l+1}²)
            b = v + self.b_off[l]
            for i in range(n):
                for k in range(nout):
                    tout[i * nout + k] = b[k]
            _gemm_acc(inp, v + self.w_off[l], n, nin, nout, tout)
            if tin != NULL:
                _gemm_acc(tin, theta + self.w_off[l], n, nin, nout, tout)
            if l < L - 1:
                h = hid + n * self.h_off[l]
                for i in range(n * nout):
                    tout[i] *= 1.0 - h[i] * h[i]
                inp = h
            tin = tout

    # Python entry points for value functions ------------------------------

    def predict(self, const double[::1] theta, const double[:, ::1] obs,
                double[:, ::1] z):
        """z (n, out_dim) ← network outputs."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* hid = _buffer(n * self.sum_hidden)
        self.forward_batch(&theta[0], &obs[0, 0], n, hid, &z[0, 0])
        free(hid)

    def squared_error_grad(self, const double[::1] theta, const double[:, ::1] obs,
                           const double[::1] targets, double[::1] grad):
        """Mean of ½ (z_i − y_i)² over rows (out_dim 1); grad (n_params,) ← its gradient."""
        cdef Py_ssize_t i, n = obs.shape[0]
        cdef double loss = 0.0, r
        cdef double* hid = _buffer(n * self.sum_hidden)
        cdef double* z = _buffer(n)
        cdef double* scratch = _buffer(n * self.sum_hidden)
        self.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
        with nogil:
            for i in range(n):
                r = z[i] - targets[i]
                loss += 0.5 * r * r
                z[i] = r / n
            for i in range(self.n_params):
                grad[i] = 0.0
            self.backward(&theta[0], &obs[0, 0], n, hid, z, scratch, &grad[0], 0)
        free(hid)
        free(z)
        free(scratch)
        return loss / n


# ---------------------------------------------------------------------------
# Policies
# ---------------------------------------------------------------------------

cdef class PolicyKernel:
    """The C-level policy interface (see _policies.pxd); concrete kernels override it."""

    cdef void sample(self, const double* theta, const double* obs, Py_ssize_t n,
                     bitgen_t* bitgen, double* work,
                     double* actions, double* logp) noexcept nogil:
        pass

    cdef void mode(self, const double* theta, const double* obs, Py_ssize_t n,
                   double* work, double* actions) noexcept nogil:
        pass

    cdef void sample_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                          bitgen_t** bitgens, double* work,
                          double* actions, double* logp) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            self.sample(thetas[i], obs + i * self.obs_dim, 1, bitgens[i], work,
                        actions + i * self.act_dim, logp + i)

    cdef void mode_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                        double* work, double* actions) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n):
            self.mode(thetas[i], obs + i * self.obs_dim, 1, work, actions + i * self.act_dim)


cdef inline bint _shared(const double** thetas, Py_ssize_t n) noexcept nogil:
    """True when every row has the same parameters (one policy, many env slots)."""
    cdef Py_ssize_t i
    for i in range(1, n):
        if thetas[i] != thetas[0]:
            return False
    return True


cdef class NetPolicy(PolicyKernel):
    """A policy π(a | s) = head(a | z), z = Net(θ, s). Subclasses give the head:
    its log-likelihood score, KL, entropy, Fisher metric, sampling and mode."""
    cdef readonly Net net
    cdef readonly Py_ssize_t n_extra   # head parameters after the network's (log_std)
    # A sample's randomness: act_dim draws per row, standard normal (Gaussian) or
    # uniform on [0, 1) (softmax), which head_sample turns into actions.
    cdef bint normal_noise

    cdef void _setup(self, Net net, Py_ssize_t n_extra):
        self.net = net
        self.n_extra = n_extra
        self.obs_dim = net.in_dim
        self.n_params = net.n_params + n_extra
        self.work_size = net.sum_hidden + net.out_dim

    # The head, per row of outputs z (n, out_dim) -------------------------

    cdef void head_score(self, const double* theta, const double* z, const double* actions,
                         const double* weights, Py_ssize_t n, double* dz, double* extra,
                         double* logp) noexcept nogil:
        """dz ← w_i ∂log π/∂z_i, extra (n, n_extra) ← w_i ∂log π/∂(head params),
        logp ← log π (when not NULL); weights NULL means 1."""
        pass

    cdef bint fused_scores(self, const double* theta, const double* obs,
                           const double* actions, const double* weights, Py_ssize_t n,
                           double* grad, double* rows, Py_ssize_t ld) noexcept nogil:
        """One-pass scores, for the architectures that have them: with weights,
        grad (zeroed) += Σ_i w_i ∇θ log π(a_i | s_i); without (NULL), row i of rows
        (stride ld) ← ∇θ log π(a_i | s_i). Returns False when there are none."""
        return False

    cdef void head_kl(self, const double* theta_old, const double* z_old,
                      const double* theta_new, const double* z_new, Py_ssize_t n,
                      double* kl, double* dz, double* extra) noexcept nogil:
        """kl ← KL(old ‖ new) per row; when dz is not NULL, dz (n, out_dim) and
        extra (n_extra,) ← the gradient of the mean KL with respect to z_new and the
        new head parameters."""
        pass

    cdef void head_entropy(self, const double* theta, const double* z, Py_ssize_t n,
                           double* ent) noexcept nogil:
        pass

    cdef void head_entropy_grad(self, const double* theta, const double* z, Py_ssize_t n,
                                double* dz, double* extra) noexcept nogil:
        """dz (n, out_dim) and extra (n_extra,) ← the gradient of the mean entropy
        with respect to z and the head parameters."""
        pass

    cdef void head_fisher(self, const double* theta, const double* z, Py_ssize_t n,
                          double* t, Py_ssize_t n_total) noexcept nogil:
        """t_i ← M_i t_i / n_total for the n rows, with M_i the Fisher metric of the
        head in z (n_total: the rows of the whole batch, of which these are a block)."""
        pass

    cdef void head_fisher_extra(self, const double* theta, const double* v,
                                double* out) noexcept nogil:
        """The head parameters' block of the Fisher product (no cross terms)."""
        pass

    cdef void head_sample(self, const double* theta, double* z, Py_ssize_t n,
                          double* actions, double* logp) noexcept nogil:
        """actions (n, act_dim) holds the rows' noise on entry (see normal_noise)
        and their actions on return; logp ← their log-probabilities."""
        pass

    cdef void head_mode(self, const double* theta, const double* z, Py_ssize_t n,
                        double* actions) noexcept nogil:
        pass

    # The C-level contract -------------------------------------------------

    cdef inline void draw_noise(self, bitgen_t* bitgen, Py_ssize_t n,
                                double* noise) noexcept nogil:
        cdef Py_ssize_t k
        for k in range(n * self.act_dim):
            noise[k] = (random_standard_normal(bitgen) if self.normal_noise
                        else random_standard_uniform(bitgen))

    cdef void sample(self, const double* theta, const double* obs, Py_ssize_t n,
                     bitgen_t* bitgen, double* work,
                     double* actions, double* logp) noexcept nogil:
        # The forward pass is row by row (no BLAS) and the noise is drawn in row
        # order, so a row's action does not depend on the batch it came in.
        cdef double* z = work + n * self.net.sum_hidden
        self.net.forward(theta, obs, n, work, z, False)
        self.draw_noise(bitgen, n, actions)
        self.head_sample(theta, z, n, actions, logp)

    cdef void mode(self, const double* theta, const double* obs, Py_ssize_t n,
                   double* work, double* actions) noexcept nogil:
        cdef double* z = work + n * self.net.sum_hidden
        self.net.forward(theta, obs, n, work, z, False)
        self.head_mode(theta, z, n, actions)

    cdef void sample_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                          bitgen_t** bitgens, double* work,
                          double* actions, double* logp) noexcept nogil:
        cdef Py_ssize_t i, A = self.act_dim
        for i in range(n):
            self.draw_noise(bitgens[i], 1, actions + i * A)
        cdef double* z = work + n * self.net.sum_hidden
        if _shared(thetas, n):
            self.net.forward(thetas[0], obs, n, work, z, False)
            self.head_sample(thetas[0], z, n, actions, logp)
            return
        for i in range(n):
            self.net.forward(thetas[i], obs + i * self.obs_dim, 1, work, z, False)
            self.head_sample(thetas[i], z, 1, actions + i * A, logp + i)

    cdef void mode_rows(self, const double** thetas, const double* obs, Py_ssize_t n,
                        double* work, double* actions) noexcept nogil:
        cdef Py_ssize_t i
        cdef double* z = work + n * self.net.sum_hidden
        if _shared(thetas, n):
            self.mode(thetas[0], obs, n, work, actions)
            return
        for i in range(n):
            self.net.forward(thetas[i], obs + i * self.obs_dim, 1, work, z, False)
            self.head_mode(thetas[i], z, 1, actions + i * self.act_dim)

    # Python entry points (arrays checked by pgfast/policies.py) ----------

    def sample_into(self, const double[::1] theta, const double[:, ::1] obs, rng,
                    double[:, ::1] actions, double[::1] logp):
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* work = _buffer(n * self.work_size)
        cdef bitgen_t* bitgen = _bitgen(rng)
        with rng.bit_generator.lock, nogil:
            self.sample(&theta[0], &obs[0, 0], n, bitgen, work, &actions[0, 0], &logp[0])
        free(work)

    def mode_into(self, const double[::1] theta, const double[:, ::1] obs,
                  double[:, ::1] actions):
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* work = _buffer(n * self.work_size)
        with nogil:
            self.mode(&theta[0], &obs[0, 0], n, work, &actions[0, 0])
        free(work)

    def outputs_into(self, const double[::1] theta, const double[:, ::1] obs,
                     double[:, ::1] z):
        self.net.predict(theta, obs, z)

    def log_prob_into(self, const double[::1] theta, const double[:, ::1] obs,
                      const double[:, ::1] actions, double[::1] logp):
        cdef Py_ssize_t n = obs.shape[0], m = self.net.out_dim
        cdef double* hid = _buffer(n * self.net.sum_hidden)
        cdef double* z = _buffer(2 * n * m + n * self.n_extra)
        self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
        with nogil:
            self.head_score(&theta[0], z, &actions[0, 0], NULL, n, z + n * m,
                            z + 2 * n * m, &logp[0])
        free(hid)
        free(z)

    def grad_log_prob_into(self, const double[::1] theta, const double[:, ::1] obs,
                           const double[:, ::1] actions, weights, double[::1] grad,
                           double[:, ::1] rows, int num_threads=1):
        """weights None: rows (n, n_params) ← ∇θ log π(a_i | s_i), written by
        num_threads threads. Otherwise grad (n_params,) ← Σ_i w_i ∇θ log π(a_i | s_i),
        without rows."""
        cdef Py_ssize_t i, k, n = obs.shape[0], m = self.net.out_dim
        cdef Py_ssize_t P = self.n_params, p_net = self.net.n_params, ne = self.n_extra
        cdef const double[::1] w
        cdef const double* wp = NULL
        if weights is not None:
            w = weights
            wp = &w[0]
        cdef bint done = False
        with nogil:
            if wp != NULL:
                for i in range(P):
                    grad[i] = 0.0
            done = self.fused_scores(&theta[0], &obs[0, 0], &actions[0, 0], wp, n,
                                     &grad[0], &rows[0, 0], P)
        if done:
            return
        cdef double* hid = _buffer(n * self.net.sum_hidden)
        cdef double* z = _buffer(2 * n * m)
        cdef double* extra = _buffer(n * ne)
        cdef double* scratch = _buffer(n * self.net.sum_hidden)
        self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
        with nogil:
            self.head_score(&theta[0], z, &actions[0, 0], wp, n, z + n * m, extra, NULL)
            if wp == NULL:
                self.net.backward(&theta[0], &obs[0, 0], n, hid, z + n * m, scratch,
                                  &rows[0, 0], P, num_threads)
                for i in range(n):
                    for k in range(ne):
                        rows[i, p_net + k] = extra[i * ne + k]
            else:
                self.net.backward(&theta[0], &obs[0, 0], n, hid, z + n * m, scratch,
                                  &grad[0], 0)
                for i in range(n):
                    for k in range(ne):
                        grad[p_net + k] += extra[i * ne + k]
        free(hid)
        free(z)
        free(extra)
        free(scratch)

    def kl_into(self, const double[::1] theta_old, const double[::1] theta_new,
                const double[:, ::1] obs, double[::1] kl, grad):
        """kl (n,) ← KL(π_old(·|s_i) ‖ π_new(·|s_i)); grad (n_params,) or None ←
        the gradient of the mean KL with respect to theta_new."""
        cdef Py_ssize_t i, n = obs.shape[0], m = self.net.out_dim
        cdef Py_ssize_t p_net = self.net.n_params
        cdef double[::1] g
        cdef double* gp = NULL
        if grad is not None:
            g = grad
            gp = &g[0]
        cdef double* hid = _buffer(2 * n * self.net.sum_hidden)
        cdef double* z = _buffer(3 * n * m)
        cdef double* scratch = _buffer(n * self.net.sum_hidden)
        cdef double* hid_new = hid + n * self.net.sum_hidden
        self.net.forward_batch(&theta_old[0], &obs[0, 0], n, hid, z)
        self.net.forward_batch(&theta_new[0], &obs[0, 0], n, hid_new, z + n * m)
        with nogil:
            if gp == NULL:
                self.head_kl(&theta_old[0], z, &theta_new[0], z + n * m, n, &kl[0],
                             NULL, NULL)
            else:
                for i in range(self.n_params):
                    gp[i] = 0.0
                self.head_kl(&theta_old[0], z, &theta_new[0], z + n * m, n, &kl[0],
                             z + 2 * n * m, gp + p_net)
                self.net.backward(&theta_new[0], &obs[0, 0], n, hid_new, z + 2 * n * m,
                                  scratch, gp, 0)
        free(hid)
        free(z)
        free(scratch)

    def entropy_into(self, const double[::1] theta, const double[:, ::1] obs,
                     double[::1] ent):
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* hid = _buffer(n * self.net.sum_hidden)
        cdef double* z = _buffer(n * self.net.out_dim)
        self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
        with nogil:
            self.head_entropy(&theta[0], z, n, &ent[0])
        free(hid)
        free(z)

    def entropy_grad_into(self, const double[::1] theta, const double[:, ::1] obs,
                          double[::1] grad):
        """grad (n_params,) ← ∇θ (1/n) Σ_i H(π(·|s_i))."""
        cdef Py_ssize_t i, n = obs.shape[0], m = self.net.out_dim
        cdef double* hid = _buffer(n * self.net.sum_hidden)
        cdef double* z = _buffer(2 * n * m)
        cdef double* scratch = _buffer(n * self.net.sum_hidden)
        self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
        with nogil:
            for i in range(self.n_params):
                grad[i] = 0.0
            self.head_entropy_grad(&theta[0], z, n, z + n * m, &grad[0] + self.net.n_params)
            self.net.backward(&theta[0], &obs[0, 0], n, hid, z + n * m, scratch, &grad[0], 0)
        free(hid)
        free(z)
        free(scratch)

    # Fisher-vector products split the batch into num_threads blocks of
    # consecutive rows, block k starting at row k n / num_threads; its forward
    # pass (hidden activations, then outputs) starts at row_start (sum_hidden +
    # out_dim) in the cache, so one block is the whole batch's usual layout.

    def forward_into(self, const double[::1] theta, const double[:, ::1] obs,
                     double[::1] cache, int num_threads=1):
        """cache (n (sum_hidden + out_dim),) ← the forward pass, block by block, for
        fvp_into calls that share theta and obs (conjugate gradient)."""
        cdef Py_ssize_t n = obs.shape[0]
        if num_threads == 1:   # numpy's SIMD tanh needs the GIL
            self.net.forward_batch(&theta[0], &obs[0, 0], n, &cache[0],
                                   &cache[0] + n * self.net.sum_hidden)
            return
        with nogil:
            self._forward_blocks(&theta[0], &obs[0, 0], n, &cache[0], num_threads)

    cdef void _forward_blocks(self, const double* theta, const double* obs, Py_ssize_t n,
                              double* cache, int num_threads) noexcept nogil:
        cdef Py_ssize_t k, r0, nb, D = self.obs_dim, width = self.net.sum_hidden + self.net.out_dim
        for k in prange(num_threads, num_threads=num_threads, schedule="static"):
            r0 = k * n // num_threads
            nb = (k + 1) * n // num_threads - r0
            self.net.forward(theta, obs + r0 * D, nb, cache + r0 * width,
                             cache + r0 * width + nb * self.net.sum_hidden, True)

    def fvp_into(self, const double[::1] theta, const double[:, ::1] obs,
                 const double[::1] v, double[::1] out, double[::1] cache=None,
                 int num_threads=1):
        """out ← F v, F = (1/n) Σ_i J_iᵀ M_i J_i (+ the head block): J_i the Jacobian
        of the outputs at s_i, M_i the Fisher metric of the head distribution.
        cache: the forward pass from forward_into with the same num_threads, or
        None to compute it here. Each of the num_threads threads takes a block of
        rows into its own sum; the sums are added in block order."""
        cdef Py_ssize_t k, i, n = obs.shape[0], m = self.net.out_dim, P = self.n_params
        cdef Py_ssize_t sh = self.net.sum_hidden
        cdef double* own = NULL
        cdef double* fwd
        if cache is None:
            own = _buffer(n * (sh + m))
            fwd = own
            self.forward_into(theta, obs, <double[:n * (sh + m)]> own, num_threads)
        else:
            fwd = &cache[0]
        # per block: its JVP t and back-propagated δ (at its rows' offsets), its sum
        cdef double* t = _buffer(n * m)
        cdef double* scratch = _buffer(n * sh)
        cdef double* sums = _buffer(num_threads * P)
        with nogil:
            self._fvp_blocks(&theta[0], &v[0], &obs[0, 0], n, fwd, t, scratch, sums,
                             num_threads)
            for i in range(P):
                out[i] = sums[i]
            for k in range(1, num_threads):
                for i in range(P):
                    out[i] += sums[k * P + i]
            self.head_fisher_extra(&theta[0], &v[0], &out[0])
        free(own)
        free(t)
        free(scratch)
        free(sums)

    cdef void _fvp_blocks(self, const double* theta, const double* v, const double* obs,
                          Py_ssize_t n, const double* fwd, double* t, double* scratch,
                          double* sums, int num_threads) noexcept nogil:
        cdef Py_ssize_t k, i, r0, nb, D = self.obs_dim, m = self.net.out_dim, P = self.n_params
        cdef Py_ssize_t sh = self.net.sum_hidden
        cdef const double* hid
        for k in prange(num_threads, num_threads=num_threads, schedule="static"):
            r0 = k * n // num_threads
            nb = (k + 1) * n // num_threads - r0
            hid = fwd + r0 * (sh + m)
            self.net.jvp(theta, v, obs + r0 * D, nb, hid, scratch + r0 * sh, t + r0 * m)
            self.head_fisher(theta, hid + nb * sh, nb, t + r0 * m, n)
            for i in range(P):
                sums[k * P + i] = 0.0
            self.net.backward(theta, obs + r0 * D, nb, hid, t + r0 * m, scratch + r0 * sh,
                              sums + k * P, 0)

    def vjp_rows_into(self, const double[::1] theta, const double[:, ::1] obs,
                      const double[:, ::1] dz, double[:, ::1] rows):
        """rows (n, n_params) ← J_iᵀ dz_i in the network columns (head columns untouched)."""
        cdef Py_ssize_t n = obs.shape[0]
        cdef double* hid = _buffer(n * self.net.sum_hidden)
        cdef double* z = _buffer(n * self.net.out_dim)
        cdef double* scratch = _buffer(n * self.net.sum_hidden)
        self.net.forward_batch(&theta[0], &obs[0, 0], n, hid, z)
        with nogil:
            self.net.backward(&theta[0], &obs[0, 0], n, hid, &dz[0, 0], scratch,
                              &rows[0, 0], self.n_params)
        free(hid)
        free(z)
        free(scratch)


cdef inline Py_ssize_t _argmax(const double* z, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k, best = 0
    for k in range(1, K):
        if z[k] > z[best]:
            best = k
    return best


cdef inline double _log1p_unit(double x) noexcept nogil:
    """log(1 + x) for x in [0, 1] within about an ulp, from one log: with u = fl(1 + x),
    log(u) · x / (u − 1) corrects the rounding of 1 + x (Goldberg 1991, "What every
    computer scientist should know about floating-point arithmetic", thm. 4).
    glibc's log1p costs several times a log, and this sits in the rollout loop."""
    cdef double u = 1.0 + x
    if u == 1.0:
        return x
    return log(u) * (x / (u - 1.0))


cdef inline double _softmax_row(const double* z, Py_ssize_t K, double* e) noexcept nogil:
    """e_k ← exp(z_k − max z); returns s = Σ_{k ≠ argmax} e_k, so that
    Σ_k e_k = 1 + s and log Σ_k e_k = log1p(s), exact when the others are tiny."""
    cdef Py_ssize_t k, best = _argmax(z, K)
    cdef double m = z[best], s = 0.0
    for k in range(K):
        if k == best:
            e[k] = 1.0
        else:
            e[k] = exp(z[k] - m)
            s += e[k]
    return s


cdef inline double _logsumexp(const double* z, Py_ssize_t K) noexcept nogil:
    """log Σ_k exp(z_k), shifted by max z so that no exp overflows."""
    cdef Py_ssize_t k
    cdef double m = z[_argmax(z, K)], s = 0.0
    for k in range(K):
        s += exp(z[k] - m)
    return m + log(s)


cdef inline void _binary_scores(const double* theta, const double* obs,
                                const double* actions, const double* weights,
                                Py_ssize_t n, Py_ssize_t D, double* grad, double* rows,
                                Py_ssize_t ld) noexcept nogil:
    """NetPolicy.fused_scores for a linear softmax with two actions."""
    if weights != NULL:
        _binary_score_sum(theta, obs, actions, weights, n, D, grad)
    else:
        _binary_score_rows(theta, obs, actions, n, D, rows, ld)


cdef inline void _binary_score_sum(const double* theta, const double* obs,
                                   const double* actions, const double* weights,
                                   Py_ssize_t n, Py_ssize_t D, double* grad) noexcept nogil:
    """grad ← Σ_i w_i ∇θ log π(a_i | s_i) for a linear softmax with two actions.

    With t = z_1 − z_0, p_1 = σ(t) and ∂ log π/∂z = (a − p_1)·(−1, 1), so one pass
    sums only the column-1 gradients; column 0 is their negative. Local arrays,
    not grad's interleaved slots, so that loads never straddle the store of the
    previous row (a store-forwarding stall).
    """
    cdef Py_ssize_t i, i0, m, j
    cdef double t, db, gb = 0.0, gb2 = 0.0
    cdef double dw[_FUSED_MAX_OBS]
    cdef double acc[_FUSED_MAX_OBS]
    cdef double acc2[_FUSED_MAX_OBS]
    cdef double d[_FUSED_BLOCK]
    cdef const double* x
    db = theta[2 * D + 1] - theta[2 * D]
    for j in range(D):
        dw[j] = theta[2 * j + 1] - theta[2 * j]
        acc[j] = 0.0
        acc2[j] = 0.0
    # blocks of rows: the middle loop (the sigmoid) has no calls and vectorises
    i0 = 0
    while i0 < n:
        m = min(<Py_ssize_t> _FUSED_BLOCK, n - i0)
        x = obs + i0 * D
        for i in range(m):
            t = db
            for j in range(D):
                t += x[i * D + j] * dw[j]
            d[i] = t
        for i in range(m):
            d[i] = weights[i0 + i] * (actions[i0 + i] - _sigmoid(d[i]))
        # even and odd rows into separate sums: two independent dependency chains
        for i in range(0, m - 1, 2):
            for j in range(D):
                acc[j] += x[i * D + j] * d[i]
                acc2[j] += x[(i + 1) * D + j] * d[i + 1]
            gb += d[i]
            gb2 += d[i + 1]
        if m % 2:
            for j in range(D):
                acc[j] += x[(m - 1) * D + j] * d[m - 1]
            gb += d[m - 1]
        i0 += m
    for j in range(D):
        grad[2 * j] = -(acc[j] + acc2[j])
        grad[2 * j + 1] = acc[j] + acc2[j]
    grad[2 * D] = -(gb + gb2)
    grad[2 * D + 1] = gb + gb2


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
        d = actions[i] - _sigmoid(t)
        g = rows + i * ld
        for j in range(D):
            g[2 * j] = -(x[j] * d)
            g[2 * j + 1] = x[j] * d
        g[2 * D] = -d
        g[2 * D + 1] = d


cdef class SoftmaxKernel(NetPolicy):
    """π(a | s) = softmax(z)_a, z = Net(θ, s) the logits; actions stored as doubles."""

    def __init__(self, Py_ssize_t obs_dim, Py_ssize_t n_actions, hidden=()):
        self._setup(Net([obs_dim, *hidden, n_actions]), 0)
        self.act_dim = 1
        self.n_actions = n_actions

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
            s = _softmax_row(zi, K, d)
            if logp != NULL:
                logp[i] = zi[a] - zi[_argmax(zi, K)] - log1p(s)
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
        if D == 2:
            _binary_scores(theta, obs, actions, weights, n, 2, grad, rows, ld)
        elif D == 3:
            _binary_scores(theta, obs, actions, weights, n, 3, grad, rows, ld)
        elif D == 4:
            _binary_scores(theta, obs, actions, weights, n, 4, grad, rows, ld)
        elif D == 6:
            _binary_scores(theta, obs, actions, weights, n, 6, grad, rows, ld)
        else:
            _binary_scores(theta, obs, actions, weights, n, D, grad, rows, ld)
        return True

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
            lo = _logsumexp(zo, K)
            ln = _logsumexp(zn, K)
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
            lse = _logsumexp(zi, K)
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
            lse = _logsumexp(zi, K)
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
            lse = _logsumexp(zi, K)
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
        if self.net.n_layers != 1 or self.n_actions != 2 or not _shared(thetas, n):
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
                e = _exp_neg_abs(d)
                top0 = zi[0] >= zi[1]
                pick1 = not (select(top0, 1.0, e) > actions[i] * (1.0 + e))
                actions[i] = pick1
                zi[1] = select(pick1 == top0, fabs(d), 0.0)
                zi[0] = e
            for i in range(n):
                # log π(a) = (z_a − max z) − log(1 + e)
                logp[i] = -_log1p_unit(z[2 * i]) - z[2 * i + 1]
            return
        for i in range(n):
            zi = z + i * K
            s = _softmax_row(zi, K, zi)  # zi now holds e_k = exp(z_k − max z)
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
            actions[i] = _argmax(z + i * self.n_actions, self.n_actions)


cdef class GaussianKernel(NetPolicy):
    """π(a | s) = N(a; μ, diag σ²), μ = Net(θ, s), log σ a state-independent vector:
    the last act_dim entries of θ (learn_std) or fixed in the kernel."""
    cdef readonly bint learn_std
    cdef double* fixed_log_std

    def __cinit__(self):
        self.fixed_log_std = NULL

    def __init__(self, Py_ssize_t obs_dim, Py_ssize_t act_dim, hidden=(), log_std=None,
                 bint learn_std=True):
        cdef Py_ssize_t k
        self._setup(Net([obs_dim, *hidden, act_dim]), act_dim if learn_std else 0)
        self.act_dim = act_dim
        self.n_actions = 0
        self.normal_noise = True
        self.learn_std = learn_std
        self.fixed_log_std = _buffer(act_dim)
        ls = np.zeros(act_dim) if log_std is None else np.broadcast_to(log_std, (act_dim,))
        for k in range(act_dim):
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
                lp -= 0.5 * u * u + ls[k] + 0.5 * _LOG_2PI
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
            h += ls[k] + 0.5 * (1.0 + _LOG_2PI)
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
                lp -= 0.5 * eps * eps + ls[k] + 0.5 * _LOG_2PI
            logp[i] = lp

    cdef void head_mode(self, const double* theta, const double* z, Py_ssize_t n,
                        double* actions) noexcept nogil:
        cdef Py_ssize_t i
        for i in range(n * self.act_dim):
            actions[i] = z[i]
