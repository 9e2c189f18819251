"""pgfast.Problem: env resolution, chunked rollouts, the utility, and the running
observation statistics it owns (frozen outside training batches)."""
import numpy as np
import pytest

import pgfast


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


def test_problem_takes_a_bare_kernel():
    kernel = pgfast.make_kernel("CartPole-v1", num_envs=8)
    problem = pgfast.Problem(kernel, gamma=1.0)
    assert problem.horizon == 500
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))
    u = pgfast.utility(problem, policy, theta, 20, np.random.default_rng(1))
    assert 8 <= u <= 500
    with pytest.raises(ValueError, match="policy"):
        pgfast.Problem(kernel).check_policy(pgfast.LinearGaussian(4, 1))


def test_an_ids_vector_envs_are_kept_for_the_last_few_sizes():
    problem = pgfast.Problem("CartPole-v1")
    first = problem.env_for(3)
    assert problem.env_for(3) is first   # kept
    for n in range(10, 10 + pgfast.Problem.KEPT_SIZES):
        problem.env_for(n)
    assert problem.env_for(3) is not first   # the least recently used went first
    assert problem.env_for(3).num_envs == 3
