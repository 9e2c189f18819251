"""The fused native rollout loop and the Python fallback for any Gymnasium env."""
import copy

import gymnasium as gym
import numpy as np
import pytest

import pgfast
from helpers import theta0


@pytest.fixture(scope="module")
def policy(softmax):
    return softmax



def test_native_rollout_replays_under_gymnasium(policy):
    """Every recorded transition is what Gymnasium's CartPole does from that state."""
    env = pgfast.make_vec("CartPole-v1", num_envs=6)
    ro = pgfast.rollout(env, policy, theta0(policy), 120, np.random.default_rng(0))
    gym_env = gym.make("CartPole-v1").unwrapped
    gym_env.reset(seed=0)
    nxt = ro.next_observations()
    for t in range(120):
        for b in range(6):
            gym_env.state = ro.observations[t, b].copy()
            gym_env.steps_beyond_terminated = None
            obs, reward, terminated, _, _ = gym_env.step(int(ro.actions[t, b]))
            np.testing.assert_allclose(nxt[t, b], obs, rtol=1e-5, atol=1e-5)
            assert reward == ro.rewards[t, b]
            assert terminated == ro.terminated[t, b]
    assert ro.done.any(), "the test needs episode ends to check the autoreset"


def test_rollout_records_consistent_arrays(policy):
    env = pgfast.make_vec("CartPole-v1", num_envs=8)
    theta = theta0(policy)
    ro = pgfast.rollout(env, policy, theta, 300, np.random.default_rng(1))
    T, B = 300, 8
    assert ro.observations.shape == (T, B, 4) and ro.actions.shape == (T, B)
    assert ro.actions.dtype == np.int64 and ro.terminated.dtype == np.bool_
    logp = policy.log_prob(theta, ro.observations.reshape(-1, 4), ro.actions.reshape(-1))
    np.testing.assert_allclose(ro.log_probs.reshape(-1), logp, rtol=1e-12, atol=1e-12)
    returns, lengths = pgfast.episode_stats(ro.rewards, ro.terminated, ro.truncated)
    np.testing.assert_array_equal(ro.episode_returns, returns)
    assert ro.final_observations.shape == (ro.done.sum(), 4)
    # Within an episode s_{t+1} is the next row's observation.
    within = ~ro.done[:-1]
    np.testing.assert_array_equal(ro.next_observations()[:-1][within], ro.observations[1:][within])


def test_time_limit_truncates(policy):
    env = pgfast.make_vec("CartPole-v1", num_envs=4)
    good = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    ro = pgfast.rollout(env, policy, good, 50, np.random.default_rng(2), time_limit=7)
    lengths = ro.episode_lengths
    assert lengths.max() <= 7
    assert ro.truncated.any()
    assert not (ro.truncated & ro.terminated).any()


@pytest.mark.parametrize("env_id, make_policy, n_slots", [
    ("CartPole-v1", lambda: pgfast.LinearSoftmax(4, 2), 16),
    ("Pendulum-v1", lambda: pgfast.MLPGaussian(3, 1, hidden=(8, 8)), 5),
])
def test_same_seed_same_rollout_whatever_the_thread_count(env_id, make_policy, n_slots):
    # More threads split the slots into narrower chunks (16 slots: one chunk of 16 on
    # one thread, two of 8 on two; 5 slots on 3 threads: chunks of 2, 2, 1).
    env, policy = pgfast.make_vec(env_id, num_envs=n_slots), make_policy()
    theta = policy.init(np.random.default_rng(0))
    runs = [pgfast.rollout(env, policy, theta, 200, np.random.default_rng(3), num_threads=k)
            for k in (1, 2, 3)]
    for other in runs[1:]:
        for name in ("observations", "actions", "rewards", "terminated", "truncated",
                     "log_probs"):
            np.testing.assert_array_equal(getattr(runs[0], name), getattr(other, name),
                                          err_msg=name)
    c = pgfast.rollout(env, policy, theta, 200, np.random.default_rng(4))
    assert not np.array_equal(runs[0].actions, c.actions)


