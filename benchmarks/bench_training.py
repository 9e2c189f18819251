"""Acceptance runs of issue 6: train from scratch at the updates' defaults.

CartPole-v1 with LinearSoftmax: each of NaturalPolicyUpdate, TrustRegionUpdate and
ClampedSurrogateUpdate at its defaults, 5 seeds. Whenever a batch's mean return
reaches 475, 100 deterministic evaluation episodes are run; training stops when
their mean is ≥ 475 (solved). The wall time includes those evaluations.
Pendulum-v1 with MLPGaussian(64, 64) by TRPO (γ = 0.9, an MLP value baseline).

    pytest benchmarks/bench_training.py --benchmark-only -s

Each case prints its wall time and evaluation; extra_info holds them in the JSON.
"""
import time

import numpy as np
import pytest

import pgfast

UPDATES = {
    "natural": pgfast.NaturalPolicyUpdate,
    "trpo": pgfast.TrustRegionUpdate,
    "ppo": pgfast.ClampedSurrogateUpdate,
}


def solve_cartpole(name, seed, max_iterations=200):
    problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    policy = pgfast.LinearSoftmax(4, 2)
    update = UPDATES[name](problem, policy)
    rng = np.random.default_rng(seed)
    eval_rng = np.random.default_rng(seed + 1000)
    evaluation = [0.0]

    def unsolved(iteration, theta, info):
        if info["mean_return"] >= 475:
            evaluation[0] = pgfast.evaluate(problem, policy, theta, 100, eval_rng).mean()
        return evaluation[0] < 475

    start = time.perf_counter()
    theta, history = pgfast.train(update, policy.init(rng), iterations=max_iterations,
                                  rng=rng, progress=False, callback=unsolved)
    seconds = time.perf_counter() - start
    returns = pgfast.evaluate("CartPole-v1", policy, theta, episodes=100,
                              rng=np.random.default_rng(seed + 2000))
    return seconds, float(returns.mean()), len(history["iteration"]), int(history["steps"][-1])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", list(UPDATES))
def test_cartpole_solve(benchmark, name, seed):
    benchmark.group = f"train CartPole-v1 LinearSoftmax {name}"
    seconds, mean_return, iterations, steps = benchmark.pedantic(
        solve_cartpole, args=(name, seed), rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=seconds, eval_mean_return=mean_return,
                                iterations=iterations, steps=steps,
                                solved=mean_return >= 475)
    print(f"\n{name} seed {seed}: {seconds:.2f} s, {iterations} iterations, {steps} steps, "
          f"evaluation mean return {mean_return:.1f} ({'solved' if mean_return >= 475 else 'NOT solved'})")


def test_pendulum_mlp_trpo(benchmark):
    benchmark.group = "train Pendulum-v1 MLPGaussian(64, 64)"

    def run():
        problem = pgfast.Problem("Pendulum-v1", gamma=0.9)
        policy = pgfast.MLPGaussian(3, 1, hidden=(64, 64))
        update = pgfast.TrustRegionUpdate(problem, policy, m=10, lam=0.95,
                                          value_fn=pgfast.MLPValue(3, hidden=(64, 64)))
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        theta, history = pgfast.train(update, policy.init(rng), total_steps=300_000, rng=rng,
                                      progress=False)
        seconds = time.perf_counter() - start
        returns = pgfast.evaluate("Pendulum-v1", policy, theta, episodes=100,
                                  rng=np.random.default_rng(1))
        return seconds, float(returns.mean())

    seconds, mean_return = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=seconds, eval_mean_return=mean_return)
    print(f"\nPendulum TRPO MLPGaussian(64, 64): {seconds:.1f} s for 300k steps, "
          f"evaluation mean return {mean_return:.1f}")
