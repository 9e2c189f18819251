"""Chapter-11 estimators over an environment, against the simple regulator's
closed-form gradient (pgfast.regulator) and against each other."""
import warnings

import numpy as np
import pytest

import pgfast
from pgfast.regulator import regulator_gradient, regulator_utility

from helpers import DEPTH

THETA = np.array([-0.4, 0.05, np.log(0.3)])   # [w, b, log_std]


@pytest.fixture(scope="module")
def problem(regulator):
    return regulator


@pytest.fixture(scope="module")
def policy():
    return pgfast.LinearGaussian(1, 1)


def draws(estimator, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([estimator.gradient(THETA, rng) for _ in range(n)])


def assert_mean_matches(samples, want, label):
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(len(samples))
    assert np.all(np.abs(mean - want) <= 3 * se + 1e-12), (
        f"{label}: mean {mean} vs known answer {want}, 3 SE {3 * se}")
    return samples.var(axis=0, ddof=1)


def test_utility_matches_closed_form(problem, policy):
    rng = np.random.default_rng(1)
    samples = np.array([pgfast.utility(problem, policy, THETA, 200, rng) for _ in range(100)])
    assert_mean_matches(samples[:, None], [regulator_utility(THETA, DEPTH)], "U(θ)")


@pytest.mark.parametrize("cls", [pgfast.LikelihoodRatioGradient, pgfast.RewardToGoGradient,
                                 pgfast.BaselineSubtractionGradient])
def test_score_estimators_are_unbiased(problem, policy, cls):
    samples = draws(cls(problem, policy, m=100), 150)
    assert_mean_matches(samples, regulator_gradient(THETA, DEPTH), cls.__name__)


def test_reward_to_go_and_baseline_have_lower_variance(problem, policy):
    var = {cls.__name__: draws(cls(problem, policy, m=50), 120, seed=7).var(axis=0).sum()
           for cls in (pgfast.LikelihoodRatioGradient, pgfast.RewardToGoGradient,
                       pgfast.BaselineSubtractionGradient)}
    message = f"total variance of the estimates: {var}"
    assert var["RewardToGoGradient"] < var["LikelihoodRatioGradient"], message
    assert var["BaselineSubtractionGradient"] < var["LikelihoodRatioGradient"], message


def test_finite_differences_match_closed_form_differences(problem, policy):
    # Central differences with common random numbers: E[estimate] is exactly the
    # closed form's own central difference, and the variance is small.
    delta = 0.05
    est = pgfast.FiniteDifferenceGradient(problem, policy, m=100, delta=delta,
                                          central=True, common_random_numbers=True)
    want = np.array([(regulator_utility(THETA + delta * e, DEPTH)
                      - regulator_utility(THETA - delta * e, DEPTH)) / (2 * delta)
                     for e in np.eye(3)])
    assert_mean_matches(draws(est, 60), want, "central FD with CRN")
    np.testing.assert_allclose(want, regulator_gradient(THETA, DEPTH), atol=0.02)


def test_book_finite_differences_are_unbiased_for_their_differences(problem, policy):
    delta = 0.1
    est = pgfast.FiniteDifferenceGradient(problem, policy, m=50, delta=delta)
    want = np.array([(regulator_utility(THETA + delta * e, DEPTH)
                      - regulator_utility(THETA, DEPTH)) / delta for e in np.eye(3)])
    samples = draws(est, 60)
    assert_mean_matches(samples, want, "book FD")
    assert est.info["n_rollouts"] == 2 * 3 * 50


def test_regression_gradient_estimator(problem, policy):
    est = pgfast.RegressionGradient(problem, policy, m=60, delta=0.1)
    samples = draws(est, 100)
    # E[ΔU | Δθ] = U(θ + Δθ) − U(θ): curvature biases the fit by O(δ), well below 3 SE here.
    assert_mean_matches(samples, regulator_gradient(THETA, DEPTH), "regression")
    assert est.info["n_rollouts"] == 120


def test_gae_gradient_lambda_one_zero_value_is_reward_to_go_without_discounting(problem, policy):
    # γ = 1: GAE with λ = 1 and V ≡ 0 is the reward-to-go estimator exactly.
    value = pgfast.LinearValue(1)
    gae_est = pgfast.GAEGradient(problem, policy, m=40, lam=1.0, value_fn=value, value_epochs=1)
    rtg = pgfast.RewardToGoGradient(problem, policy, m=40)
    gae_est.baseline.params = np.zeros(value.n_params)
    a = gae_est.gradient(THETA, np.random.default_rng(5))
    b = rtg.gradient(THETA, np.random.default_rng(5))
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_gae_gradient_fits_its_value_baseline(problem, policy):
    value = pgfast.LinearValue(1)
    est = pgfast.GAEGradient(problem, policy, m=200, lam=0.95, value_fn=value,
                             value_params=np.zeros(value.n_params))
    rng = np.random.default_rng(2)
    before = est.baseline.params.copy()
    est.gradient(THETA, rng)
    assert not np.allclose(est.baseline.params, before)
    samples = np.array([est.gradient(THETA, rng) for _ in range(30)])
    assert np.isfinite(samples).all()


def test_same_seed_same_gradient(problem, policy):
    for est in (pgfast.FiniteDifferenceGradient(problem, policy, m=5),
                pgfast.RegressionGradient(problem, policy, m=8),
                pgfast.LikelihoodRatioGradient(problem, policy, m=8),
                pgfast.BaselineSubtractionGradient(problem, policy, m=8)):
        a = est.gradient(THETA, np.random.default_rng(11))
        b = est.gradient(THETA, np.random.default_rng(11))
        np.testing.assert_array_equal(a, b)


def test_cartpole_native_and_gymnasium_paths_agree_in_expectation():
    # The same estimator through the native id and a Gymnasium vector env.
    import gymnasium as gym

    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))
    native = pgfast.Problem("CartPole-v1", gamma=0.99, horizon=50)
    python = pgfast.Problem(gym.make_vec("CartPole-v1", num_envs=8, vectorization_mode="sync"),
                            gamma=0.99, horizon=50)
    u_native = pgfast.utility(native, policy, theta, 400, np.random.default_rng(1))
    u_python = pgfast.utility(python, policy, theta, 400, np.random.default_rng(1))
    # Same policy, same dynamics: mean returns agree within sampling noise.
    assert abs(u_native - u_python) < 0.15 * abs(u_native) + 1.0