def test_multi_theta_rollout_uses_one_theta_per_slot(policy):
    env = pgfast.make_vec("CartPole-v1", num_envs=5)
    thetas = np.stack([theta0(policy, seed) for seed in range(5)])
    ro = pgfast.rollout(env, policy, thetas, 40, np.random.default_rng(5))
    for b in range(5):
        want = policy.log_prob(thetas[b], ro.observations[:, b], ro.actions[:, b])
        np.testing.assert_allclose(ro.log_probs[:, b], want, rtol=1e-12, atol=1e-12)
    # One slot of a multi-θ run is the same stream as that slot alone with its θ.
    single = pgfast.rollout(env, policy, np.repeat(thetas[:1], 5, axis=0), 40,
                            np.random.default_rng(5))
    np.testing.assert_array_equal(single.actions[:, 0], ro.actions[:, 0])


def reference_rollout(env, policy, thetas, T, rngs, time_limit, first_episode):
    """The fused loop's contract in plain Python, slot by slot: slot b resets, samples,
    steps and resets again drawing only from rngs[b], with its own θ row."""
    kernel = env.kernel
    B, D = kernel.num_envs, kernel.obs_dim
    rec = {"observations": np.zeros((T, B, D)), "actions": np.zeros((T, B, kernel.act_dim)),
           "rewards": np.zeros((T, B)), "terminated": np.zeros((T, B), bool),
           "truncated": np.zeros((T, B), bool), "log_probs": np.zeros((T, B))}
    for b in range(B):
        s, elapsed = kernel.reset_slot(b, rngs[b]), 0
        for t in range(T):
            a, logp = policy.sample(thetas[b], s[None], rngs[b])
            action = np.atleast_1d(np.asarray(a[0], dtype=float))
            nxt, reward, code = kernel.step_slot(b, action, rngs[b])
            elapsed += 1
            terminated = code == 1
            truncated = not terminated and elapsed >= time_limit
            for name, value in (("observations", s), ("actions", action), ("rewards", reward),
                                ("terminated", terminated), ("truncated", truncated),
                                ("log_probs", logp[0])):
                rec[name][t, b] = value
            s = nxt
            if terminated or truncated:
                if first_episode:
                    break
                s, elapsed = kernel.reset_slot(b, rngs[b]), 0
    return rec


@pytest.mark.parametrize("first_episode", [False, True])
@pytest.mark.parametrize("case", ["cartpole-shared", "cartpole-per-slot", "pendulum-mlp"])
def test_fused_rollout_matches_a_plain_loop_over_slots(case, first_episode):
    """Bit for bit, over two chunks of slots (20 > 16), with slots stopping at
    different times in first_episode mode."""
    B, T, limit = 20, 60, 25
    if case == "pendulum-mlp":
        env, policy = pgfast.make_vec("Pendulum-v1", num_envs=B), pgfast.MLPGaussian(3, 1, (8,))
    else:
        env, policy = pgfast.make_vec("CartPole-v1", num_envs=B), pgfast.LinearSoftmax(4, 2)
    init = np.random.default_rng(0)
    thetas = np.stack([policy.init(init) for _ in range(B if case != "cartpole-shared" else 1)])
    theta = thetas if case != "cartpole-shared" else thetas[0]
    rngs = np.random.default_rng(1).spawn(B)
    want = reference_rollout(env, policy, np.broadcast_to(thetas, (B, policy.n_params)), T,
                             [copy.deepcopy(g) for g in rngs], limit, first_episode)
    ro = pgfast.rollout(env, policy, theta, T, rngs, time_limit=limit,
                        first_episode=first_episode)
    assert ro.done.any()
    for name, value in want.items():
        got = getattr(ro, name)
        np.testing.assert_array_equal(got.reshape(value.shape), value, err_msg=name)


