"""`rng` as numpy.random.default_rng reads it, everywhere: a Generator (used as
given, its stream advancing), an int seed, or None for a fresh seed."""
import numpy as np
import pytest

import pgfast
from pgfast._validation import check_rng


def test_a_generator_is_used_as_given():
    rng = np.random.default_rng(0)
    assert check_rng(rng) is rng


@pytest.mark.parametrize("seed", [0, 7, np.int64(7), 2**70])
def test_an_int_seeds_what_default_rng_seeds(seed):
    assert check_rng(seed).random(3).tolist() == np.random.default_rng(seed).random(3).tolist()


def test_seed_sequences_and_bit_generators_as_default_rng_takes_them():
    ss = np.random.SeedSequence(3)
    assert check_rng(ss).random() == np.random.default_rng(np.random.SeedSequence(3)).random()
    assert check_rng(np.random.PCG64(3)).random() == np.random.default_rng(3).random()


def test_none_draws_a_fresh_seed():
    a, b = check_rng(None), check_rng(None)
    assert isinstance(a, np.random.Generator)
    assert a.integers(2**62) != b.integers(2**62)


@pytest.mark.parametrize("bad", [True, 1.5, "0", [0], np.random.RandomState(0)])
def test_other_values_are_a_type_error_naming_the_argument(bad):
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator, an int seed or None"):
        check_rng(bad)


def test_negative_seed_is_a_value_error():
    with pytest.raises(ValueError, match="rng: expected a non-negative int seed"):
        check_rng(-1)


def test_policy_init_takes_an_int_seed():
    policy = pgfast.MLPSoftmax(4, 2, hidden=(8,))
    assert np.array_equal(policy.init(0), policy.init(np.random.default_rng(0)))
    assert policy.init(None).shape == (policy.n_params,)


def test_evaluate_takes_an_int_seed_or_none():
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(0)
    seeded = pgfast.evaluate("CartPole-v1", policy, theta, episodes=4, rng=3, deterministic=False)
    again = pgfast.evaluate("CartPole-v1", policy, theta, episodes=4,
                            rng=np.random.default_rng(3), deterministic=False)
    assert np.array_equal(seeded, again)
    assert pgfast.evaluate("CartPole-v1", policy, theta, episodes=2).shape == (2,)


def test_rollout_and_sample_take_an_int_seed():
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(0)
    env = pgfast.make_vec("CartPole-v1", num_envs=4)
    a = pgfast.rollout(env, policy, theta, 20, 5)
    b = pgfast.rollout(env, policy, theta, 20, np.random.default_rng(5))
    assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
    obs = np.zeros((3, 4))
    assert np.array_equal(policy.sample(theta, obs, 9)[0],
                          policy.sample(theta, obs, np.random.default_rng(9))[0])
    env.close()
