"""Each chapter-11 estimator on CartPole-v1 with LinearSoftmax (m = 64, d = 500):
pgfast next to a straightforward NumPy + Gymnasium implementation of the same
formula, in one group per estimator.

    pytest benchmarks/bench_estimators.py --benchmark-only
"""
import gymnasium as gym
import numpy as np
import pytest

import pgfast

M, D, GAMMA = 64, 500, 0.99
# Two policies: one whose episodes end after ~15 steps (per-call overheads dominate)
# and one that balances for ~500 (the full depth d: simulation dominates).
THETAS = {
    "short episodes": np.array([0.05, -0.1, 0.2, -0.2, 0.5, -0.5, 0.6, -0.6, 0.0, 0.0]),
    "balancing": np.array([-0.5, 0.5, -1.0, 1.0, -8.0, 8.0, -2.0, 2.0, 0.0, 0.0]),
}


# --- the reference: NumPy policy, Gymnasium env, the book's formulas ---------------------

def softmax_probs(W, b, obs):
    logits = obs @ W + b
    logits -= logits.max(axis=-1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=-1, keepdims=True)


def reference_rollouts(env, thetas, rng):
    """One first episode of depth ≤ D per row of thetas, in a SyncVectorEnv."""
    n = len(thetas)
    W = thetas[:, :8].reshape(n, 4, 2)
    b = thetas[:, 8:]
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    alive = np.ones(n, bool)
    data = {"obs": [], "act": [], "rew": [], "alive": []}
    for _ in range(D):
        p = softmax_probs(W, b[:, None, :], obs[:, None, :])[:, 0]
        act = (rng.random(n) > p[:, 0]).astype(np.int64)
        nxt, rew, term, trunc, _ = env.step(act)
        data["obs"].append(obs.astype(np.float64))
        data["act"].append(act)
        data["rew"].append(np.where(alive, rew, 0.0))
        data["alive"].append(alive.copy())
        alive &= ~(term | trunc)
        obs = nxt
        if not alive.any():
            break
    return {k: np.array(v) for k, v in data.items()}


def reference_scores(theta, obs, act):
    W, b = theta[:8].reshape(4, 2), theta[8:]
    p = softmax_probs(W, b, obs)
    g = np.eye(2)[act] - p
    return np.concatenate([(obs[..., :, None] * g[..., None, :]).reshape(*obs.shape[:-1], 8), g],
                          axis=-1)


def reference_lr(env, theta, rng, mode):
    data = reference_rollouts(env, np.tile(theta, (M, 1)), rng)
    scores = reference_scores(theta, data["obs"], data["act"]) * data["alive"][..., None]
    r = data["rew"]
    d = len(r)
    powers = GAMMA ** np.arange(d)
    if mode == "trajectory":
        return ((scores.sum(axis=0)) * (powers @ r)[:, None]).mean(axis=0)
    togo = np.zeros_like(r)
    following = np.zeros(M)
    for k in reversed(range(d)):
        following = r[k] + GAMMA * following
        togo[k] = following
    if mode == "reward_to_go":
        return np.einsum("km,kmp->p", powers[:, None] * togo, scores) / M
    ell = scores * powers[:, None, None]
    ell2 = ell**2
    num, den = np.einsum("kmp,km->mp", ell2, togo), ell2.sum(axis=0)
    base = np.where(den > 0, num / np.where(den > 0, den, 1), 0).sum(0) / np.maximum(
        (den > 0).sum(0), 1)
    return (ell * (togo[..., None] - base)).sum(axis=(0, 1)) / M


def reference_returns(env, thetas, rng):
    data = reference_rollouts(env, thetas, rng)
    return GAMMA ** np.arange(len(data["rew"])) @ data["rew"]


def reference_fd(env, theta, rng, delta=1e-2):
    n = theta.size
    grad = np.empty(n)
    for i in range(n):
        plus = theta + delta * np.eye(n)[i]
        grad[i] = (reference_returns(env, np.tile(plus, (M, 1)), rng).mean()
                   - reference_returns(env, np.tile(theta, (M, 1)), rng).mean()) / delta
    return grad


def reference_regression(env, theta, rng, delta=1e-2):
    z = rng.standard_normal((M, theta.size))
    dtheta = delta * z / np.linalg.norm(z, axis=1, keepdims=True)
    du = reference_returns(env, theta + dtheta, rng) - reference_returns(
        env, np.tile(theta, (M, 1)), rng)
    return np.linalg.pinv(dtheta) @ du


@pytest.fixture(scope="module")
def gym_env():
    return gym.make_vec("CartPole-v1", num_envs=M, vectorization_mode="sync")


@pytest.fixture(scope="module")
def setup():
    return pgfast.Problem("CartPole-v1", gamma=GAMMA, horizon=D), pgfast.LinearSoftmax(4, 2)


CASES = {
    "LikelihoodRatioGradient": lambda p, pol: pgfast.LikelihoodRatioGradient(p, pol, m=M),
    "RewardToGoGradient": lambda p, pol: pgfast.RewardToGoGradient(p, pol, m=M),
    "BaselineSubtractionGradient": lambda p, pol: pgfast.BaselineSubtractionGradient(p, pol, m=M),
    "FiniteDifferenceGradient": lambda p, pol: pgfast.FiniteDifferenceGradient(p, pol, m=M),
    "RegressionGradient": lambda p, pol: pgfast.RegressionGradient(p, pol, m=M),
}
REFERENCES = {
    "LikelihoodRatioGradient": lambda env, th, rng: reference_lr(env, th, rng, "trajectory"),
    "RewardToGoGradient": lambda env, th, rng: reference_lr(env, th, rng, "reward_to_go"),
    "BaselineSubtractionGradient": lambda env, th, rng: reference_lr(env, th, rng, "baseline"),
    "FiniteDifferenceGradient": reference_fd,
    "RegressionGradient": reference_regression,
}
GRID = pytest.mark.parametrize("label", list(THETAS))
NAMES = pytest.mark.parametrize("name", list(CASES))


@GRID
@NAMES
def test_estimator_pgfast(benchmark, setup, name, label):
    benchmark.group = f"estimator {name} CartPole m={M} d={D}, {label}"
    est = CASES[name](*setup)
    rng = np.random.default_rng(0)
    grad = benchmark(est.gradient, THETAS[label], rng)
    assert np.isfinite(grad).all()


@GRID
@NAMES
def test_estimator_numpy_gymnasium(benchmark, gym_env, name, label):
    benchmark.group = f"estimator {name} CartPole m={M} d={D}, {label}"
    rng = np.random.default_rng(0)
    grad = benchmark.pedantic(REFERENCES[name], args=(gym_env, THETAS[label], rng),
                              rounds=1, iterations=1)
    assert np.isfinite(grad).all()