def test_deterministic_rollout_acts_by_the_mode(policy):
    env = pgfast.make_vec("CartPole-v1", num_envs=3)
    theta = theta0(policy)
    ro = pgfast.rollout(env, policy, theta, 30, np.random.default_rng(6), deterministic=True)
    assert ro.log_probs is None
    np.testing.assert_array_equal(ro.actions.reshape(-1),
                                  policy.mode(theta, ro.observations.reshape(-1, 4)))


def test_gaussian_policy_on_pendulum():
    policy = pgfast.LinearGaussian(3, 1)
    env = pgfast.make_vec("Pendulum-v1", num_envs=4)
    theta = policy.init(np.random.default_rng(0))
    ro = pgfast.rollout(env, policy, theta, 250, np.random.default_rng(7))
    assert ro.actions.shape == (250, 4, 1)
    assert ro.truncated[199].all() and not ro.terminated.any()
    np.testing.assert_allclose(
        ro.log_probs.reshape(-1),
        policy.log_prob(theta, ro.observations.reshape(-1, 3), ro.actions.reshape(-1, 1)),
        rtol=1e-10)


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_python_fallback_on_gymnasium_vector_env(policy, mode):
    kwargs = {} if mode == "next_step" else {
        "vector_kwargs": {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}}
    env = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync", **kwargs)
    theta = theta0(policy)
    ro = pgfast.rollout(env, policy, theta, 150, np.random.default_rng(8))
    # CartPole pays 1 for every real transition; a NEXT_STEP reset step would pay 0.
    assert np.all(ro.rewards == 1.0)
    assert ro.done.any()
    np.testing.assert_allclose(
        ro.log_probs.reshape(-1),
        policy.log_prob(theta, ro.observations.reshape(-1, 4), ro.actions.reshape(-1)),
        rtol=1e-12)
    gym_env = gym.make("CartPole-v1").unwrapped
    gym_env.reset(seed=0)
    nxt = ro.next_observations()
    for t, b in zip(*np.nonzero(ro.done)):
        gym_env.state = ro.observations[t, b].astype(np.float64)
        gym_env.steps_beyond_terminated = None
        obs, *_ = gym_env.step(int(ro.actions[t, b]))
        np.testing.assert_allclose(nxt[t, b], obs, rtol=1e-5, atol=1e-6)


def test_python_fallback_time_limits(policy):
    env = gym.make_vec("CartPole-v1", num_envs=2, vectorization_mode="sync")
    good = np.zeros(10)
    with pytest.raises(ValueError, match="time_limit"):
        pgfast.rollout(env, policy, good, 30, np.random.default_rng(0), time_limit=5)
    ro = pgfast.rollout(env, policy, good, 30, np.random.default_rng(0), time_limit=5,
                        first_episode=True)
    assert ro.episode_lengths.max() <= 5 and len(ro.episode_lengths) == 2
    single = pgfast.rollout(gym.make("CartPole-v1"), policy, good, 30,
                            np.random.default_rng(0), time_limit=5)
    assert single.episode_lengths.max() <= 5 and single.truncated.any()


def test_python_fallback_on_single_gymnasium_env(policy):
    env = gym.make("CartPole-v1")
    ro = pgfast.rollout(env, policy, theta0(policy), 100, np.random.default_rng(9))
    assert ro.observations.shape == (100, 1, 4)
    assert np.all(ro.rewards == 1.0)
    a = pgfast.rollout(gym.make("CartPole-v1"), policy, theta0(policy), 50,
                       np.random.default_rng(10))
    b = pgfast.rollout(gym.make("CartPole-v1"), policy, theta0(policy), 50,
                       np.random.default_rng(10))
    np.testing.assert_array_equal(a.observations, b.observations)


