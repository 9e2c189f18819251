# cython: language_level=3
"""Kernels for returns and advantages over time-major (T, B) buffers.

The Python wrappers in ``pgfast/returns.py`` validate; these kernels trust
their inputs: C-contiguous arrays of matching shape, flags as uint8 0/1.
Sums are carried in double precision whatever the storage dtype.
"""
from cython cimport floating
from libc.stdlib cimport malloc, free


cdef double* _zeros(Py_ssize_t n) noexcept nogil:
    cdef double* p = <double*> malloc((n if n > 0 else 1) * sizeof(double))
    cdef Py_ssize_t i
    if p != NULL:
        for i in range(n):
            p[i] = 0.0
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
    bootstraps with γ V(s_{t+1}) when next_values is given."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], t, b
    cdef bint bootstrap = next_values.shape[0] == T
    cdef double* g
    with nogil:
        g = _zeros(B)
        if g == NULL:
            with gil:
                raise MemoryError()
        for t in range(T - 1, -1, -1):
            for b in range(B):
                if terminated[t, b]:
                    g[b] = rewards[t, b]
                elif truncated[t, b] or t == T - 1:
                    g[b] = rewards[t, b]
                    if bootstrap:
                        g[b] += gamma * next_values[t, b]
                else:
                    g[b] = rewards[t, b] + gamma * g[b]
                out[t, b] = <floating> g[b]
        free(g)


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
    A_t = δ_t + γλ(1 − done_t) A_{t+1}."""
    cdef Py_ssize_t T = rewards.shape[0], B = rewards.shape[1], t, b
    cdef double gl = gamma * lam, delta
    cdef double* a
    with nogil:
        a = _zeros(B)
        if a == NULL:
            with gil:
                raise MemoryError()
        for t in range(T - 1, -1, -1):
            for b in range(B):
                delta = rewards[t, b] - values[t, b]
                if not terminated[t, b]:
                    delta = delta + gamma * next_values[t, b]
                if terminated[t, b] or truncated[t, b] or t == T - 1:
                    a[b] = delta
                else:
                    a[b] = delta + gl * a[b]
                out[t, b] = <floating> a[b]
        free(a)


def discount_powers(
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    double gamma,
    double[:, ::1] out,                      # OUT (T, B)
):
    """γ^(k−1) with k the 1-based step index within its episode."""
    cdef Py_ssize_t T = terminated.shape[0], B = terminated.shape[1], t, b
    with nogil:
        for b in range(B):
            out[0, b] = 1.0 if T > 0 else 0.0
        for t in range(1, T):
            for b in range(B):
                if terminated[t - 1, b] or truncated[t - 1, b]:
                    out[t, b] = 1.0
                else:
                    out[t, b] = out[t - 1, b] * gamma


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
    cdef double* running
    cdef long long* count
    with nogil:
        running = _zeros(B)
        count = <long long*> malloc((B if B > 0 else 1) * sizeof(long long))
        if running == NULL or count == NULL:
            free(running)
            free(count)
            with gil:
                raise MemoryError()
        for b in range(B):
            count[b] = 0
        for t in range(T):
            for b in range(B):
                running[b] += rewards[t, b]
                count[b] += 1
                if terminated[t, b] or truncated[t, b]:
                    returns[e] = running[b]
                    lengths[e] = count[b]
                    e += 1
                    running[b] = 0.0
                    count[b] = 0
        free(running)
        free(count)
