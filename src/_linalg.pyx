# cython: language_level=3
"""Dense linear-algebra kernels: batched minimum-norm least squares (pinv solve).

The Python wrapper in ``pgfast/gradients.py`` validates; these kernels trust
their inputs: C-contiguous float64 arrays of matching shape, m >= 1, n >= 1.
LAPACK and BLAS come from ``scipy.linalg.cython_lapack`` / ``cython_blas``.
"""
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dtrmv
from scipy.linalg.cython_lapack cimport dgelsd, dgeqr2, dorm2r, dtrti2

# The QR fast path is taken only when rcond * ||R||_F * ||R^-1||_F < _MARGIN:
# since ||R||_F >= s_max and ||R^-1||_F >= 1 / s_min, every singular value then
# lies a factor 1 / _MARGIN above the cutoff, far beyond rounding in R and R^-1.
cdef double _MARGIN = 1e-3


cdef double _upper_frobenius(const double* r, int n, int ld) noexcept nogil:
    cdef double acc = 0.0
    cdef int i, j
    for j in range(n):
        for i in range(j + 1):
            acc += r[i + j * ld] * r[i + j * ld]
    return acc ** 0.5


cdef bint _qr_solve(
    const double* a, const double* y, int m, int n, double rcond,
    double* mat, double* tau, double* rinv, double* rhs, double* work,
) noexcept nogil:
    """pinv(a) y by Householder QR when a provably has full rank min(m, n) with
    no singular value near the cutoff (then pinv(a) = R^-1 Q^T for m >= n and
    Q R^-T for m < n exactly). Writes x to rhs[:n]; returns False to ask for
    the SVD route instead."""
    cdef int k = m if m < n else n, ld = m if m > n else n, one = 1, info = 0, i, j
    cdef int cols = n + 1
    cdef char side = b'L', notrans = b'N', trans = b'T', upper = b'U'
    if m >= n:
        # QR of [a | y] (m x (n + 1), column-major): its last column becomes
        # Q^T y in rows 0..n-1 (later reflectors touch rows >= n only).
        for i in range(m):
            for j in range(n):
                mat[i + j * m] = a[i * n + j]
            mat[i + n * m] = y[i]
        dgeqr2(&m, &cols, mat, &m, tau, work, &info)
    else:
        # QR of a^T (n x m): the row-major a is a^T in column-major order.
        memcpy(mat, a, <size_t> m * n * sizeof(double))
        dgeqr2(&n, &m, mat, &n, tau, work, &info)
    for j in range(k):
        for i in range(k):
            rinv[i + j * k] = mat[i + j * ld] if i <= j else 0.0
    dtrti2(&upper, &notrans, &k, rinv, &k, &info)
    if info != 0:
        return False
    if not (rcond * _upper_frobenius(mat, k, ld) * _upper_frobenius(rinv, k, k) < _MARGIN):
        return False   # also when a norm overflowed to inf or NaN
    if m >= n:
        # x = R^-1 (Q^T y)[:n]
        memcpy(rhs, &mat[n * m], <size_t> n * sizeof(double))
        dtrmv(&upper, &notrans, &notrans, &n, rinv, &n, rhs, &one)
    else:
        # x = Q [R^-T y; 0]
        memcpy(rhs, y, <size_t> m * sizeof(double))
        dtrmv(&upper, &trans, &notrans, &m, rinv, &m, rhs, &one)
        for i in range(m, n):
            rhs[i] = 0.0
        dorm2r(&side, &notrans, &n, &one, &m, mat, &n, tau, rhs, &n, work, &info)
    return True


def pinv_solve(
    const double[:, :, ::1] a,   # IN  (K, m, n) row-major design matrices
    const double[:, ::1] y,      # IN  (K, m) right-hand sides
    double rcond,
    double[:, ::1] out,          # OUT (K, n) x_k = pinv(a_k) y_k
    signed char[::1] route,      # OUT (K,) 1: QR fast path, 0: SVD (dgelsd)
):
    """x_k = pinv(a_k) y_k for every k.

    Well-conditioned problems (the usual case) are solved by Householder QR
    (dgeqr2 on [a | y], dtrti2; dorm2r for m < n), which equals the pseudoinverse solution when the
    full rank is proven by the norm test above. Every other problem goes to
    LAPACK dgelsd (SVD, divide and conquer): the minimum-norm least-squares
    solution with singular values s_i <= rcond * s_1 treated as zero, the cutoff
    numpy.linalg.pinv applies. Workspaces are allocated once for the batch.

    Returns the index of the first problem whose SVD did not converge, or -1.
    """
    cdef int K = <int> a.shape[0], m = <int> a.shape[1], n = <int> a.shape[2]
    cdef int small = m if m < n else n, big = m if m > n else n
    cdef int nrhs = 1, lwork = -1, info = 0, rank = 0, iquery = 0
    cdef int k, i, j, failed = -1
    cdef double query = 0.0
    cdef double* mat = NULL
    cdef double* rhs = NULL
    cdef double* sv = NULL
    cdef double* rinv = NULL
    cdef double* tau = NULL
    cdef double* work = NULL
    cdef int* iwork = NULL
    try:
        with nogil:
            mat = <double*> malloc(<size_t> big * (small + 1) * sizeof(double))
            tau = <double*> malloc(<size_t> (small + 1) * sizeof(double))
            rhs = <double*> malloc(<size_t> big * sizeof(double))
            sv = <double*> malloc(<size_t> small * sizeof(double))
            rinv = <double*> malloc(<size_t> small * small * sizeof(double))
            if mat != NULL and tau != NULL and rhs != NULL and sv != NULL and rinv != NULL:
                # dgelsd's workspace query: the optimal lwork and the minimal liwork.
                dgelsd(&m, &n, &nrhs, mat, &m, rhs, &big, sv, &rcond, &rank,
                       &query, &lwork, &iquery, &info)
                lwork = (<int> query if <int> query > big else big) + 1
                work = <double*> malloc(<size_t> lwork * sizeof(double))
                iwork = <int*> malloc(<size_t> (iquery if iquery > 1 else 1) * sizeof(int))
        if (mat == NULL or tau == NULL or rhs == NULL or sv == NULL or rinv == NULL
                or work == NULL or iwork == NULL):
            raise MemoryError()
        with nogil:
            for k in range(K):
                if _qr_solve(&a[k, 0, 0], &y[k, 0], m, n, rcond, mat, tau, rinv, rhs, work):
                    route[k] = 1
                else:
                    route[k] = 0
                    for i in range(m):
                        for j in range(n):
                            mat[i + j * m] = a[k, i, j]
                        rhs[i] = y[k, i]
                    dgelsd(&m, &n, &nrhs, mat, &m, rhs, &big, sv, &rcond, &rank,
                           work, &lwork, iwork, &info)
                    if info != 0:
                        failed = k
                        break
                for j in range(n):
                    out[k, j] = rhs[j]
    finally:
        free(mat); free(tau); free(rhs); free(sv); free(rinv); free(work); free(iwork)
    return failed