def test_bad_input(problem, policy):
    with pytest.raises(ValueError, match="m"):
        pgfast.LikelihoodRatioGradient(problem, policy, m=0)
    with pytest.raises(ValueError, match="delta"):
        pgfast.FiniteDifferenceGradient(problem, policy, m=4, delta=0.0)
    with pytest.raises(ValueError, match="delta"):
        pgfast.RegressionGradient(problem, policy, m=4, delta=-1.0)
    with pytest.warns(UserWarning, match="underdetermined"):
        pgfast.RegressionGradient(problem, policy, m=2)
    with pytest.raises(ValueError, match="policy"):
        pgfast.LikelihoodRatioGradient(problem, pgfast.LinearSoftmax(1, 2), m=4)
    with pytest.raises(ValueError, match="theta"):
        pgfast.LikelihoodRatioGradient(problem, policy, m=4).gradient(
            np.zeros(5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="theta"):
        pgfast.LikelihoodRatioGradient(problem, policy, m=4).gradient(
            np.array([np.nan, 0, 0]), np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng"):
        pgfast.LikelihoodRatioGradient(problem, policy, m=4).gradient(THETA, "0")
    with pytest.raises(ValueError, match="gamma"):
        pgfast.Problem("CartPole-v1", gamma=2.0)
    with pytest.raises(TypeError, match="env"):
        pgfast.Problem(42)
    with pytest.raises(TypeError, match="policy"):
        pgfast.LikelihoodRatioGradient(problem, None, m=4)
    with pytest.raises(TypeError, match="problem"):
        pgfast.LikelihoodRatioGradient("CartPole-v1", policy, m=4)
    with pytest.raises(TypeError, match="theta"):
        pgfast.LikelihoodRatioGradient(problem, policy, m=4).gradient(
            "0 0 0", np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pgfast.RegressionGradient(problem, policy, m=3)


def test_on_steps_is_alive_times_values():
    """Trajectories.on_steps (the trajectory-return weights' one pass) equals NumPy's
    broadcast product bit for bit, NaN and infinity included."""
    problem = pgfast.Problem("CartPole-v1", gamma=0.99, horizon=60)
    policy = pgfast.LinearSoftmax(4, 2)
    rng = np.random.default_rng(5)
    traj = problem.rollouts(policy, policy.init(rng), 9, rng)
    values = rng.standard_normal(9)
    values[3], values[5] = np.nan, -np.inf
    assert not traj.alive.all()   # some episodes end within the depth
    with np.errstate(invalid="ignore"):   # inf * 0: NaN, as on_steps gives
        want = traj.alive * values
    np.testing.assert_array_equal(traj.on_steps(values), want)

