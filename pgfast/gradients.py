"""Policy-gradient estimators as drop-in functions over arrays.

Arrays in, arrays out: the inputs may come from pgfast's rollouts or from any
other framework, NumPy arrays or CPU arrays of another library (PyTorch, JAX, ...),
and the results are arrays of the library they were given. Kernels: ``src/_linalg.pyx`` (pseudoinverse regression) and
``src/_scores.pyx`` (per-trajectory score reductions), with the returns kernels
of ``src/_returns.pyx``. Formulas follow Kochenderfer, Wheeler and Wray,
*Algorithms for Decision Making* (2022), chapter 11, restated with their
derivations in ``docs/theory/estimators.rst``; indices k are 1-based within an
episode.

Buffers are time-major: ``grad_log_probs`` has shape ``(T, P)`` for one stream or
``(T, B, P)`` for B parallel environments, ``rewards`` ``(T,)`` or ``(T, B)``.
An episode ends after a step flagged ``terminated`` or ``truncated``; a column
may hold several episodes, and the episode still running at the last step ends
there. Every episode is one trajectory τ, and the estimators average over
trajectories (not over columns). Rewards after an episode's end belong to the
next episode, never to the one that ended.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import _linalg, _returns, _scores
from numpy.typing import ArrayLike

from ._validation import (ArrayResult, as_flags, as_float_array, check_allocation,
                          check_finite, check_finite_result, check_unit_interval,
                          check_work_memory, float_dtype, _SMALL_ALLOCATION)
from ._arrays import arrays_in_out

__all__ = ["regression_gradient", "likelihood_ratio_gradient", "optimal_baseline"]

#: numpy.linalg.pinv's default relative cutoff for small singular values.
PINV_RCOND = 1e-15

_MODES = ("trajectory", "reward_to_go", "baseline")


@arrays_in_out("dtheta", "du")
def regression_gradient(dtheta: ArrayLike, du: ArrayLike,
                        rcond: float | None = None) -> ArrayResult:
    """Gradient by linear regression: ∇U ≈ ΔΘ⁺ ΔU (the book's RegressionGradient).

    Solves the least-squares problem ΔΘ g ≈ ΔU with the pseudoinverse ΔΘ⁺, i.e.
    the minimum-norm least-squares solution, exactly as
    ``numpy.linalg.pinv(dtheta, rcond) @ du``: with the SVD ΔΘ = U S Vᵀ,
    g = V S⁺ Uᵀ ΔU, where S⁺ inverts the singular values s_i > rcond · s_max and
    sets the others to zero. Rank-deficient ΔΘ and m < n (fewer perturbations
    than parameters) get the minimum-norm solution.

    Compiled, one call for a whole batch: a problem whose full rank is proven with
    a wide margin above the cutoff is solved by Householder QR (the same solution;
    faster); every other one by LAPACK's SVD solver dgelsd.

    Parameters
    ----------
    dtheta : array_like, shape (m, n) or (K, m, n)
        Perturbations Δθ^(i) as rows (K independent problems for a 3-D array).
    du : array_like, shape (m,) or (K, m)
        Utility differences ΔU_i = U(θ + Δθ^(i)) − U(θ).
    rcond : float >= 0, optional
        Relative cutoff for small singular values; default 1e-15, numpy.linalg.pinv's.

    Returns
    -------
    ndarray, shape (n,) or (K, n)
        Computed in double precision whatever the input dtype; returned as float32
        if both inputs are float32, else float64.

    Raises
    ------
    ValueError
        ``du`` whose shape does not match ``dtheta``'s rows, non-finite input, or a
        negative or non-finite ``rcond``.
    TypeError
        Non-numeric input or a non-numeric ``rcond``.
    numpy.linalg.LinAlgError
        If the SVD does not converge (as numpy.linalg.pinv).

    Examples
    --------
    Utility differences of an exactly linear U recover its gradient:

    >>> import numpy as np
    >>> import pgfast
    >>> rng = np.random.default_rng(0)
    >>> dtheta = rng.normal(size=(8, 3))
    >>> du = dtheta @ np.array([1.0, -2.0, 0.5])
    >>> pgfast.regression_gradient(dtheta, du).round(6)
    array([ 1. , -2. ,  0.5])

    A batch of K = 4 independent problems in one call:

    >>> pgfast.regression_gradient(np.stack([dtheta] * 4), np.stack([du] * 4)).shape
    (4, 3)
    """
    # The inputs' contiguous copies and the (K, n) result, before any copy.
    shape = dtheta.shape if isinstance(dtheta, np.ndarray) else ()
    check_work_memory("the least-squares problem", 8 * int(np.prod(shape[:-2], dtype=object))
                      * (shape[-1] if shape else 0),
                      (("dtheta", dtheta, _FLOAT64), ("du", du, _FLOAT64)))
    a = as_float_array(dtheta, "dtheta", ndim=(2, 3))
    y = as_float_array(du, "du")
    if y.shape != a.shape[:-1]:
        want = "(m,)" if a.ndim == 2 else "(K, m)"
        raise ValueError(
            f"du: expected shape {want} = {a.shape[:-1]} to match dtheta {a.shape}, got {y.shape}"
        )
    if rcond is None:
        rcond = PINV_RCOND
    elif isinstance(rcond, bool) or not isinstance(rcond, numbers.Real):
        raise TypeError(f"rcond: expected a real number >= 0 or None, got {type(rcond).__name__}")
    rcond = float(rcond)
    if not (np.isfinite(rcond) and rcond >= 0.0):
        raise ValueError(f"rcond: expected a finite number >= 0, got {rcond}")
    batch = a.ndim == 3
    a3 = a if batch else a[None]
    y2 = y if batch else y[None]
    K, m, n = a3.shape
    out = np.zeros((K, n), dtype=np.float64)
    # An empty ΔΘ has the empty pseudoinverse, and rcond >= 1 cuts every singular
    # value (s_i <= s_max <= rcond s_max): both give g = 0 without LAPACK, which
    # would read rcond >= 1 as machine precision.
    if K > 0 and m > 0 and n > 0 and rcond < 1.0:
        route = np.empty(K, dtype=np.int8)
        # LAPACK also reads rcond = 0 as machine precision; the smallest positive
        # double keeps every nonzero singular value, as pinv's rcond = 0 does.
        lapack_rcond = rcond if rcond > 0.0 else np.nextafter(0.0, 1.0)
        failed = _linalg.pinv_solve(a3, y2, lapack_rcond, out, route)
        if failed >= 0:
            raise np.linalg.LinAlgError(
                f"SVD did not converge in the least-squares problem dtheta[{failed}]"
                if batch else "SVD did not converge in the least-squares problem"
            )
    check_finite_result(out, "dtheta, du", "the least-squares gradient")
    return out if batch else out[0]


_FLOAT64 = np.dtype(np.float64)


def _score_inputs(grad_log_probs, rewards, gamma, terminated, truncated, finite=True):
    """Validated (T, B, P) scores, (T, B) rewards and flags, gamma, result dtype
    (``finite=False``: values unread, for a caller whose result shows a NaN or
    infinity among them and then names it with check_finite)."""
    gamma = check_unit_interval(gamma, "gamma")
    dtype = float_dtype(grad_log_probs, rewards)
    # Before any copy: the inputs' contiguous copies, then r_togo and γ^(k−1) (8 bytes
    # a step each) and the two flag arrays (1 byte a step each).
    steps = rewards.size if isinstance(rewards, np.ndarray) else 0
    scored = grad_log_probs.size if isinstance(grad_log_probs, np.ndarray) else 0
    if 8 * scored + 26 * steps >= _SMALL_ALLOCATION:   # else even copying both is small
        check_work_memory("weighting the scores", 18 * steps,
                          (("grad_log_probs", grad_log_probs, float_dtype(grad_log_probs)),
                           ("rewards", rewards, _FLOAT64)))
    # float32 scores (the usual output of autodiff frameworks) are read without a copy.
    scores = as_float_array(grad_log_probs, "grad_log_probs",
                            dtype=float_dtype(grad_log_probs), ndim=(2, 3), finite=finite)
    r = as_float_array(rewards, "rewards", dtype=np.float64, ndim=(1, 2), finite=finite)
    if scores.ndim != r.ndim + 1 or scores.shape[:-1] != r.shape:
        want = "(T, P)" if r.ndim == 1 else "(T, B, P)"
        raise ValueError(
            f"grad_log_probs: expected shape {want} with (T{', B' if r.ndim == 2 else ''}) = "
            f"{r.shape} matching rewards, got {scores.shape}"
        )
    if r.shape[0] < 1:
        raise ValueError(f"rewards: expected at least one time step, got shape {r.shape}")
    if r.ndim == 2 and r.shape[1] < 1:
        raise ValueError(f"rewards: expected at least one column, got shape {r.shape}")
    shape = r.shape
    shape2d = shape if r.ndim == 2 else (shape[0], 1)
    term = as_flags(terminated, "terminated", shape).reshape(shape2d)
    trunc = as_flags(truncated, "truncated", shape).reshape(shape2d)
    scores3 = scores.reshape(shape2d + (scores.shape[-1],))
    return scores3, r.reshape(shape2d), term, trunc, gamma, dtype


def _count_trajectories(term, trunc):
    """Episodes that end in the buffer plus the columns whose last one runs on."""
    unfinished = int(((term[-1] | trunc[-1]) == 0).sum())
    return _returns.count_episode_ends(term, trunc) + unfinished


def _togo_and_powers(r, term, trunc, gamma):
    """r_togo(k) (no bootstrap: the book's finite sums) and γ^(k−1), both (T, B)."""
    togo = np.empty(r.shape, dtype=np.float64)
    powers = np.empty(r.shape, dtype=np.float64)
    _returns.reward_to_go(r, term, trunc, np.empty((0, r.shape[1])), gamma, togo)
    _returns.discount_powers(term, trunc, gamma, powers)
    return togo, powers


def _baseline_from(ratio_sum, ratio_count):
    """b_i = mean of the per-trajectory ratios; 0 where no trajectory defines one."""
    return np.divide(ratio_sum, ratio_count, out=np.zeros_like(ratio_sum),
                     where=ratio_count > 0)


@arrays_in_out("grad_log_probs", "rewards", other=("terminated", "truncated"))
def likelihood_ratio_gradient(grad_log_probs: ArrayLike, rewards: ArrayLike, gamma: float,
                              terminated: ArrayLike | None = None,
                              truncated: ArrayLike | None = None, mode: str = "trajectory",
                              return_per_trajectory: bool = False) -> ArrayResult:
    """Likelihood-ratio policy gradient from per-step scores (the book's chapter 11).

    With s_k = ∇θ log πθ(a_k | s_k) the score of step k (1-based within its
    episode), r_togo(k) = Σ_{l≥k} γ^(l−k) r_l and R(τ) = Σ_k γ^(k−1) r_k, each
    trajectory τ contributes g_τ and the estimate is the mean of g_τ over all N
    trajectories in the buffer:

    - ``"trajectory"`` (LikelihoodRatioGradient): g_τ = (Σ_k s_k) · R(τ).
    - ``"reward_to_go"`` (RewardToGoGradient): g_τ = Σ_k s_k · γ^(k−1) r_togo(k).
    - ``"baseline"`` (BaselineSubtractionGradient): with ℓ_k = s_k γ^(k−1) and
      G_k = r_togo(k), g_τ = Σ_k ℓ_k ⊙ (G_k − b), where b is the per-parameter
      baseline of :func:`optimal_baseline` computed from the same trajectories.

    Parameters
    ----------
    grad_log_probs : array_like, shape (T, P) or (T, B, P)
        Per-step scores ∇θ log π(a_t | s_t), time-major. float32 is read as is.
    rewards : array_like, shape (T,) or (T, B)
        r_t, received after the action of step t.
    gamma : float in [0, 1]
    terminated, truncated : array_like of bool, shape of rewards, optional
        An episode ends after a step flagged in either (the book's estimators
        do not bootstrap, so the two act alike here). The episode still running
        at step T − 1 is a trajectory as well.
    mode : {"trajectory", "reward_to_go", "baseline"}
    return_per_trajectory : bool
        Also return the per-trajectory terms g_τ (for variance diagnostics),
        ordered by the step each trajectory ends at, then by column. In
        ``"baseline"`` mode they share the batch's baseline b.

    Returns
    -------
    gradient : ndarray, shape (P,)
        float32 if both grad_log_probs and rewards are float32, else float64;
        accumulated in double precision.
    per_trajectory : ndarray, shape (N, P)
        Only with ``return_per_trajectory=True``; ``gradient`` is its mean.

    Raises
    ------
    ValueError
        An unknown ``mode``, shapes that do not match (scores must be rewards' shape
        plus a parameter axis), an empty buffer, γ outside [0, 1] or non-finite input.
    TypeError
        Non-numeric input or flags that are not booleans.

    Examples
    --------
    One stream of two episodes (the first ends after step 1), two parameters:

    >>> import numpy as np
    >>> import pgfast
    >>> scores = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> rewards = np.array([1.0, 2.0, 3.0])
    >>> terminated = np.array([False, True, False])
    >>> pgfast.likelihood_ratio_gradient(scores, rewards, 1.0, terminated)
    array([3., 3.])

    The first trajectory gives (1 + 0, 0 + 1) · R(τ) = (1, 1) · 3, the second
    (1, 1) · 3; the estimate is their mean. Reward-to-go weights each score by the
    rewards from its step on, (1, 0) · 3 + (0, 1) · 2 for the first trajectory:

    >>> pgfast.likelihood_ratio_gradient(scores, rewards, 1.0, terminated,
    ...                                  mode="reward_to_go")
    array([3. , 2.5])
    """
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}")
    # Every score and reward meets the kernels' sums in a product (rewards through
    # r_togo), so a NaN or infinity among them makes the gradient non-finite: the
    # inputs are read once, by the kernels, and scanned only to name the culprit.
    scores, r, term, trunc, gamma, dtype = _score_inputs(
        grad_log_probs, rewards, gamma, terminated, truncated, finite=False)
    togo, powers = _togo_and_powers(r, term, trunc, gamma)
    P = scores.shape[2]
    rows = 0
    if return_per_trajectory:
        rows = _count_trajectories(term, trunc)
        check_allocation(8 * rows * P * (2 if mode == "baseline" else 1),
                         "return_per_trajectory", f"{rows} per-trajectory terms of {P} "
                                                  "parameters")
    if P == 0:   # no parameters: nothing for the kernels to read
        check_finite(r, "rewards")
        gradient, per_trajectory = np.zeros(0), np.zeros((rows, 0))
    elif mode == "baseline":
        weighted = np.empty((rows, P))
        plain = np.empty((rows, P))
        weighted_total, plain_total, ratio_sum = np.empty(P), np.empty(P), np.empty(P)
        ratio_count = np.empty(P, dtype=np.int64)
        n_traj = _scores.baseline_sums(scores, togo, powers, term, trunc, weighted, plain,
                                       weighted_total, plain_total, ratio_sum, ratio_count)
        with np.errstate(invalid="ignore", over="ignore"):   # a NaN is named below
            b = _baseline_from(ratio_sum, ratio_count)
            gradient = (weighted_total - b * plain_total) / n_traj
            per_trajectory = weighted - b * plain
    else:
        per_trajectory = np.empty((rows, P))
        total = np.empty(P)
        n_traj = _scores.weighted_score_sums(scores, togo, powers, term, trunc,
                                             mode == "trajectory", per_trajectory, total)
        gradient = total / n_traj
    names = "grad_log_probs, rewards"
    if not np.isfinite(gradient).all():
        check_finite(scores, "grad_log_probs")
        check_finite(r, "rewards")
        check_finite_result(gradient, names, "the gradient")   # finite inputs overflowed
    gradient = gradient.astype(dtype, copy=False)
    if return_per_trajectory:
        return gradient, check_finite_result(per_trajectory.astype(dtype, copy=False), names,
                                             "a trajectory's term")
    return gradient


@arrays_in_out("grad_log_probs", "rewards", other=("terminated", "truncated"))
def optimal_baseline(grad_log_probs: ArrayLike, rewards: ArrayLike, gamma: float,
                     terminated: ArrayLike | None = None,
                     truncated: ArrayLike | None = None) -> ArrayResult:
    """The book's per-parameter variance-minimising baseline for reward-to-go.

    With ℓ_k = ∇θ log πθ(a_k | s_k) γ^(k−1) and G_k = r_togo(k) = Σ_{l≥k} γ^(l−k) r_l,

        b_i = mean over τ of [ Σ_k ℓ_{k,i}² G_k / Σ_k ℓ_{k,i}² ]

    (the ratio averaged per trajectory, as the book's BaselineSubtractionGradient
    does). A trajectory in which parameter i's scores are all zero has no ratio
    (0/0) for i and is left out of b_i's mean: its term ℓ_{k,i}(G_k − b_i) is zero
    whatever b_i is. If no trajectory defines a ratio for i, b_i = 0.

    Parameters
    ----------
    grad_log_probs : array_like, shape (T, P) or (T, B, P)
        Per-step scores ∇θ log π(a_t | s_t), time-major.
    rewards : array_like, shape (T,) or (T, B)
        r_t, received after the action of step t.
    gamma : float in [0, 1]
        The discount γ.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end, as in :func:`likelihood_ratio_gradient`.

    Returns
    -------
    ndarray, shape (P,)
        The baseline b (float32 if both inputs are float32, else float64).

    Raises
    ------
    ValueError
        Shapes that do not match, an empty buffer, γ outside [0, 1] or non-finite
        input.
    TypeError
        Non-numeric input or flags that are not booleans.

    Examples
    --------
    One trajectory: b_i is the reward-to-go averaged with weights ℓ_{k,i}²:

    >>> import numpy as np
    >>> import pgfast
    >>> scores = np.array([[1.0, 0.0], [1.0, 2.0]])
    >>> rewards = np.array([1.0, 3.0])      # G = (4, 3) with γ = 1
    >>> pgfast.optimal_baseline(scores, rewards, 1.0)
    array([3.5, 3. ])
    """
    scores, r, term, trunc, gamma, dtype = _score_inputs(
        grad_log_probs, rewards, gamma, terminated, truncated)
    togo, powers = _togo_and_powers(r, term, trunc, gamma)
    P = scores.shape[2]
    if P == 0:
        return np.zeros(0, dtype=dtype)
    weighted_total, plain_total, ratio_sum = np.empty(P), np.empty(P), np.empty(P)
    ratio_count = np.empty(P, dtype=np.int64)
    _scores.baseline_sums(scores, togo, powers, term, trunc, np.empty((0, P)), np.empty((0, P)),
                          weighted_total, plain_total, ratio_sum, ratio_count)
    return check_finite_result(_baseline_from(ratio_sum, ratio_count).astype(dtype, copy=False),
                               "grad_log_probs, rewards", "the baseline")
