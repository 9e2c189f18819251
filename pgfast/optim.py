"""Optimizers and gradient helpers the updates share: Adam for ascent, conjugate
gradient for Fisher systems, and the book's gradient scaling and clipping."""
from __future__ import annotations

import numpy as np

from ._validation import check_positive_float

__all__ = ["Adam", "conjugate_gradient", "scale_gradient", "clip_gradient"]


def scale_gradient(grad, max_norm):
    """min(L / ‖∇‖, 1) ∇: the gradient scaled to an L2 norm of at most L."""
    max_norm = check_positive_float(max_norm, "max_norm")
    norm = float(np.linalg.norm(grad))
    return grad * min(max_norm / norm, 1.0) if norm > 0 else grad


def clip_gradient(grad, low, high):
    """The gradient clipped elementwise to [low, high]."""
    if not low < high:
        raise ValueError(f"clip: expected low < high, got ({low}, {high})")
    return np.clip(grad, low, high)


class Adam:
    """Adam (Kingma & Ba 2015) for gradient *ascent*: θ ← θ + α m̂ / (√v̂ + ε)."""

    def __init__(self, n_params, alpha=1e-2, beta1=0.9, beta2=0.999, eps=1e-8):
        self.alpha = check_positive_float(alpha, "alpha")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = np.zeros(n_params)
        self.v = np.zeros(n_params)
        self.t = 0

    def step(self, theta, grad):
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad**2
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return theta + self.alpha * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_dict(self):
        return {"m": self.m, "v": self.v, "t": self.t}

    def load_state_dict(self, state):
        self.m, self.v, self.t = np.array(state["m"]), np.array(state["v"]), int(state["t"])


def conjugate_gradient(matvec, b, iterations=10, tol=1e-10):
    """Solve A x = b for symmetric positive definite A given only x ↦ A x.

    Stops after `iterations` steps, when the residual is below `tol`, or when a
    direction shows non-positive curvature pᵀAp ≤ 0 (A is then not positive
    definite along p; the iterate so far is returned, b itself if that is the first).
    """
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
