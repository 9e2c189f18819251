"""pgfast.ValueBaseline: how V is fitted and what the updates take from it."""
import numpy as np
import pytest

import pgfast
from pgfast.baselines import ValueBaseline
from pgfast.returns import gae, reward_to_go


def test_minibatched_value_fit_fits_better_for_the_same_passes_and_is_seeded():
    problem, traj = _batch()
    losses, params = {}, {}
    for size in (None, 32):
        for seed in (0, 0, 1):
            baseline = ValueBaseline(pgfast.MLPValue(4, hidden=(16,)), value_epochs=5,
                                     value_lr=1e-2, value_minibatch=size)
            baseline.params = baseline.value_fn.init(np.random.default_rng(9))
            _, targets = baseline.advantages(traj, 0.99, None)
            baseline.fit(traj, targets, np.random.default_rng(seed))
            obs, y = traj.observations[traj.alive], targets[traj.alive]
            losses[size] = baseline.value_fn.loss_and_grad(baseline.params, obs, y)[0]
            params.setdefault(size, []).append(baseline.params)
    assert losses[32] < losses[None]   # 5 passes of many steps vs 5 steps
    np.testing.assert_array_equal(params[32][0], params[32][1])
    assert not np.array_equal(params[32][0], params[32][2])   # the shuffle is the rng's
    with pytest.raises(ValueError, match="value_minibatch"):
        ValueBaseline(pgfast.MLPValue(4, hidden=(4,)), value_minibatch=0)


def test_book_mean_baseline_is_kept_beside_no_value_baseline(cartpole, softmax):
    on = pgfast.NaturalPolicyUpdate(cartpole, softmax, advantages="book", baseline=True)
    off = pgfast.NaturalPolicyUpdate(cartpole, softmax, advantages="book", baseline=False)
    assert on.baseline is None and on.subtract_mean and not off.subtract_mean
    traj = cartpole.rollouts(softmax, softmax.init(np.random.default_rng(0)), 8,
                             np.random.default_rng(1))
    theta = softmax.init(np.random.default_rng(0))
    assert not np.allclose(on.book_gradient(theta, traj)[0], off.book_gradient(theta, traj)[0])


def _batch():
    problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    policy = pgfast.LinearSoftmax(4, 2)
    traj = problem.rollouts(policy, policy.init(np.random.default_rng(0)), 12,
                            np.random.default_rng(0))
    return problem, traj


