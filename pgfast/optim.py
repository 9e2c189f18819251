"""Optimizers and gradient helpers the updates share: Adam for ascent, conjugate
gradient for Fisher systems, and the book's gradient scaling and clipping."""
from __future__ import annotations

import numpy as np

from ._net import adam_step

from ._validation import (MAX_REPEATS, as_float_array, check_allocation,
                          check_finite_float, check_finite_result, check_interval,
                          check_positive_float, check_positive_int, float_dtype)

__all__ = ["Adam", "conjugate_gradient", "scale_gradient", "clip_gradient"]


def scale_gradient(grad, max_norm):
    """min(L / ‖∇‖, 1) ∇: the gradient scaled to an L2 norm of at most L.

    The book's gradient scaling: the direction is kept, only a step longer than L is
    shortened.

    Parameters
    ----------
    grad : ndarray
        The gradient ∇.
    max_norm : float > 0
        L.

    Returns
    -------
    ndarray
        ``grad`` itself when its norm is at most L (or zero), else a scaled copy.

    Raises
    ------
    ValueError
        ``max_norm`` not a positive finite number.
    TypeError
        ``max_norm`` not a number.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> pgfast.scale_gradient(np.array([3.0, 4.0]), max_norm=1.0)
    array([0.6, 0.8])
    >>> pgfast.scale_gradient(np.array([0.3, 0.4]), max_norm=1.0)
    array([0.3, 0.4])
    """
    grad = as_float_array(grad, "grad", dtype=float_dtype(grad))
    max_norm = check_positive_float(max_norm, "max_norm")
    with np.errstate(over="ignore"):
        norm = float(np.linalg.norm(grad))
    if norm == np.inf:   # entries near the float64 limit: ‖∇‖ = s ‖∇ / s‖, s = max |∇ᵢ|
        largest = float(np.abs(grad).max())
        norm = largest * float(np.linalg.norm(grad / largest))
    return grad * min(max_norm / norm, 1.0) if norm > 0 else grad


def clip_gradient(grad, low, high):
    """The gradient clipped elementwise to [low, high] (the book's gradient clipping).

    Parameters
    ----------
    grad : array_like
        The gradient ∇.
    low, high : float
        The bounds a < b.

    Returns
    -------
    ndarray
        ``numpy.clip(grad, low, high)``.

    Raises
    ------
    ValueError
        ``low`` is not below ``high``, or a bound is not finite.
    TypeError
        A bound is not a number.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> pgfast.clip_gradient(np.array([-3.0, 0.5, 2.0]), -1.0, 1.0)
    array([-1. ,  0.5,  1. ])
    """
    grad = as_float_array(grad, "grad", dtype=float_dtype(grad))
    low, high = check_interval(low, high, "clip")
    return np.clip(grad, low, high)


