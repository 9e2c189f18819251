"""What practitioners rely on, each an option with a tested effect: observation
normalisation (folding and running statistics), step-size annealing and Fisher
subsampling (the value baseline's options are in test_baselines.py)."""
import numpy as np
import pytest

import pgfast


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


# --- the value baseline ------------------------------------------------------------


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
