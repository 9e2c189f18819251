"""Closed-form utility and gradient of the simple regulator under a linear-Gaussian policy.

The book's reference problem (Kochenderfer, Wheeler and Wray, *Algorithms for
Decision Making*, 2022, ch. 11): one real state, one real action,

    s_1 ~ N(0.3, 0.1²),   s_{k+1} = s_k + a_k + 0.1 ε_k,   r_k = −s_k²,

with the policy a_k ~ N(w s_k + b, σ²), σ = exp(log_std). Unlike the book, the
next state is **not** truncated to [−10, 10], so the state stays Gaussian and
U(θ) and ∇U(θ) are exact: a known answer for every gradient estimator.

The parameter vector is θ = [w, b, log_std], the flat layout of
``pgfast.LinearGaussian(1, 1)`` (W (1 × 1), then b (1), then log_std (1)).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._validation import (as_float_array, check_finite_result, check_positive_int,
                          check_unit_interval)

__all__ = ["regulator_utility", "regulator_gradient"]

S1_MEAN = 0.3
S1_VAR = 0.1 ** 2
TRANSITION_VAR = 0.1 ** 2
# The recursion runs one Python step per k: beyond a million steps a call would take
# minutes, and the discounted sums have long converged (or diverged) by then.
MAX_HORIZON = 1_000_000


def _check(theta, horizon, gamma):
    theta = as_float_array(theta, "theta", ndim=1)
    if theta.shape != (3,):
        raise ValueError(f"theta: expected shape (3,) = [w, b, log_std], got {theta.shape}")
    horizon = check_positive_int(horizon, "horizon", maximum=MAX_HORIZON)
    return theta, horizon, check_unit_interval(gamma, "gamma")


def _utility_and_gradient(theta, horizon, gamma):
    """Forward-mode differentiation of the mean/variance recursions.

    μ_1 = 0.3, v_1 = 0.01,
    μ_{k+1} = (1 + w) μ_k + b,   v_{k+1} = (1 + w)² v_k + σ² + 0.01,
    U = −Σ_{k=1..d} γ^(k−1) (μ_k² + v_k),
    with the tangents ∂μ_k/∂θ and ∂v_k/∂θ carried along the same recursion.
    """
    w, b, log_std = theta
    c = 1.0 + w
    var_a = np.exp(2.0 * log_std)
    mu, v = S1_MEAN, S1_VAR
    dmu = np.zeros(3)   # ∂μ_k / ∂[w, b, log_std]
    dv = np.zeros(3)    # ∂v_k / ∂[w, b, log_std]
    utility, grad, disc = 0.0, np.zeros(3), 1.0
    for _ in range(horizon):
        utility -= disc * (mu * mu + v)
        grad -= disc * (2.0 * mu * dmu + dv)
        dmu = c * dmu + np.array([mu, 1.0, 0.0])
        dv = c * c * dv + np.array([2.0 * c * v, 0.0, 2.0 * var_a])
        mu, v = c * mu + b, c * c * v + var_a + TRANSITION_VAR
        disc *= gamma
    return utility, grad


def _quiet(theta, horizon, gamma):
    """U and ∇U without NumPy's RuntimeWarning on overflow (|w| ≈ 1e300 makes the
    variance (1 + w)² v_k infinite): the callers refuse a non-finite result by name."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _utility_and_gradient(theta, horizon, gamma)


def regulator_utility(theta: ArrayLike, horizon: int, gamma: float = 1.0) -> float:
    """Exact expected discounted return of the simple regulator.

    U(θ) = −Σ_{k=1..d} γ^(k−1) E[s_k²] = −Σ_{k=1..d} γ^(k−1) (μ_k² + v_k), with

        μ_1 = 0.3,  v_1 = 0.01,
        μ_{k+1} = (1 + w) μ_k + b,
        v_{k+1} = (1 + w)² v_k + σ² + 0.01,   σ = exp(log_std),

    since s_{k+1} = (1 + w) s_k + b + σ η_k + 0.1 ε_k with independent standard
    normals η_k, ε_k. No truncation of the state to [−10, 10] (the book truncates;
    that would break Gaussianity).

    Parameters
    ----------
    theta : array_like, shape (3,)
        [w, b, log_std] of the policy a ~ N(w s + b, exp(log_std)²).
    horizon : int in [1, 10⁶]
        Rollout depth d.
    gamma : float in [0, 1]
        The discount γ.

    Returns
    -------
    float
        U(θ).

    Raises
    ------
    ValueError
        ``theta`` not of shape (3,) or not finite, ``horizon`` outside
        [1, 10⁶], or γ outside [0, 1].
    TypeError
        Non-numeric ``theta``, ``gamma`` or ``horizon``.

    Examples
    --------
    With d = 1 only the initial state counts: U = −(0.3² + 0.1²), whatever θ is.

    >>> import pgfast
    >>> round(pgfast.regulator_utility([0.7, 1.0, 2.0], horizon=1), 12)
    -0.1
    >>> round(pgfast.regulator_utility([-0.5, 0.0, -1.6], horizon=10), 4)
    -0.7199
    """
    utility = _quiet(*_check(theta, horizon, gamma))[0]
    return float(check_finite_result(utility, "theta", "U(θ)"))


def regulator_gradient(theta: ArrayLike, horizon: int, gamma: float = 1.0) -> np.ndarray:
    """Exact ∇θ U(θ) of :func:`regulator_utility`, by forward-mode differentiation.

    ∇U = −Σ_{k=1..d} γ^(k−1) (2 μ_k ∇μ_k + ∇v_k), with ∇μ_1 = ∇v_1 = 0 and

        ∇μ_{k+1} = (1 + w) ∇μ_k + [μ_k, 1, 0],
        ∇v_{k+1} = (1 + w)² ∇v_k + [2 (1 + w) v_k, 0, 2 σ²]

    (components in the order [w, b, log_std]; ∂σ²/∂log_std = 2σ²).

    Parameters
    ----------
    theta : array_like, shape (3,)
        [w, b, log_std] of the policy a ~ N(w s + b, exp(log_std)²).
    horizon : int in [1, 10⁶]
        Rollout depth d.
    gamma : float in [0, 1]
        The discount γ.

    Returns
    -------
    ndarray, shape (3,)
        float64, ∂U/∂[w, b, log_std].

    Raises
    ------
    ValueError
        ``theta`` not of shape (3,) or not finite, ``horizon`` outside
        [1, 10⁶], or γ outside [0, 1].
    TypeError
        Non-numeric ``theta``, ``gamma`` or ``horizon``.

    Examples
    --------
    A known answer for any estimator of ∇U (see the estimators' page of the docs):

    >>> import numpy as np
    >>> import pgfast
    >>> theta = np.array([-0.5, 0.0, np.log(0.2)])
    >>> pgfast.regulator_gradient(theta, horizon=10).round(3)
    array([-0.83 , -0.798, -0.924])

    With d = 2 and θ = 0 (σ = 1) by hand: μ₂ = 0.3, ∇μ₂ = [0.3, 1, 0] and
    ∇v₂ = [0.02, 0, 2], so ∇U = −(2 μ₂ ∇μ₂ + ∇v₂) = −[0.2, 0.6, 2]:

    >>> pgfast.regulator_gradient([0.0, 0.0, 0.0], horizon=2)
    array([-0.2, -0.6, -2. ])
    """
    return check_finite_result(_quiet(*_check(theta, horizon, gamma))[1], "theta", "∇U(θ)")
