"""NativeVectorEnv step throughput next to Gymnasium's SyncVectorEnv of the same env.

    pytest benchmarks/bench_envs.py --benchmark-only

One round = STEPS steps of B = 256 envs with pre-drawn random actions (autoresets
included); steps/s = B * STEPS / time.
"""
import types

import gymnasium as gym
import numpy as np
import pytest

import pgfast
from pgfast._rollout import step_all

B, STEPS = 256, 100


def random_actions(vec, steps):
    rng = np.random.default_rng(0)
    return rng.integers(vec.single_action_space.n, size=(steps, vec.num_envs))


def run(vec, actions):
    for a in actions:
        vec.step(a)


def report(benchmark):
    benchmark.extra_info["env_steps_per_s"] = B * STEPS / benchmark.stats.stats.mean


@pytest.mark.benchmark(group="CartPole-v1 step, B=256")
def test_native_vector_env(benchmark):
    vec = pgfast.make_vec("CartPole-v1", num_envs=B, seed=0)
    vec.reset()
    actions = random_actions(vec, STEPS)
    benchmark(run, vec, actions)
    report(benchmark)


@pytest.mark.benchmark(group="CartPole-v1 step, B=256")
def test_native_vector_env_checks_only(benchmark, monkeypatch):
    """step() with the kernel call stubbed out: its checks and allocations alone
    (target: at most 5 % of the step)."""
    def no_step(kernel, actions, obs, rewards, *rest):
        rewards.fill(0.0)
        return -1   # every action in the space

    vec = pgfast.make_vec("CartPole-v1", num_envs=B, seed=0)
    vec.reset()
    actions = random_actions(vec, STEPS)
    monkeypatch.setattr(pgfast.envs, "_rollout", types.SimpleNamespace(step_all=no_step))
    benchmark(run, vec, actions)


@pytest.mark.benchmark(group="CartPole-v1 step, B=256")
def test_native_kernel_step_all(benchmark):
    """The kernel call alone (what the fused rollout pays per step, minus the policy)."""
    k = pgfast.make_kernel("CartPole-v1", B, seed=0)
    obs = np.empty((B, k.obs_dim), np.float32)
    k.reset_all(obs)
    actions = random_actions(pgfast.make_vec("CartPole-v1", B), STEPS).astype(np.float64)[..., None]
    r, te, tr = np.empty(B), np.empty(B, np.uint8), np.empty(B, np.uint8)
    el, nr = np.zeros(B, np.int64), np.zeros(B, np.uint8)

    def loop():
        for a in actions:
            step_all(k, a, obs, r, te, tr, el, nr)

    benchmark(loop)
    report(benchmark)


@pytest.mark.benchmark(group="CartPole-v1 step, B=256")
def test_gymnasium_sync_vector_env(benchmark):
    vec = gym.make_vec("CartPole-v1", num_envs=B, vectorization_mode="sync")
    vec.reset(seed=0)
    actions = random_actions(vec, STEPS)
    benchmark(run, vec, actions)
    report(benchmark)
