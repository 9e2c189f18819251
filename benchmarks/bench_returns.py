"""Returns kernels next to how popular libraries compute them (a NumPy loop over
time) and next to np.copy of the rewards (the memory-bandwidth floor).

    pytest benchmarks/bench_returns.py --benchmark-only

The "checks only" cases run the call with its kernel stubbed out: what the
checks, conversions and decorators cost alone (target: at most 5 % of the call).
"""
import types

import numpy as np
import pytest

import pgfast
import pgfast.returns

# pgfast.returns' kernels, computing nothing: each reports finite results
NO_KERNELS = types.SimpleNamespace(gae=lambda *args: True, reward_to_go=lambda *args: True)

T, B = 2048, 64


@pytest.fixture(scope="module")
def buffer():
    rng = np.random.default_rng(0)
    return dict(
        rewards=rng.normal(size=(T, B)),
        values=rng.normal(size=(T, B)),
        next_values=rng.normal(size=(T, B)),
        terminated=rng.random((T, B)) < 0.01,
        truncated=rng.random((T, B)) < 0.005,
    )


def numpy_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """The loop over time found in common PPO implementations, kept separate flags."""
    not_term = 1.0 - terminated
    not_done = 1.0 - (terminated | truncated)
    adv = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * not_term[t] * next_values[t] - values[t]
        last = delta + gamma * lam * not_done[t] * last
        adv[t] = last
    return adv


def numpy_reward_to_go(rewards, terminated, truncated, next_values, gamma):
    done = terminated | truncated
    boot = gamma * (1.0 - terminated) * truncated * next_values
    out = np.zeros_like(rewards)
    last = gamma * next_values[-1] * (1.0 - terminated[-1])
    following = np.zeros(rewards.shape[1])
    for t in reversed(range(rewards.shape[0])):
        following = rewards[t] + (boot[t] if t < rewards.shape[0] - 1 else last) \
            + gamma * (1.0 - done[t]) * following * (t < rewards.shape[0] - 1)
        out[t] = following
    return out


@pytest.mark.benchmark(group="gae (2048, 64) float64")
def test_gae_pgfast(benchmark, buffer):
    b = buffer
    out = np.empty((T, B))
    benchmark(pgfast.gae, b["rewards"], b["values"], b["next_values"], 0.99, 0.95,
              b["terminated"], b["truncated"], out=out)


@pytest.mark.benchmark(group="gae (2048, 64) float64")
def test_gae_numpy_loop(benchmark, buffer):
    b = buffer
    got = benchmark(numpy_gae, b["rewards"], b["values"], b["next_values"],
                    b["terminated"], b["truncated"], 0.99, 0.95)
    want = pgfast.gae(b["rewards"], b["values"], b["next_values"], 0.99, 0.95,
                      b["terminated"], b["truncated"])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.benchmark(group="gae (2048, 64) float64")
def test_gae_checks_only(benchmark, buffer, monkeypatch):
    b = buffer
    out = np.empty((T, B))
    monkeypatch.setattr(pgfast.returns, "_returns", NO_KERNELS)
    benchmark(pgfast.gae, b["rewards"], b["values"], b["next_values"], 0.99, 0.95,
              b["terminated"], b["truncated"], out=out)


@pytest.mark.benchmark(group="gae (2048, 64) float64")
def test_gae_np_copy_floor(benchmark, buffer):
    benchmark(np.copy, buffer["rewards"])


@pytest.mark.benchmark(group="reward_to_go (2048, 64) float64")
def test_reward_to_go_pgfast(benchmark, buffer):
    b = buffer
    out = np.empty((T, B))
    benchmark(pgfast.reward_to_go, b["rewards"], 0.99, b["terminated"], b["truncated"],
              next_values=b["next_values"], out=out)


@pytest.mark.benchmark(group="reward_to_go (2048, 64) float64")
def test_reward_to_go_numpy_loop(benchmark, buffer):
    b = buffer
    got = benchmark(numpy_reward_to_go, b["rewards"], b["terminated"], b["truncated"],
                    b["next_values"], 0.99)
    want = pgfast.reward_to_go(b["rewards"], 0.99, b["terminated"], b["truncated"],
                               next_values=b["next_values"])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.benchmark(group="reward_to_go (2048, 64) float64")
def test_reward_to_go_checks_only(benchmark, buffer, monkeypatch):
    b = buffer
    out = np.empty((T, B))
    monkeypatch.setattr(pgfast.returns, "_returns", NO_KERNELS)
    benchmark(pgfast.reward_to_go, b["rewards"], 0.99, b["terminated"], b["truncated"],
              next_values=b["next_values"], out=out)


@pytest.mark.benchmark(group="reward_to_go (2048, 64) float64")
def test_reward_to_go_np_copy_floor(benchmark, buffer):
    benchmark(np.copy, buffer["rewards"])
