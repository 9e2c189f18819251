"""Fused native rollouts next to Gymnasium's SyncVectorEnv driven by a NumPy policy.

    pytest benchmarks/bench_rollout.py --benchmark-only

steps/s = T·B / time; the ratio column of each group is the speed-up. The "checks
only" case runs the call with the fused loop stubbed out: what its checks, allocations
and the generators' set-up cost alone (target: at most 5 % of the call).
"""
import gymnasium as gym
import numpy as np
import pytest

import pgfast
import pgfast._rollout

B = 256
T = 400


def no_rollout(kernel, policy_kernel, thetas, pointers, limit, observations, actions,
               rewards, terminated, truncated, log_probs, *rest):
    """pgfast._rollout.rollout computing nothing: finite rewards and log-probabilities,
    as the checks after the loop read them."""
    rewards.fill(0.0)
    log_probs.fill(0.0)


def numpy_softmax_rollout(env, W, b, T, rng):
    """What a NumPy user writes: a batched linear-softmax policy over a vector env."""
    obs, _ = env.reset(seed=0)
    rewards = np.empty((T, env.num_envs))
    for t in range(T):
        logits = obs @ W + b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        actions = (rng.random(env.num_envs) > p[:, 0]).astype(np.int64)
        obs, rewards[t], _, _, _ = env.step(actions)
    return rewards


def numpy_gaussian_mlp_rollout(env, params, T, rng):
    obs, _ = env.reset(seed=0)
    rewards = np.empty((T, env.num_envs))
    for t in range(T):
        h = np.tanh(obs @ params["W0"] + params["b0"])
        h = np.tanh(h @ params["W1"] + params["b1"])
        mean = h @ params["W2"] + params["b2"]
        actions = mean + np.exp(params["log_std"]) * rng.standard_normal(mean.shape)
        obs, rewards[t], _, _, _ = env.step(actions.astype(np.float32))
    return rewards


@pytest.mark.benchmark(group=f"rollout CartPole-v1 x LinearSoftmax, B={B}, T={T}")
def test_cartpole_pgfast_fused(benchmark):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))
    env = pgfast.make_vec("CartPole-v1", num_envs=B)
    rngs = np.random.default_rng(0).spawn(B)   # per-slot streams made once, reused
    ro = benchmark(pgfast.rollout, env, policy, theta, T, rngs)
    benchmark.extra_info["steps_per_second"] = T * B / benchmark.stats.stats.median
    assert ro.rewards.shape == (T, B)


@pytest.mark.benchmark(group=f"rollout CartPole-v1 x LinearSoftmax, B={B}, T={T}")
def test_cartpole_checks_only(benchmark, monkeypatch):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))
    env = pgfast.make_vec("CartPole-v1", num_envs=B)
    rngs = np.random.default_rng(0).spawn(B)
    monkeypatch.setattr(pgfast._rollout, "rollout", no_rollout)
    benchmark(pgfast.rollout, env, policy, theta, T, rngs)


@pytest.mark.benchmark(group=f"rollout CartPole-v1 x LinearSoftmax, B={B}, T={T}")
def test_cartpole_gymnasium_sync_vector_env(benchmark):
    env = gym.make_vec("CartPole-v1", num_envs=B, vectorization_mode="sync")
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(4, 2)) * 0.01, np.zeros(2)
    benchmark.pedantic(numpy_softmax_rollout, args=(env, W, b, T, rng), rounds=3, iterations=1)
    benchmark.extra_info["steps_per_second"] = T * B / benchmark.stats.stats.median


@pytest.mark.benchmark(group="rollout Pendulum-v1 x MLPGaussian(64, 64), B=64, T=200")
def test_pendulum_pgfast_fused(benchmark):
    policy = pgfast.MLPGaussian(3, 1, hidden=(64, 64))
    theta = policy.init(np.random.default_rng(0))
    env = pgfast.make_vec("Pendulum-v1", num_envs=64)
    rngs = np.random.default_rng(0).spawn(64)
    benchmark(pgfast.rollout, env, policy, theta, 200, rngs)
    benchmark.extra_info["steps_per_second"] = 200 * 64 / benchmark.stats.stats.median


@pytest.mark.benchmark(group="rollout Pendulum-v1 x MLPGaussian(64, 64), B=64, T=200")
def test_pendulum_checks_only(benchmark, monkeypatch):
    policy = pgfast.MLPGaussian(3, 1, hidden=(64, 64))
    theta = policy.init(np.random.default_rng(0))
    env = pgfast.make_vec("Pendulum-v1", num_envs=64)
    rngs = np.random.default_rng(0).spawn(64)
    monkeypatch.setattr(pgfast._rollout, "rollout", no_rollout)
    benchmark(pgfast.rollout, env, policy, theta, 200, rngs)


@pytest.mark.benchmark(group="rollout Pendulum-v1 x MLPGaussian(64, 64), B=64, T=200")
def test_pendulum_gymnasium_sync_vector_env(benchmark):
    policy = pgfast.MLPGaussian(3, 1, hidden=(64, 64))
    params = policy.unpack(policy.init(np.random.default_rng(0)))
    env = gym.make_vec("Pendulum-v1", num_envs=64, vectorization_mode="sync")
    benchmark.pedantic(numpy_gaussian_mlp_rollout,
                       args=(env, params, 200, np.random.default_rng(0)), rounds=3, iterations=1)
    benchmark.extra_info["steps_per_second"] = 200 * 64 / benchmark.stats.stats.median
