# Fast scalar math and dense row-major products shared by the network
# (_net.pyx) and the policy heads (_softmax.pyx, _gaussian.pyx). Everything here
# is `cdef inline ... noexcept nogil`, compiled into each module that cimports
# it, so the loops that call it still vectorise; there is no _math module.
from libc.math cimport copysign, exp, fabs, log
from scipy.linalg.cython_blas cimport dgemm

# c ? a : b as a C expression, which the compiler turns into a blend, so a loop
# using it still vectorises (Cython writes its conditional expression as a branch).
cdef extern from *:
    """
    static inline double pgfast_select(int c, double a, double b) { return c ? a : b; }
    """
    double select "pgfast_select"(bint c, double a, double b) noexcept nogil

# Below this many weights in a layer a plain loop beats the cost of a BLAS call
# (the linear policies: obs_dim x n_actions is tiny, N is large).
cdef enum:
    BLAS_MIN = 64


# ---------------------------------------------------------------------------
# tanh: the hidden-layer activation is most of an MLP's cost after BLAS, and
# libm's tanh (a call into expm1 with branches) costs several times this one.
# ---------------------------------------------------------------------------

cdef union _Bits:
    double d
    unsigned long long u



cdef inline double expm1_reduced(double y, double* scale) noexcept nogil:
    """For −709 < y ≤ 0: returns expm1(r) and sets scale = 2^k, where y = k ln 2 + r,
    |r| ≤ ln2/2 (Cody–Waite). Then exp(y) = scale (1 + expm1(r)) and
    expm1(y) = scale expm1(r) + (scale − 1), neither with cancellation.

    expm1(r) = r + r² Σ_{j=0..11} r^j / (j+2)! (truncation below 1e-17 relative),
    the sum in Estrin's scheme: a short dependency chain, so that consecutive
    elements overlap in the pipeline.
    """
    cdef double INV_LN2 = 1.4426950408889634
    cdef double LN2_HI = 6.93147180369123816490e-01  # ln 2 = LN2_HI + LN2_LO; k·LN2_HI is exact
    cdef double LN2_LO = 1.90821492927058770002e-10
    cdef double ROUND = 6755399441055744.0  # 1.5·2^52: (x + ROUND) − ROUND rounds x
    cdef double r, r2, r4, p
    cdef _Bits t, two_k
    t.d = y * INV_LN2 + ROUND      # the low bits of t hold k = round(y / ln 2)
    r = (y - (t.d - ROUND) * LN2_HI) - (t.d - ROUND) * LN2_LO
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


cdef inline double fast_tanh(double x) noexcept nogil:
    """tanh(x) within a few ulp, several times faster than libm's:
    tanh|x| = −e / (2 + e) with e = expm1(−2|x|); |x| is clamped at 22, where
    tanh rounds to 1. NaN stays NaN."""
    cdef double a = fabs(x), scale, e
    if a > 22.0:
        a = 22.0
    e = expm1_reduced(-2.0 * a, &scale)
    e = scale * e + (scale - 1.0)
    return copysign(-e / (2.0 + e), x)


cdef inline double exp_neg_abs(double t) noexcept nogil:
    """exp(−|t|) ∈ (0, 1] with no call, so loops over it vectorise; |t| is clamped
    at 700, where exp(−|t|) is already negligible next to 1."""
    cdef double a = fabs(t), scale, e
    if a > 700.0:
        a = 700.0
    e = expm1_reduced(-a, &scale)
    return scale * e + scale


cdef inline double sigmoid(double t) noexcept nogil:
    """σ(t) = 1 / (1 + exp(−t)) from e = exp(−|t|), accurate in both tails."""
    cdef double e = exp_neg_abs(t)
    return (1.0 if t >= 0.0 else e) / (1.0 + e)


cdef inline Py_ssize_t argmax(const double* z, Py_ssize_t K) noexcept nogil:
    cdef Py_ssize_t k, best = 0
    for k in range(1, K):
        if z[k] > z[best]:
            best = k
    return best


cdef inline double log1p_unit(double x) noexcept nogil:
    """log(1 + x) for x in [0, 1] within about an ulp, from one log: with u = fl(1 + x),
    log(u) · x / (u − 1) corrects the rounding of 1 + x (Goldberg 1991, "What every
    computer scientist should know about floating-point arithmetic", thm. 4).
    glibc's log1p costs several times a log, and this sits in the rollout loop."""
    cdef double u = 1.0 + x
    if u == 1.0:
        return x
    return log(u) * (x / (u - 1.0))


cdef inline double softmax_row(const double* z, Py_ssize_t K, double* e) noexcept nogil:
    """e_k ← exp(z_k − max z); returns s = Σ_{k ≠ argmax} e_k, so that
    Σ_k e_k = 1 + s and log Σ_k e_k = log1p(s), exact when the others are tiny."""
    cdef Py_ssize_t k, best = argmax(z, K)
    cdef double m = z[best], s = 0.0
    for k in range(K):
        if k == best:
            e[k] = 1.0
        else:
            e[k] = exp(z[k] - m)
            s += e[k]
    return s


cdef inline double logsumexp(const double* z, Py_ssize_t K) noexcept nogil:
    """log Σ_k exp(z_k), shifted by max z so that no exp overflows."""
    cdef Py_ssize_t k
    cdef double m = z[argmax(z, K)], s = 0.0
    for k in range(K):
        s += exp(z[k] - m)
    return m + log(s)



# ---------------------------------------------------------------------------
# Dense linear algebra on row-major blocks
# ---------------------------------------------------------------------------

cdef inline void gemm_acc(const double* X, const double* W, Py_ssize_t n, Py_ssize_t nin,
                    Py_ssize_t nout, double* Y, bint blas=True) noexcept nogil:
    """Y (n, nout) += X (n, nin) @ W (nin, nout); blas=False: row by row, so that
    each row's result does not depend on n."""
    cdef int m_ = <int> nout, n_ = <int> n, k_ = <int> nin
    cdef double one = 1.0
    cdef char tn = b'N'
    cdef Py_ssize_t i, j, k
    cdef double* y
    cdef const double* x
    if blas and n > 1 and nin * nout >= BLAS_MIN:
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


cdef inline void gemm_tn_acc(const double* X, const double* D, Py_ssize_t n, Py_ssize_t nin,
                       Py_ssize_t nout, double* G) noexcept nogil:
    """G (nin, nout) += X (n, nin)ᵀ @ D (n, nout): the summed weight gradient."""
    cdef int m_ = <int> nout, n_ = <int> nin, k_ = <int> n
    cdef double one = 1.0
    cdef char tn = b'N', tt = b'T'
    cdef Py_ssize_t i, j, k
    cdef double xij
    cdef double* g
    cdef const double* d
    if n > 1 and nin * nout >= BLAS_MIN:
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


cdef inline void gemm_nt(const double* D, const double* W, Py_ssize_t n, Py_ssize_t nin,
                   Py_ssize_t nout, double* R) noexcept nogil:
    """R (n, nin) = D (n, nout) @ W (nin, nout)ᵀ: back-propagation through a layer."""
    cdef int m_ = <int> nin, n_ = <int> n, k_ = <int> nout
    cdef double one = 1.0, zero = 0.0
    cdef char tn = b'N', tt = b'T'
    cdef Py_ssize_t i, j, k
    cdef double s
    cdef const double* d
    cdef const double* w
    if n > 1 and nin * nout >= BLAS_MIN:
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