def test_advantages_from_live_steps_equal_the_all_rows_reference():
    problem, traj = _batch()
    value_fn = pgfast.MLPValue(4, hidden=(8,))
    baseline = ValueBaseline(value_fn, lam=0.9)
    adv, targets = baseline.advantages(traj, 0.99, np.random.default_rng(3))
    d, m = traj.rewards.shape
    values = value_fn.value(baseline.params, traj.observations.reshape(d * m, -1)).reshape(d, m)
    nxt = value_fn.value(baseline.params,
                         traj.next_observations.reshape(d * m, -1)).reshape(d, m)
    # The reference uses V everywhere; only live entries matter to GAE and targets.
    values, nxt = values * traj.alive, nxt * traj.alive
    ref = gae(traj.rewards, values, nxt, 0.99, 0.9, traj.terminated, traj.truncated)
    ref_targets = reward_to_go(traj.rewards, 0.99, traj.terminated, traj.truncated,
                               next_values=nxt)
    np.testing.assert_allclose(adv[traj.alive], ref[traj.alive], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(targets[traj.alive], ref_targets[traj.alive], rtol=1e-12)


def _with_rewards(traj, rewards):
    import copy

    other = copy.copy(traj)
    other.rewards = rewards
    return other


def test_reward_scaling_divides_by_the_running_sd_of_discounted_returns():
    problem, traj = _batch()
    traj = _with_rewards(traj, traj.rewards * np.linspace(0.5, 3.0, len(traj.rewards))[:, None])
    phi = pgfast.MLPValue(4, hidden=(8,)).init(np.random.default_rng(2))
    scaled = ValueBaseline(pgfast.MLPValue(4, hidden=(8,)), lam=0.9, params=phi,
                           scale_rewards=True)
    plain = ValueBaseline(pgfast.MLPValue(4, hidden=(8,)), lam=0.9, params=phi)
    # The reference: G_k = r_k + γ G_{k−1} down each trajectory, by a plain loop.
    so_far = np.zeros_like(traj.rewards)
    for k in range(len(so_far)):
        so_far[k] = traj.rewards[k] + (0.99 * so_far[k - 1] if k else 0.0)
    first = so_far[traj.alive]
    for seen in (first, np.concatenate([first, first])):   # two batches: running statistics
        sigma = np.sqrt(seen.var() + 1e-8)
        adv, targets = scaled.advantages(traj, 0.99, None)
        ref_adv, ref_targets = plain.advantages(_with_rewards(traj, traj.rewards / sigma),
                                                0.99, None)
        np.testing.assert_allclose(adv, ref_adv, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(targets, ref_targets, rtol=1e-12, atol=1e-12)
    # The effect: V's targets no longer depend on the env's reward scale.
    fresh = [ValueBaseline(pgfast.MLPValue(4, hidden=(8,)), params=phi, scale_rewards=on)
             for on in (True, True, False)]
    small = fresh[0].advantages(traj, 0.99, None)[1]
    large = fresh[1].advantages(_with_rewards(traj, traj.rewards * 1000.0), 0.99, None)[1]
    np.testing.assert_allclose(large, small, rtol=1e-6, atol=1e-9)
    assert np.abs(fresh[2].advantages(traj, 0.99, None)[1]).max() > 10 * np.abs(small).max()
    restored = ValueBaseline(pgfast.MLPValue(4, hidden=(8,)), scale_rewards=True)
    restored.load_state_dict(scaled.state_dict())
    assert restored.return_stats.count == 2 * len(first)
    with pytest.raises(TypeError, match="scale_rewards"):
        ValueBaseline(pgfast.MLPValue(4, hidden=(8,)), scale_rewards="yes")


def test_minibatch_fit_on_threads_is_the_one_thread_fit_bit_for_bit():
    problem, traj = _batch()
    fitted = []
    for threads in (1, 2, 3):
        baseline = ValueBaseline(pgfast.MLPValue(4, hidden=(16, 16)), value_epochs=3,
                                 value_lr=1e-2, value_minibatch=150)   # blocks of 64, 64, 22
        baseline.params = baseline.value_fn.init(np.random.default_rng(9))
        _, targets = baseline.advantages(traj, 0.99, None)
        baseline.fit(traj, targets, np.random.default_rng(5), num_threads=threads)
        fitted.append(baseline.params)
    np.testing.assert_array_equal(fitted[0], fitted[1])
    np.testing.assert_array_equal(fitted[0], fitted[2])
    with pytest.raises(ValueError, match="^num_threads:"):
        baseline.fit(traj, targets, np.random.default_rng(5), num_threads=0)


def test_squared_error_gradient_over_blocks_matches_finite_differences():
    value = pgfast.MLPValue(3, hidden=(8,))
    rng = np.random.default_rng(2)
    phi, obs, y = value.init(rng), rng.standard_normal((200, 3)), rng.standard_normal(200)
    grad = np.empty(value.n_params)
    loss = value.kernel.squared_error_grad(phi, obs, y, grad, 2)   # four blocks of rows
    assert loss == pytest.approx(0.5 * np.mean((value.value(phi, obs) - y) ** 2), rel=1e-12)
    h = 1e-6
    for i in rng.choice(value.n_params, 6, replace=False):
        e = np.zeros_like(phi)
        e[i] = h
        up = 0.5 * np.mean((value.value(phi + e, obs) - y) ** 2)
        down = 0.5 * np.mean((value.value(phi - e, obs) - y) ** 2)
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_compiled_minibatch_fit_takes_the_steps_of_the_python_loop():
    """fit_minibatches = squared_error_grad then Adam.step per minibatch, epochs cut
    at their ends (a last short minibatch each)."""
    value = pgfast.MLPValue(3, hidden=(8, 8))
    rng = np.random.default_rng(4)
    phi, obs, y = value.init(rng), rng.standard_normal((50, 3)), rng.standard_normal(50)
    order = np.stack([rng.permutation(50) for _ in range(3)])
    adam, want = pgfast.Adam(value.n_params, 1e-2), phi.copy()
    grad = np.empty(value.n_params)
    for epoch in order:
        for start in range(0, 50, 16):   # 16, 16, 16, 2
            rows = epoch[start:start + 16]
            value.kernel.squared_error_grad(want, obs[rows], y[rows], grad)
            want = adam.step(want, -grad)
    m, v, got = np.zeros(value.n_params), np.zeros(value.n_params), phi.copy()
    t = value.kernel.fit_minibatches(got, obs, y, order, 16, m, v, 0, 1e-2, 0.9, 0.999, 1e-8)
    assert t == adam.t == 12
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(v, adam.v, rtol=1e-13, atol=1e-300)
