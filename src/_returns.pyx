# cython: language_level=3
"""Kernels for returns and advantages over time-major (T, B) buffers.

The Python wrappers in ``pgfast/returns.py`` validate; these kernels trust
their inputs: C-contiguous arrays of matching shape, flags as uint8 0/1.
Sums are carried in double precision whatever the storage dtype.
"""
from cython cimport floating
from libc.stdlib cimport calloc, free


cdef double* _carry(Py_ssize_t n) except NULL:
    # The row carries come from calloc here, not from pgfast._common: a pointer the
    # compiler sees returned by calloc aliases no input, so the row loops vectorise
    # (through _common's imported function they ran 3x slower, unvectorised).
    cdef double* p = <double*> calloc(n if n > 0 else 1, sizeof(double))
    if p == NULL:
        raise MemoryError(f"could not allocate {n} doubles of kernel scratch")
    return p


def reward_to_go(
    const floating[:, ::1] rewards,          # IN  (T, B)
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    const floating[:, ::1] next_values,      # IN  (T, B), or (0, B) for no bootstrap
    double gamma,
    floating[:, ::1] out,                    # OUT (T, B)
):
    """G_t = r_t + γ(1 − done_t) G_{t+1}; a truncated or unfinished episode
    bootstraps with γ V(s_{t+1}) when next_values is given.

    Returns False when some output is not finite. A NaN or infinite input
    reaches the output at its own step (0·x is NaN for such x), so the wrapper
    learns of bad input from this one pass instead of scanning every input."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], t
    cdef const floating* nv
    cdef bint finite
    cdef double* g = NULL  # G_{t+1} per env, then 0·G per env (the finiteness probe)
    if T == 0:
        return True
    try:
        g = _carry(2 * B)
        with nogil:
            for t in range(T - 1, -1, -1):
                nv = &next_values[t, 0] if next_values.shape[0] == T else NULL
                _rtg_row(&rewards[t, 0], &terminated[t, 0], &truncated[t, 0], nv,
                         gamma, t == T - 1, B, g, g + B, &out[t, 0])
            finite = _all_zero(g + B, B)
    finally:
        free(g)
    return finite


cdef inline void _rtg_row(
    const floating* r, const unsigned char* term, const unsigned char* trunc,
    const floating* nv, double gamma, bint last, Py_ssize_t B,
    double* g, double* probe, floating* out,
) noexcept nogil:
    # Branch-free so the compiler vectorises the row: flags become 0/1 weights.
    cdef Py_ssize_t b
    cdef double carry = 0.0 if last else gamma   # the buffer's end cuts every episode
    cdef unsigned char cut = 1 if last else 0
    if nv == NULL:
        for b in range(B):
            g[b] = r[b] + carry * <double> (1 - (term[b] | trunc[b])) * g[b]
            out[b] = <floating> g[b]
            probe[b] += 0.0 * out[b]
    else:
        for b in range(B):
            g[b] = (r[b] + gamma * <double> ((1 - term[b]) & (trunc[b] | cut)) * nv[b]
                    + carry * <double> (1 - (term[b] | trunc[b])) * g[b])
            out[b] = <floating> g[b]
            probe[b] += 0.0 * out[b]


def gae(
    const floating[:, ::1] rewards,          # IN  (T, B)
    const floating[:, ::1] values,           # IN  (T, B)  V(s_t)
    const floating[:, ::1] next_values,      # IN  (T, B)  V(s_{t+1})
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    double gamma,
    double lam,
    floating[:, ::1] out,                    # OUT (T, B)
):
    """δ_t = r_t + γ(1 − terminated_t) V(s_{t+1}) − V(s_t);
    A_t = δ_t + γλ(1 − done_t) A_{t+1}.

    Returns False when some output is not finite (see reward_to_go)."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], t
    cdef bint finite
    cdef double* a = NULL  # A_{t+1} per env, then the finiteness probe
    if T == 0:
        return True
    try:
        a = _carry(2 * B)
        with nogil:
            for t in range(T - 1, -1, -1):
                _gae_row(&rewards[t, 0], &values[t, 0], &next_values[t, 0],
                         &terminated[t, 0], &truncated[t, 0],
                         gamma, gamma * lam, t == T - 1, B, a, a + B, &out[t, 0])
            finite = _all_zero(a + B, B)
    finally:
        free(a)
    return finite


cdef inline void _gae_row(
    const floating* r, const floating* v, const floating* nv,
    const unsigned char* term, const unsigned char* trunc,
    double gamma, double gl, bint last, Py_ssize_t B,
    double* a, double* probe, floating* out,
) noexcept nogil:
    cdef Py_ssize_t b
    cdef double carry = 0.0 if last else gl   # the buffer's end cuts every episode
    for b in range(B):
        a[b] = (r[b] - v[b] + gamma * <double> (1 - term[b]) * nv[b]
                + carry * <double> (1 - (term[b] | trunc[b])) * a[b])
        out[b] = <floating> a[b]
        probe[b] += 0.0 * out[b]


cdef bint _all_zero(const double* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if x[i] != 0.0:
            return False
    return True


def discount_powers(
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    double gamma,
    double[:, ::1] out,                      # OUT (T, B)
):
    """γ^(k−1) with k the 1-based step index within its episode."""
    cdef Py_ssize_t T = terminated.shape[0], B = terminated.shape[1], t, b
    if T == 0:
        return
    with nogil:
        for b in range(B):
            out[0, b] = 1.0
        for t in range(1, T):
            for b in range(B):
                if terminated[t - 1, b] or truncated[t - 1, b]:
                    out[t, b] = 1.0
                else:
                    out[t, b] = out[t - 1, b] * gamma


def spread_columns(
    const double[::1] values,                # IN  (B,)
    const unsigned char[:, ::1] mask,        # IN  (T, B) 0/1
    double[:, ::1] out,                      # OUT (T, B)
):
    """out[t, b] ← values[b] · mask[t, b]: a value per trajectory on its steps (as
    NumPy's ``mask * values``, bit for bit; one pass where NumPy's broadcast over
    short rows takes two)."""
    cdef Py_ssize_t T = mask.shape[0], B = mask.shape[1], t, b
    with nogil:
        for t in range(T):
            for b in range(B):
                out[t, b] = values[b] * mask[t, b]


def count_episode_ends(
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
):
    cdef Py_ssize_t T = terminated.shape[0], B = terminated.shape[1], t, b, n = 0
    with nogil:
        for t in range(T):
            for b in range(B):
                if terminated[t, b] or truncated[t, b]:
                    n += 1
    return n


def episode_stats(
    const floating[:, ::1] rewards,          # IN  (T, B)
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    double[::1] returns,                     # OUT (E,)
    long long[::1] lengths,                  # OUT (E,)
):
    """Undiscounted return and length of every episode that ends in the
    buffer, ordered by the step it ends at, then by env index."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], t, b, e = 0
    cdef double* running = NULL
    cdef double* count = NULL   # steps so far, exact as a double
    try:
        running = _carry(B)
        count = _carry(B)
        with nogil:
            for t in range(T):
                for b in range(B):
                    running[b] += rewards[t, b]
                    count[b] += 1
                    if terminated[t, b] or truncated[t, b]:
                        returns[e] = running[b]
                        lengths[e] = <long long> count[b]
                        e += 1
                        running[b] = 0.0
                        count[b] = 0
    finally:
        free(running)
        free(count)
