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
    """step() with the compiled step stubbed out: what the Python side of the call
    costs alone (target: at most 5 % of the step). The compiled step reads the
    actions and checks the rewards in its own pass (test_native_step_compiled)."""
    vec = pgfast.make_vec("CartPole-v1", num_envs=B, seed=0)
    vec.reset()
    actions = random_actions(vec, STEPS)
    result = vec.step(actions[0])[:4]
    monkeypatch.setattr(vec, "_autoreset", types.SimpleNamespace(step=lambda a: result))
    benchmark(run, vec, actions)


@pytest.mark.benchmark(group="CartPole-v1 step, B=256")
def test_native_step_compiled(benchmark):
    """The compiled step alone, called directly: the kernel, the action and reward
    checks, and the four new result arrays Gymnasium's API returns."""
    vec = pgfast.make_vec("CartPole-v1", num_envs=B, seed=0)
    vec.reset()
    actions = random_actions(vec, STEPS)
    step = vec._autoreset.step

    def loop():
        for a in actions:
            step(a)

    benchmark(loop)
    report(benchmark)


@pytest.mark.benchmark(group="CartPole-v1 step, B=256")
def test_gymnasium_sync_vector_env(benchmark):
    vec = gym.make_vec("CartPole-v1", num_envs=B, vectorization_mode="sync")
    vec.reset(seed=0)
    actions = random_actions(vec, STEPS)
    benchmark(run, vec, actions)
    report(benchmark)
