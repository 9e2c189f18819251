"""pgfast.optim: Adam, conjugate gradient, gradient scaling and clipping."""
import numpy as np
import pytest

import pgfast
from pgfast.optim import conjugate_gradient


def test_conjugate_gradient_matches_dense_solve():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(12, 12))
    A = A @ A.T + 0.1 * np.eye(12)
    b = rng.normal(size=12)
    x = conjugate_gradient(lambda v: A @ v, b, iterations=100)
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-7, atol=1e-9)


def test_conjugate_gradient_stops_on_non_positive_curvature():
    A = np.diag([1.0, -1.0])
    b = np.array([0.0, 1.0])
    x = conjugate_gradient(lambda v: A @ v, b, iterations=10)
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, b)   # first direction already has pᵀAp < 0


def test_adam_steps_match_the_formula_by_hand():
    """Kingma and Ba's Algorithm 1 (ascending), three steps against plain NumPy."""
    rng = np.random.default_rng(0)
    theta, grads = rng.normal(size=5), rng.normal(size=(3, 5))
    adam = pgfast.Adam(5, alpha=0.1)
    m, v, want = np.zeros(5), np.zeros(5), theta.copy()
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9 ** t), v / (1 - 0.999 ** t)
        want = want + 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
        theta = adam.step(theta, g)
    np.testing.assert_allclose(theta, want, rtol=1e-12)
    again = pgfast.Adam(5, alpha=0.1)
    again.load_state_dict(adam.state_dict())
    assert again.t == 3 and np.array_equal(again.m, adam.m)


def test_scale_and_clip_gradient():
    g = np.array([3.0, -4.0])
    np.testing.assert_allclose(pgfast.scale_gradient(g, 1.0), [0.6, -0.8])
    np.testing.assert_array_equal(pgfast.scale_gradient(g, 10.0), g)
    np.testing.assert_array_equal(pgfast.clip_gradient(g, -1.0, 2.0), [2.0, -1.0])
    with pytest.raises(ValueError, match="^max_norm"):
        pgfast.scale_gradient(g, -1.0)