def test_rollout_bad_input(policy):
    env = pgfast.make_vec("CartPole-v1", num_envs=2)
    theta = theta0(policy)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="n_steps"):
        pgfast.rollout(env, policy, theta, 0, rng)
    with pytest.raises(ValueError, match="theta"):
        pgfast.rollout(env, policy, theta[:-1], 10, rng)
    with pytest.raises(ValueError, match="theta"):
        pgfast.rollout(env, policy, np.stack([theta] * 3), 10, rng)
    with pytest.raises(ValueError, match="theta"):
        pgfast.rollout(env, policy, np.full_like(theta, np.nan), 10, rng)
    with pytest.raises(ValueError, match="policy"):
        pgfast.rollout(env, pgfast.LinearSoftmax(4, 3), np.zeros(15), 10, rng)
    with pytest.raises(ValueError, match="policy"):
        pgfast.rollout(env, pgfast.LinearGaussian(4, 1), np.zeros(6), 10, rng)
    with pytest.raises(TypeError, match="rng"):
        pgfast.rollout(env, policy, theta, 10, rng=[rng])
    with pytest.raises(TypeError, match="env"):
        pgfast.rollout("CartPole-v1", policy, theta, 10, rng)
    env.close()
    with pytest.raises(ValueError, match="closed"):
        pgfast.rollout(env, policy, theta, 10, rng)


@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
@pytest.mark.parametrize("mode", [gym.vector.AutoresetMode.NEXT_STEP,
                                  gym.vector.AutoresetMode.SAME_STEP])
def test_gymnasium_vector_env_rolls_out_each_slot_as_one_env(mode):
    """Slot b of a Gymnasium vector env is the single-Env rollout from slot b's stream
    (what pgfast.distributed's actors run), whatever the autoreset mode."""
    from pgfast.rollout import slot_generators, slot_states

    for env_id, policy, n_steps in (("CartPole-v0", pgfast.LinearSoftmax(4, 2), 80),
                                    ("CartPole-v0", pgfast.MLPSoftmax(4, 2, hidden=(8,)), 80),
                                    ("Pendulum-v1", pgfast.MLPGaussian(3, 1, hidden=(8,)), 30)):
        thetas = np.stack([policy.init(np.random.default_rng(s)) for s in range(3)])
        if env_id == "Pendulum-v1":
            thetas = thetas[0]   # one θ for every slot: a batched kernel call
        vec = gym.make_vec(env_id, 3, vectorization_mode="sync",
                           vector_kwargs={"autoreset_mode": mode})
        ro = pgfast.rollout(vec, policy, thetas, n_steps, np.random.default_rng(5))
        generators = slot_generators(slot_states(np.random.default_rng(5), 3))
        parts = [pgfast.rollout(gym.make(env_id), policy, thetas[b] if thetas.ndim == 2
                                else thetas, n_steps, generators[b]) for b in range(3)]
        for name in ("observations", "actions", "rewards", "terminated", "truncated",
                     "log_probs"):
            for b in range(3):
                np.testing.assert_array_equal(getattr(ro, name)[:, b],
                                              getattr(parts[b], name)[:, 0], err_msg=name)
        if env_id == "CartPole-v0":
            assert ro.terminated.sum(axis=0).min() >= 1, "the test needs autoresets"


@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
def test_gymnasium_vector_env_step_where_every_slot_resets():
    # Time limits of 5 end both slots' episodes together: under NEXT_STEP autoreset the
    # next step records nothing in any slot (no action is drawn or computed for it).
    policy = pgfast.LinearSoftmax(4, 2)
    thetas = np.zeros((2, policy.n_params))
    vec = gym.make_vec("CartPole-v0", 2, vectorization_mode="sync", max_episode_steps=5)
    for deterministic in (True, False):
        ro = pgfast.rollout(vec, policy, thetas, 12, np.random.default_rng(0),
                            deterministic=deterministic)
        assert ro.truncated[4].all() and ro.truncated[9].all()
