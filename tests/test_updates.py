"""Chapter-12 updates: the math of each step, checked on small problems."""
import numpy as np
import pytest

import pgfast
from helpers import theta0
from pgfast.updates import trajectory_scores


def test_natural_direction_is_inverse_fisher_times_gradient(cartpole, softmax):
    theta = theta0(softmax)
    update = pgfast.NaturalPolicyUpdate(cartpole, softmax, m=32, damping=0.0,
                                        advantages="book", fisher="empirical", baseline=False)
    traj = cartpole.rollouts(softmax, theta, 32, np.random.default_rng(1))
    S = trajectory_scores(softmax, theta, traj)
    grad = S.T @ traj.returns(cartpole.gamma) / 32
    F = S.T @ S / 32
    u = update.direction(theta, traj, grad, S)
    np.testing.assert_allclose(F @ u, grad, rtol=1e-6, atol=1e-8)
    # The book's step: ½ ΔθᵀFΔθ = ε.
    step = update.natural_step(theta, traj, np.random.default_rng(0))
    assert 0.5 * step @ F @ step == pytest.approx(update.epsilon, rel=1e-6)


def test_trajectory_scores_sum_per_sample_gradients(cartpole, softmax):
    theta = theta0(softmax)
    traj = cartpole.rollouts(softmax, theta, 5, np.random.default_rng(2))
    S = trajectory_scores(softmax, theta, traj)
    for i in range(5):
        steps = traj.alive[:, i]
        per_sample = softmax.grad_log_prob(theta, traj.observations[steps, i],
                                           traj.actions[steps, i])
        np.testing.assert_allclose(S[i], per_sample.sum(axis=0), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fisher", ["empirical", "analytic"])
def test_cg_solver_matches_dense_solver(cartpole, softmax, fisher):
    theta = theta0(softmax)
    traj = cartpole.rollouts(softmax, theta, 32, np.random.default_rng(3))
    S = trajectory_scores(softmax, theta, traj)
    grad = S.T @ traj.returns(cartpole.gamma) / 32
    dense = pgfast.NaturalPolicyUpdate(cartpole, softmax, fisher=fisher, solver="dense",
                                       damping=0.1, advantages="book")
    cg = pgfast.NaturalPolicyUpdate(cartpole, softmax, fisher=fisher, solver="cg",
                                    damping=0.1, cg_iterations=200, advantages="book")
    np.testing.assert_allclose(cg.direction(theta, traj, grad, S),
                               dense.direction(theta, traj, grad, S), rtol=1e-5, atol=1e-8)


def test_restricted_step_has_the_books_length(cartpole, softmax):
    theta = theta0(softmax)
    update = pgfast.RestrictedPolicyUpdate(cartpole, softmax, m=16, epsilon=0.02)
    new, info = update.update(theta, np.random.default_rng(4))
    step = new - theta
    assert 0.5 * step @ step == pytest.approx(0.02, rel=1e-9)
    assert info["steps"] > 0


@pytest.mark.parametrize("advantages", ["book", "gae"])
def test_trpo_step_respects_kl_and_improves_surrogate(cartpole, softmax, advantages):
    theta = theta0(softmax)
    update = pgfast.TrustRegionUpdate(cartpole, softmax, m=32, epsilon=0.01,
                                      advantages=advantages)
    new, info = update.update(theta, np.random.default_rng(5))
    assert info["accepted"]
    traj = cartpole.rollouts(softmax, theta, 32, np.random.default_rng(5))
    obs = traj.observations[traj.alive]
    discount = (0.99 ** np.arange(traj.rewards.shape[0]))[:, None]
    weights = (traj.alive / (traj.alive.sum(0) * 32) * discount)[traj.alive]
    # The same seed replays the same batch: the measured constraint is g(θ′) ≤ ε.
    assert weights @ softmax.kl(theta, new, obs) <= 0.01 + 1e-12
    assert info["surrogate_improvement"] > 0
    assert info["kl"] > 0


class InfiniteKL:
    """A policy whose KL is always infinite: no trust-region step can pass."""

    def __init__(self, policy):
        self._policy = policy

    def __getattr__(self, name):
        return getattr(self._policy, name)

    def kl(self, theta_old, theta_new, obs):
        return np.full(len(obs), np.inf)


def test_trpo_returns_theta_unchanged_when_no_step_is_accepted(cartpole, softmax):
    theta = theta0(softmax)
    update = pgfast.TrustRegionUpdate(cartpole, softmax, m=8, max_backtracks=3)
    update.policy = InfiniteKL(softmax)
    new, info = update.update(theta, np.random.default_rng(6))
    np.testing.assert_array_equal(new, theta)
    assert not info["accepted"]
    assert info["backtracks"] == 3


def test_clamped_surrogate_gradient_by_hand():
    policy = pgfast.LinearSoftmax(1, 2)
    update = pgfast.ClampedSurrogateUpdate(pgfast.Problem("CartPole-v1"), pgfast.LinearSoftmax(4, 2),
                                           clip=0.2)
    update.policy = policy                       # the tiny batch below is by hand
    theta_old = np.zeros(4)                      # W (1×2), b (2): π_old = [½, ½]
    theta_new = np.array([0.0, 0.0, 0.0, 0.5])   # logits [0, 0.5]
    obs = np.array([[1.0], [1.0], [1.0]])
    act = np.array([1, 1, 0])
    adv = np.array([2.0, -1.0, 1.0])
    weights = np.full(3, 1 / 3)
    old_logp = policy.log_prob(theta_old, obs, act)
    np.testing.assert_allclose(old_logp, np.log(0.5))
    p1 = 1 / (1 + np.exp(-0.5))                  # π_new(1)
    w = np.array([p1, p1, 1 - p1]) / 0.5         # ratios [1.245, 1.245, 0.755]
    # Step 0: A > 0 and w > 1.2: clamped. Step 1: A < 0, w > 1: kept. Step 2: A > 0, w < 1: kept.
    def score(a):   # ∇ log π(a | s = 1) for W and b: (onehot − p) ⊗ [s] and (onehot − p)
        p = np.array([1 - p1, p1])
        g = np.eye(2)[a] - p
        return np.concatenate([g * 1.0, g])
    want = (w[1] * adv[1] * score(1) + w[2] * adv[2] * score(0)) / 3
    got = update.clamped_gradient(theta_new, obs, act, old_logp, adv, weights)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ppo_reports_a_surrogate_improvement(cartpole, softmax):
    update = pgfast.ClampedSurrogateUpdate(cartpole, softmax, m=8)
    _, info = update.update(theta0(softmax), np.random.default_rng(13))
    assert np.isfinite(info["surrogate_improvement"]) and info["surrogate_improvement"] > 0


def test_entropy_bonus_raises_entropy(cartpole, softmax):
    theta = theta0(softmax)
    rng_seed = 12
    plain = pgfast.ClampedSurrogateUpdate(cartpole, softmax, m=8, k_max=3)
    bonus = pgfast.ClampedSurrogateUpdate(cartpole, softmax, m=8, k_max=3, entropy_coef=10.0)
    a, _ = plain.update(theta, np.random.default_rng(rng_seed))
    b, _ = bonus.update(theta, np.random.default_rng(rng_seed))
    obs = np.random.default_rng(0).normal(size=(500, 4))
    assert softmax.entropy(b, obs).mean() > softmax.entropy(a, obs).mean()
    with pytest.raises(ValueError, match="entropy_coef"):
        pgfast.ClampedSurrogateUpdate(cartpole, softmax, entropy_coef=-1.0)


def test_policy_gradient_update_helpers(cartpole, softmax):
    est = pgfast.RewardToGoGradient(cartpole, softmax, m=8)
    theta = theta0(softmax)
    plain = pgfast.PolicyGradientUpdate(est, alpha=0.1)
    new, _ = plain.update(theta, np.random.default_rng(7))
    grad = est.gradient(theta, np.random.default_rng(7))
    np.testing.assert_allclose(new, theta + 0.1 * grad, rtol=1e-12)
    scaled = pgfast.PolicyGradientUpdate(est, alpha=1.0, max_grad_norm=1e-3)
    new, _ = scaled.update(theta, np.random.default_rng(7))
    assert np.linalg.norm(new - theta) == pytest.approx(min(1e-3, np.linalg.norm(grad)))
    clipped = pgfast.PolicyGradientUpdate(est, alpha=1.0, grad_clip=(-1e-4, 1e-4))
    new, _ = clipped.update(theta, np.random.default_rng(7))
    assert np.abs(new - theta).max() <= 1e-4 + 1e-15
    adam = pgfast.PolicyGradientUpdate(est, alpha=0.01, optimizer="adam")
    new, _ = adam.update(theta, np.random.default_rng(7))
    np.testing.assert_allclose(np.abs(new - theta), 0.01, rtol=1e-5)  # first Adam step: ±α


@pytest.mark.parametrize("make", [
    lambda p, pol: pgfast.NaturalPolicyUpdate(p, pol),
    lambda p, pol: pgfast.TrustRegionUpdate(p, pol),
    lambda p, pol: pgfast.ClampedSurrogateUpdate(p, pol),
    lambda p, pol: pgfast.RestrictedPolicyUpdate(p, pol),
])
def test_updates_are_deterministic_under_a_seed(cartpole, softmax, make):
    update = make(cartpole, softmax)
    a, info_a = update.update(theta0(softmax), np.random.default_rng(9))
    b, info_b = make(cartpole, softmax).update(theta0(softmax), np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
    assert set(info_a) >= {"mean_return", "kl", "entropy", "steps", "backtracks",
                           "surrogate_improvement"}


def test_update_bad_input(cartpole, softmax):
    with pytest.raises(ValueError, match="epsilon"):
        pgfast.NaturalPolicyUpdate(cartpole, softmax, epsilon=0)
    with pytest.raises(ValueError, match="fisher"):
        pgfast.NaturalPolicyUpdate(cartpole, softmax, fisher="exact")
    with pytest.raises(ValueError, match="solver"):
        pgfast.NaturalPolicyUpdate(cartpole, softmax, solver="qr")
    with pytest.raises(ValueError, match="backtrack_ratio"):
        pgfast.TrustRegionUpdate(cartpole, softmax, backtrack_ratio=1.0)
    with pytest.raises(ValueError, match="advantages"):
        pgfast.ClampedSurrogateUpdate(cartpole, softmax, advantages="td")
    with pytest.raises(ValueError, match="theta"):
        pgfast.TrustRegionUpdate(cartpole, softmax).update(np.zeros(3), np.random.default_rng())
    with pytest.raises(TypeError, match="estimator"):
        pgfast.PolicyGradientUpdate("not an estimator")


@pytest.mark.parametrize("damping, error", [(-1e-3, ValueError), (float("nan"), ValueError),
                                           ("0.1", TypeError)])
def test_natural_update_refuses_a_bad_damping(cartpole, softmax, damping, error):
    with pytest.raises(error, match="^damping:"):
        pgfast.NaturalPolicyUpdate(cartpole, softmax, damping=damping)


def test_renamed_arguments_keep_working_for_a_release():
    problem, policy = pgfast.Problem("CartPole-v1"), pgfast.LinearSoftmax(4, 2)
    with pytest.warns(DeprecationWarning, match="epsilon= is now clip="):
        update = pgfast.ClampedSurrogateUpdate(problem, policy, epsilon=0.3, normalize=False)
    assert update.clip == 0.3 and update.normalize_advantages is False
    with pytest.warns(DeprecationWarning, match="max_norm= is now max_grad_norm="):
        pg = pgfast.PolicyGradientUpdate(pgfast.RewardToGoGradient(problem, policy, m=2),
                                         max_norm=2.0, clip=(-1.0, 1.0))
    assert pg.max_grad_norm == 2.0 and pg.grad_clip == (-1.0, 1.0)
    with pytest.warns(DeprecationWarning, match="fit_iterations= is now value_epochs="):
        baseline = pgfast.ValueBaseline(pgfast.LinearValue(4), fit_iterations=3, lr=0.1,
                                        minibatch_size=8)
    assert (baseline.value_epochs, baseline.value_lr, baseline.value_minibatch) == (3, 0.1, 8)
    with pytest.raises(TypeError, match="unexpected keyword argument 'nonsense'"):
        pgfast.ClampedSurrogateUpdate(problem, policy, nonsense=1)


def test_no_argument_is_ignored():
    """λ and the value fit belong to a ValueBaseline given as value_fn: giving them to
    the update as well is refused (it was silently ignored), as is λ without one."""
    problem, policy = pgfast.Problem("CartPole-v1"), pgfast.LinearSoftmax(4, 2)
    baseline = pgfast.ValueBaseline(pgfast.LinearValue(4), lam=0.9)
    for cls in (pgfast.NaturalPolicyUpdate, pgfast.TrustRegionUpdate,
                pgfast.ClampedSurrogateUpdate):
        assert cls(problem, policy, value_fn=baseline).baseline is baseline
        with pytest.raises(ValueError, match="^lam: the ValueBaseline given as value_fn"):
            cls(problem, policy, value_fn=baseline, lam=0.95)
        with pytest.raises(ValueError, match="^value_lr: "):
            cls(problem, policy, value_fn=baseline, value_lr=1e-3)
        with pytest.raises(ValueError, match='^lam: advantages="book"'):
            cls(problem, policy, advantages="book", lam=0.9)
        with pytest.raises(ValueError, match="^value_fn: expects 3 observation values"):
            cls(problem, policy, value_fn=pgfast.LinearValue(3))
        assert cls(problem, policy).baseline.lam == 0.95   # one λ default everywhere
    assert pgfast.GAEGradient(problem, policy).baseline.lam == 0.95


@pytest.mark.parametrize("make", [
    lambda p, pol, **kw: pgfast.TrustRegionUpdate(p, pol, m=4, **kw),
    lambda p, pol, **kw: pgfast.NaturalPolicyUpdate(p, pol, m=4, **kw),
    lambda p, pol, **kw: pgfast.ClampedSurrogateUpdate(p, pol, m=4, k_max=2, **kw),
])
def test_batches_counted_in_steps_take_enough_episodes(cartpole, softmax, make):
    update = make(cartpole, softmax, batch_steps=1000)
    rng = np.random.default_rng(3)
    assert update.batch_size() == 4   # no episode seen yet: m
    theta, info = update.update(theta0(softmax), rng)
    assert update.mean_length == info["steps"] / 4
    want = max(4, int(np.ceil(1000 / update.mean_length)))
    assert update.batch_size() == want > 4   # CartPole's first episodes are short
    resumed = make(cartpole, softmax, batch_steps=1000)
    resumed.load_state_dict(update.state_dict())
    a, info_a = update.update(theta, np.random.default_rng(4))
    b, info_b = resumed.update(theta, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)   # the size is part of the checkpoint state
    assert info_a["steps"] == info_b["steps"] >= 0.5 * 1000   # want episodes of about that mean


def test_batch_steps_off_keeps_m_and_the_state(cartpole, softmax):
    update = pgfast.TrustRegionUpdate(cartpole, softmax, m=4)
    update.update(theta0(softmax), np.random.default_rng(0))
    assert update.batch_size() == 4 and "mean_length" not in update.state_dict()
    with pytest.raises(ValueError, match="^batch_steps:"):
        pgfast.TrustRegionUpdate(cartpole, softmax, batch_steps=0)
    huge = pgfast.TrustRegionUpdate(cartpole, softmax, m=4, batch_steps=2**60)
    huge.mean_length = 10.0
    with pytest.raises(ValueError, match="^batch_steps:"):   # named, before any allocation
        huge.batch_size()