class Adam:
    """Adam (Kingma & Ba 2015) for gradient *ascent*: θ ← θ + α m̂ / (√v̂ + ε).

    With g the gradient of step t: m ← β₁ m + (1 − β₁) g, v ← β₂ v + (1 − β₂) g²,
    m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ). To minimise a loss, pass its negated
    gradient.

    Parameters
    ----------
    n_params : int
        The length of θ.
    alpha : float > 0
        The step size α.
    beta1, beta2 : float
        The decay rates β₁, β₂ of the first and second moment estimates.
    eps : float
        ε, added to √v̂.

    Attributes
    ----------
    m, v : ndarray, shape (n_params,)
        The moment estimates.
    t : int
        The number of steps taken.

    Raises
    ------
    ValueError
        ``alpha`` or ``eps`` not a positive finite number, a decay rate outside
        [0, 1), or more parameters than memory holds.
    TypeError
        An argument that is not a number.

    Examples
    --------
    Ascend U(θ) = −‖θ − 1‖², whose gradient is −2 (θ − 1):

    >>> import numpy as np
    >>> import pgfast
    >>> adam = pgfast.Adam(n_params=2, alpha=0.1)
    >>> theta = np.zeros(2)
    >>> for _ in range(200):
    ...     theta = adam.step(theta, -2 * (theta - 1))
    >>> theta.round(2)
    array([1., 1.])
    """

    def __init__(self, n_params, alpha=1e-2, beta1=0.9, beta2=0.999, eps=1e-8):
        n_params = check_positive_int(n_params, "n_params", minimum=0)
        check_allocation(16 * n_params, "n_params", "the two moment vectors")
        self.alpha = check_positive_float(alpha, "alpha")
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not check_finite_float(beta, name, minimum=0.0) < 1.0:
                raise ValueError(f"{name}: expected a decay rate in [0, 1), got {beta}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check_positive_float(eps, "eps")
        self.m = np.zeros(n_params)
        self.v = np.zeros(n_params)
        self.t = 0

    def step(self, theta, grad, check_input=True):
        """One ascent step.

        Parameters
        ----------
        theta : ndarray, shape (n_params,)
            The current parameters.
        grad : ndarray, shape (n_params,)
            The gradient to ascend.
        check_input : bool
            Check the arrays' shapes and values (a few microseconds a step). Pass
            False only for arrays you have checked: the updates' inner loops do.

        Returns
        -------
        ndarray
            The new parameters (``theta`` is not modified).

        Raises
        ------
        ValueError
            An array of the wrong shape or with non-finite values, or a gradient whose
            square overflows float64.
        """
        if not check_input:
            return self._ascend(theta, grad)
        n = len(self.m)
        theta = as_float_array(theta, "theta", ndim=1)
        grad = as_float_array(grad, "grad", ndim=1)
        for name, arr in (("theta", theta), ("grad", grad)):
            if arr.shape != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
        with np.errstate(over="ignore"):   # an overflow is refused here, by name
            check_finite_result(np.square(grad), "grad", "the squared gradient")
            saved = self.m.copy(), self.v.copy(), self.t
            new = self._ascend(theta, grad)
        if not np.isfinite(new).all():   # θ at the float64 limit: refuse, state unchanged
            self.m, self.v, self.t = saved
            check_finite_result(new, "theta", "the new θ")
        return new

    def _ascend(self, theta, grad):
        # One compiled pass: a value fit takes thousands of steps, and a NumPy
        # temporary per operation costs more than the arithmetic.
        self.t += 1
        new = np.empty(len(self.m))
        adam_step(np.ascontiguousarray(theta, dtype=np.float64),
                  np.ascontiguousarray(grad, dtype=np.float64), self.m, self.v, self.t,
                  self.alpha, self.beta1, self.beta2, self.eps, new)
        return new

    def state_dict(self):
        """The moments and step count, for a checkpoint.

        Returns
        -------
        dict
            ``{"m": ndarray, "v": ndarray, "t": int}``.
        """
        return {"m": self.m, "v": self.v, "t": self.t}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            With keys ``"m"``, ``"v"`` and ``"t"``.
        """
        self.m, self.v = (np.array(state[k], dtype=np.float64, order="C") for k in "mv")
        self.t = int(state["t"])


def conjugate_gradient(matvec, b, iterations=10, tol=1e-10, check_input=True):
    """Solve A x = b for symmetric positive definite A given only x ↦ A x.

    Stops after `iterations` steps, when the residual is below `tol`, or when a
    direction shows non-positive curvature pᵀAp ≤ 0 (A is then not positive
    definite along p; the iterate so far is returned, b itself if that is the first).
    The natural and TRPO updates solve F u = ∇f this way with Fisher-vector products,
    never forming F.

    Parameters
    ----------
    matvec : callable
        x ↦ A x, for A symmetric positive definite.
    b : ndarray, shape (n,)
        The right-hand side.
    iterations : int
        The most conjugate-gradient steps to take (exact after n in exact arithmetic;
        at most 10,000).
    tol : float
        Stop once the squared residual ‖b − A x‖² is at most this.
    check_input : bool
        Check the arguments, each product A x and the solution. Pass False only for
        arguments you have checked: the natural updates do.

    Returns
    -------
    ndarray, shape (n,)
        The approximate solution x.

    Raises
    ------
    ValueError
        ``b`` not a finite vector, ``iterations`` or ``tol`` out of range, ``matvec``
        returning an array of another shape or non-finite values, or a solution that
        overflows float64.
    TypeError
        ``matvec`` not callable, or an argument of the wrong type.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> x = pgfast.conjugate_gradient(lambda v: A @ v, np.array([1.0, 2.0]))
    >>> bool(np.allclose(A @ x, [1.0, 2.0]))
    True
    """
    if not check_input:
        return _solve(matvec, b, iterations, tol)
    if not callable(matvec):
        raise TypeError(f"matvec: expected a function x ↦ A x, got {type(matvec).__name__}")
    b = as_float_array(b, "b", ndim=1)
    iterations = check_positive_int(iterations, "iterations", minimum=0, maximum=MAX_REPEATS)
    tol = check_finite_float(tol, "tol", minimum=0.0)

    def checked_matvec(v):
        out = np.asarray(matvec(v))
        if out.shape != b.shape or out.dtype.kind not in "biuf":
            raise ValueError(f"matvec: expected a real array of shape {b.shape}, got "
                             f"{out.dtype} of shape {out.shape}")
        return check_finite_result(out, "matvec", "A x")

    return check_finite_result(_solve(checked_matvec, b, iterations, tol), "b",
                               "the solution")


def _solve(matvec, b, iterations, tol):
    x = np.zeros_like(b)
    r = b.copy()
    p = r.copy()
    rr = r @ r
    for i in range(iterations):
        if rr <= tol:
            break
        Ap = matvec(p)
        curvature = p @ Ap
        if not curvature > 0:
            return b.copy() if i == 0 else x
        step = rr / curvature
        x += step * p
        r -= step * Ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x
