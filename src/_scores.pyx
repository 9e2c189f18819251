# cython: language_level=3
"""Score-function (likelihood-ratio) reductions over time-major (T, B, P) buffers.

Each column b of a (T, B) buffer holds one or more episodes; an episode ends
after a step flagged terminated or truncated, and the one still running at the
last step ends there too. Every episode is one trajectory τ; trajectories are
numbered in the order they end (by step, then by column).

The Python wrappers in ``pgfast/gradients.py`` validate; these kernels trust
their inputs: C-contiguous arrays of matching shape, flags as uint8 0/1, T >= 1.
Sums are carried in double precision whatever the storage dtype.
"""
from cython cimport floating
from libc.stdlib cimport free

from pgfast._common cimport alloc_zeros


def weighted_score_sums(
    const floating[:, :, ::1] scores,        # IN  (T, B, P) ∇θ log π(a_t | s_t)
    const double[:, ::1] togo,               # IN  (T, B) r_togo(k)
    const double[:, ::1] powers,             # IN  (T, B) γ^(k−1)
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    bint whole_return,
    double[:, ::1] per_trajectory,           # OUT (N, P), or (0, P) to skip
    double[::1] total,                       # OUT (P,)
):
    """g_τ = Σ_k c_k ∇log π_k and total = Σ_τ g_τ, with
    c_k = R(τ) = r_togo(1) of the episode (whole_return) or c_k = γ^(k−1) r_togo(k).

    Returns the number of trajectories N."""
    cdef Py_ssize_t T = scores.shape[0], B = scores.shape[1], P = scores.shape[2]
    cdef Py_ssize_t t, b, p, e = 0
    cdef bint keep = per_trajectory.shape[0] > 0
    cdef double c
    cdef double* acc = NULL
    cdef double* ret = NULL
    cdef double* a
    cdef const floating* row
    try:
        acc = alloc_zeros(B * P)
        ret = alloc_zeros(B)
        with nogil:
            for p in range(P):
                total[p] = 0.0
            for t in range(T):
                for b in range(B):
                    if t == 0 or terminated[t - 1, b] or truncated[t - 1, b]:
                        ret[b] = togo[t, b]   # R(τ) = r_togo(1), read at the episode's first step
                    c = ret[b] if whole_return else powers[t, b] * togo[t, b]
                    a = acc + b * P
                    row = &scores[t, b, 0]
                    for p in range(P):
                        a[p] += c * row[p]
                    if terminated[t, b] or truncated[t, b] or t == T - 1:
                        for p in range(P):
                            total[p] += a[p]
                            if keep:
                                per_trajectory[e, p] = a[p]
                            a[p] = 0.0
                        e += 1
    finally:
        free(acc)
        free(ret)
    return e


def baseline_sums(
    const floating[:, :, ::1] scores,        # IN  (T, B, P) ∇θ log π(a_t | s_t)
    const double[:, ::1] togo,               # IN  (T, B) G_k = r_togo(k)
    const double[:, ::1] powers,             # IN  (T, B) γ^(k−1)
    const unsigned char[:, ::1] terminated,  # IN  (T, B)
    const unsigned char[:, ::1] truncated,   # IN  (T, B)
    double[:, ::1] weighted,                 # OUT (N, P) Σ_k ℓ_k G_k, or (0, P) to skip
    double[:, ::1] plain,                    # OUT (N, P) Σ_k ℓ_k, or (0, P) to skip
    double[::1] weighted_total,              # OUT (P,) Σ_τ Σ_k ℓ_k G_k
    double[::1] plain_total,                 # OUT (P,) Σ_τ Σ_k ℓ_k
    double[::1] ratio_sum,                   # OUT (P,) Σ_τ [Σ_k ℓ_k² G_k / Σ_k ℓ_k²]
    long long[::1] ratio_count,              # OUT (P,) trajectories in ratio_sum
):
    """One pass for the book's baseline subtraction, ℓ_k = ∇log π_k γ^(k−1).

    A trajectory whose ℓ_{k,i} are all zero has the ratio 0/0 for parameter i;
    it is left out of ratio_sum[i] and ratio_count[i] (it carries no information
    on b_i, and its term ℓ_{k,i}(G_k − b_i) is zero whatever b_i is).

    Returns the number of trajectories N."""
    cdef Py_ssize_t T = scores.shape[0], B = scores.shape[1], P = scores.shape[2]
    cdef Py_ssize_t t, b, p, i, e = 0
    cdef bint keep = weighted.shape[0] > 0
    cdef double w, g, l, lg
    cdef double* acc = NULL   # per column and parameter: Σ ℓG, Σ ℓ, Σ ℓ²G, Σ ℓ²
    cdef double* a
    cdef const floating* row
    try:
        acc = alloc_zeros(4 * B * P)
        with nogil:
            for p in range(P):
                weighted_total[p] = 0.0
                plain_total[p] = 0.0
                ratio_sum[p] = 0.0
                ratio_count[p] = 0
            for t in range(T):
                for b in range(B):
                    w = powers[t, b]
                    g = togo[t, b]
                    a = acc + 4 * b * P
                    row = &scores[t, b, 0]
                    for p in range(P):
                        l = w * row[p]
                        lg = l * g
                        a[p] += lg
                        a[P + p] += l
                        a[2 * P + p] += l * lg
                        a[3 * P + p] += l * l
                    if terminated[t, b] or truncated[t, b] or t == T - 1:
                        for p in range(P):
                            weighted_total[p] += a[p]
                            plain_total[p] += a[P + p]
                            if a[3 * P + p] > 0.0:
                                ratio_sum[p] += a[2 * P + p] / a[3 * P + p]
                                ratio_count[p] += 1
                            if keep:
                                weighted[e, p] = a[p]
                                plain[e, p] = a[P + p]
                        for i in range(4 * P):
                            a[i] = 0.0
                        e += 1
    finally:
        free(acc)
    return e
