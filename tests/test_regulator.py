"""The simple regulator's closed form, and likelihood_ratio_gradient checked against it."""
import numpy as np
import pytest

import pgfast

THETAS = [
    np.array([0.0, 0.0, 0.0]),
    np.array([-0.6, 0.05, np.log(0.2)]),
    np.array([0.3, -0.2, np.log(0.5)]),
    np.array([-1.4, 0.4, -3.0]),
]


def simulate(theta, horizon, n, rng):
    """n vectorised regulator rollouts with a ~ N(w s + b, σ²), no state truncation.

    Returns per-step scores ∇θ log π(a_k | s_k) (horizon, n, 3) computed by hand,
    rewards r_k = −s_k² (horizon, n)."""
    w, b, log_std = theta
    sigma = np.exp(log_std)
    s = rng.normal(0.3, 0.1, n)
    scores = np.empty((horizon, n, 3))
    rewards = np.empty((horizon, n))
    for k in range(horizon):
        rewards[k] = -s ** 2
        mean = w * s + b
        a = mean + sigma * rng.standard_normal(n)
        z = (a - mean) / sigma
        scores[k, :, 0] = z / sigma * s          # ∂/∂w      = (a − μ) s / σ²
        scores[k, :, 1] = z / sigma              # ∂/∂b      = (a − μ) / σ²
        scores[k, :, 2] = z ** 2 - 1.0           # ∂/∂log σ  = (a − μ)² / σ² − 1
        s = s + a + 0.1 * rng.standard_normal(n)
    return scores, rewards


def central_difference(f, theta, h=1e-6):
    grad = np.zeros(3)
    for i in range(3):
        e = np.zeros(3)
        e[i] = h
        grad[i] = (f(theta + e) - f(theta - e)) / (2 * h)
    return grad


def test_golden_values_by_hand():
    # d = 1: U = −(0.3² + 0.01), independent of θ.
    assert pgfast.regulator_utility([0.7, 1.0, 2.0], 1) == pytest.approx(-0.1)
    np.testing.assert_array_equal(pgfast.regulator_gradient([0.7, 1.0, 2.0], 1), 0.0)
    # d = 2, θ = 0 (σ = 1): μ_2 = 0.3, v_2 = 0.01 + 1 + 0.01 = 1.02.
    assert pgfast.regulator_utility([0, 0, 0], 2) == pytest.approx(-0.1 - (0.09 + 1.02))
    np.testing.assert_allclose(pgfast.regulator_gradient([0, 0, 0], 2), [-0.2, -0.6, -2.0])
    # γ = 0 keeps only k = 1.
    assert pgfast.regulator_utility([0.1, 0.2, 0.3], 7, gamma=0.0) == pytest.approx(-0.1)


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("horizon, gamma", [(1, 1.0), (2, 0.5), (5, 1.0), (10, 0.9), (30, 0.99)])
def test_gradient_matches_central_differences(theta, horizon, gamma):
    g = pgfast.regulator_gradient(theta, horizon, gamma)
    fd = central_difference(lambda t: pgfast.regulator_utility(t, horizon, gamma), theta)
    scale = max(1.0, np.abs(fd).max())
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7 * scale)


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("horizon, gamma", [(5, 1.0), (8, 0.9)])
def test_utility_matches_monte_carlo(theta, horizon, gamma):
    rng = np.random.default_rng(1)
    _, rewards = simulate(theta, horizon, 20000, rng)
    returns = (gamma ** np.arange(horizon)) @ rewards
    mean, se = returns.mean(), returns.std(ddof=1) / np.sqrt(returns.size)
    exact = pgfast.regulator_utility(theta, horizon, gamma)
    assert abs(mean - exact) < 3 * se, f"MC {mean:.5f} ± {se:.5f} vs exact {exact:.5f}"


@pytest.mark.parametrize("gamma", [1.0, 0.9])
def test_likelihood_ratio_modes_match_closed_form_and_reduce_variance(gamma):
    theta, horizon, n = np.array([-0.6, 0.05, np.log(0.2)]), 5, 20000
    scores, rewards = simulate(theta, horizon, n, np.random.default_rng(2))
    exact = pgfast.regulator_gradient(theta, horizon, gamma)
    variances = {}
    for mode in ("trajectory", "reward_to_go", "baseline"):
        grad, per = pgfast.likelihood_ratio_gradient(scores, rewards, gamma, mode=mode,
                                                     return_per_trajectory=True)
        assert per.shape == (n, 3)
        se = per.std(axis=0, ddof=1) / np.sqrt(n)
        assert np.all(np.abs(grad - exact) < 3 * se), (
            f"{mode}: estimate {grad} vs exact {exact}, 3 SE = {3 * se}")
        variances[mode] = per.var(axis=0, ddof=1)
    message = ", ".join(f"{m}: {v.round(4)} (total {v.sum():.4f})" for m, v in variances.items())
    for mode in ("reward_to_go", "baseline"):
        assert variances[mode].sum() < variances["trajectory"].sum(), message
        assert np.all(variances[mode] < variances["trajectory"]), message


def test_episodes_packed_in_columns_give_the_same_estimates():
    """The same rollouts laid out as several episodes per column (terminated
    every `horizon` steps) or as one unfinished episode per column."""
    theta, horizon, n, per_column = np.array([-0.6, 0.05, np.log(0.2)]), 5, 4000, 4
    scores, rewards = simulate(theta, horizon, n, np.random.default_rng(3))
    cols = n // per_column
    # Rollout j = c * per_column + e goes to column c, episode e.
    packed_s = scores.reshape(horizon, cols, per_column, 3).transpose(2, 0, 1, 3)
    packed_s = packed_s.reshape(per_column * horizon, cols, 3)
    packed_r = rewards.reshape(horizon, cols, per_column).transpose(2, 0, 1)
    packed_r = packed_r.reshape(per_column * horizon, cols)
    term = np.zeros(packed_r.shape, bool)
    term[horizon - 1::horizon] = True
    for mode in ("trajectory", "reward_to_go", "baseline"):
        flat = pgfast.likelihood_ratio_gradient(scores, rewards, 0.9, mode=mode)
        packed = pgfast.likelihood_ratio_gradient(packed_s, packed_r, 0.9, terminated=term,
                                                  mode=mode)
        np.testing.assert_allclose(packed, flat, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("args, err, match", [
    (([0.0, 0.0], 5), ValueError, "theta"),
    (([[0.0, 0.0, 0.0]], 5), ValueError, "theta"),
    (([0.0, np.nan, 0.0], 5), ValueError, "theta"),
    (([0.0, 0.0, 0.0], 0), ValueError, "horizon"),
    (([0.0, 0.0, 0.0], 2.5), TypeError, "horizon"),
    (([0.0, 0.0, 0.0], 5, 1.1), ValueError, "gamma"),
])
def test_bad_input(args, err, match):
    for f in (pgfast.regulator_utility, pgfast.regulator_gradient):
        with pytest.raises(err, match=match):
            f(*args)
