"""What practitioners rely on, each an option with a tested effect: observation
normalisation, reward scaling, minibatched value fitting, step-size annealing, Fisher subsampling,
and the value baseline evaluated on live steps only."""
import numpy as np
import pytest

import pgfast
from pgfast.baselines import ValueBaseline
from pgfast.returns import gae, reward_to_go


# --- observation normalisation -----------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: pgfast.LinearSoftmax(4, 2), lambda: pgfast.MLPSoftmax(4, 2, hidden=(8, 5)),
    lambda: pgfast.LinearGaussian(4, 2), lambda: pgfast.MLPGaussian(4, 2, hidden=(6,)),
])
def test_folded_theta_on_raw_observations_equals_theta_on_normalised_ones(make):
    policy = make()
    rng = np.random.default_rng(0)
    normalizer = pgfast.ObservationNormalizer(4)
    normalizer.update(rng.normal([1, -2, 30, 0.01], [0.1, 2, 10, 0.001], size=(500, 4)))
    theta = policy.init(rng) + 0.1 * rng.standard_normal(policy.n_params)
    raw = rng.normal([1, -2, 30, 0.01], [0.1, 2, 10, 0.001], size=(50, 4))
    actions = policy.sample(theta, normalizer.normalize(raw), rng)[0]
    np.testing.assert_allclose(policy.log_prob(normalizer.fold(policy, theta), raw, actions),
                               policy.log_prob(theta, normalizer.normalize(raw), actions),
                               rtol=1e-10, atol=1e-10)
    rows = np.stack([theta, 2 * theta])   # one θ per slot folds row by row
    np.testing.assert_array_equal(normalizer.fold(policy, rows)[1],
                                  normalizer.fold(policy, 2 * theta))


def test_running_statistics_are_those_of_all_observations_seen():
    rng = np.random.default_rng(1)
    normalizer = pgfast.ObservationNormalizer(3)
    batches = [rng.normal(5, 3, size=(n, 3)) for n in (1, 17, 250)]
    for batch in batches:
        normalizer.update(batch)
    everything = np.vstack(batches)
    np.testing.assert_allclose(normalizer.mean, everything.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(normalizer.var, everything.var(axis=0), rtol=1e-12)
    assert normalizer.count == len(everything)


def test_problem_normalises_training_batches_and_freezes_for_evaluation():
    problem = pgfast.Problem("MountainCar-v0", gamma=0.99, normalize_observations=True)
    policy = pgfast.LinearSoftmax(2, 3)
    theta = policy.init(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    for _ in range(5):
        traj = problem.rollouts(policy, theta, 8, rng, update_statistics=True)
    stats = problem.obs_normalizer.state_dict()
    assert stats["count"] == 5 * 8 * 200
    # Velocities are ~1e-3 raw; the policy and the update see them at unit scale.
    seen = traj.observations[traj.alive]
    assert np.all(np.abs(seen.mean(axis=0)) < 1.0) and np.all(seen.std(axis=0) > 0.3)
    evaluation = problem.rollouts(policy, theta, 4, rng, deterministic=True)
    pgfast.utility(problem, policy, theta, 4, rng)   # side-effect free as well
    problem.rollouts(policy, theta, 4, rng)
    assert problem.obs_normalizer.count == stats["count"]   # frozen
    assert np.abs(evaluation.observations[evaluation.alive]).max() < 20
    plain = pgfast.Problem("MountainCar-v0", gamma=0.99)
    assert plain.obs_normalizer is None
    with pytest.raises(TypeError, match="normalize_observations"):
        pgfast.Problem("MountainCar-v0", normalize_observations="yes")


def test_normaliser_state_round_trips_through_a_checkpoint(tmp_path):
    problem = pgfast.Problem("CartPole-v1", gamma=0.99, normalize_observations=True)
    policy = pgfast.LinearSoftmax(4, 2)
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    rng = np.random.default_rng(0)
    theta, _ = pgfast.train(update, policy.init(rng), iterations=2, rng=rng, progress=False,
                            checkpoint_dir=tmp_path)
    fresh = pgfast.Problem("CartPole-v1", gamma=0.99, normalize_observations=True)
    again = pgfast.TrustRegionUpdate(fresh, policy, m=4)
    pgfast.load_checkpoint(tmp_path, update=again)
    np.testing.assert_array_equal(fresh.obs_normalizer.mean, problem.obs_normalizer.mean)
    assert fresh.obs_normalizer.count == problem.obs_normalizer.count > 0


# --- the value baseline ------------------------------------------------------------

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


# --- update options ----------------------------------------------------------------

def test_ppo_step_size_anneals_linearly_to_zero(cartpole, softmax):
    update = pgfast.ClampedSurrogateUpdate(cartpole, softmax, m=4, alpha=0.01,
                                           anneal_steps=500)
    rng = np.random.default_rng(0)
    theta = softmax.init(rng)
    sizes = []
    while update.steps_done < 500:
        sizes.append(update.step_size())
        theta, _ = update.update(theta, rng)
    assert sizes[0] == 0.01 and all(np.diff(sizes) < 0)
    assert update.step_size() == 0.0
    frozen, _ = update.update(theta, rng)
    np.testing.assert_array_equal(frozen, theta)   # α = 0: no step
    assert update.state_dict()["steps_done"] == update.steps_done


def test_fisher_subsample_uses_every_kth_step(cartpole):
    policy = pgfast.MLPSoftmax(4, 2, hidden=(8,))
    rng = np.random.default_rng(0)
    theta = policy.init(rng)
    traj = cartpole.rollouts(policy, theta, 6, rng)
    grad = rng.standard_normal(policy.n_params)
    for k in (1, 3):
        update = pgfast.TrustRegionUpdate(cartpole, policy, solver="cg", fisher_subsample=k)
        u = update.direction(theta, traj, grad, per_step=True)
        fvp = policy.fisher_operator(theta, traj.observations[traj.alive][::k])
        np.testing.assert_allclose(fvp(u) + update.damping * u, grad, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="fisher_subsample"):
        pgfast.TrustRegionUpdate(cartpole, policy, fisher_subsample=0)


def test_book_mean_baseline_is_kept_beside_no_value_baseline(cartpole, softmax):
    on = pgfast.NaturalPolicyUpdate(cartpole, softmax, advantages="book", baseline=True)
    off = pgfast.NaturalPolicyUpdate(cartpole, softmax, advantages="book", baseline=False)
    assert on.baseline is None and on.subtract_mean and not off.subtract_mean
    traj = cartpole.rollouts(softmax, softmax.init(np.random.default_rng(0)), 8,
                             np.random.default_rng(1))
    theta = softmax.init(np.random.default_rng(0))
    assert not np.allclose(on.book_gradient(theta, traj)[0], off.book_gradient(theta, traj)[0])
