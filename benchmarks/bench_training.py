"""Training benchmarks: `pgfast train ENV` at its defaults, seeds 0-4, and MLP throughput.

Each run is what ``pgfast train ENV --policy KIND --seed S`` does: the settings of
``pgfast.defaults``, evaluation every ``eval_every``-th update (10 deterministic episodes,
confirmed on 100 when they reach the threshold), stop when solved, keep the best
parameters, then 100 fresh deterministic episodes. Reported per run: that final
evaluation, the environment steps to solve, the CPU seconds and wall seconds to
solve (evaluations included) and steps per CPU second. On a shared machine wall
time depends on the other load; CPU time is what the run costs one core.

The throughput case trains an MLP(64, 64) on CartPole for a fixed budget with the
table's settings and, in the same run, with the plain ones (50 full-batch value
epochs, every step in the Fisher products): the ratio is the speed-up.

    python benchmarks/bench_training.py [--envs CartPole-v1 ...] [--seeds 5] [--first-seed 0] [--out DIR]
    python benchmarks/bench_training.py --envs Hopper-v5 HalfCheetah-v5 --seeds 3 --no-throughput

prints the markdown table and writes a learning-curve figure per env and policy
(median and range over the seeds, against steps and against seconds) and every run as
one JSON line (runs.jsonl, appended as each run ends) to DIR.
``pytest benchmarks/bench_training.py --benchmark-only`` runs the CartPole cases.
"""
from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np
import pytest

from pgfast import StopWhenSolved, evaluate, factory, train
from pgfast.problem import Problem

CASES = [("CartPole-v1", "linear", None), ("CartPole-v1", "mlp", None),
         ("CartPole-v1", "mlp", "ppo"), ("Acrobot-v1", "linear", None),
         ("MountainCar-v0", "mlp", None), ("MountainCarContinuous-v0", "linear", None),
         ("Pendulum-v1", "mlp", None)]
# 1M steps each (about 1-3 minutes a seed; Humanoid 3M): run only when named with --envs.
MUJOCO_CASES = [(env, "mlp", None) for env in (
    "Hopper-v5", "Walker2d-v5", "HalfCheetah-v5", "Ant-v5", "Swimmer-v5", "InvertedPendulum-v5",
    "InvertedDoublePendulum-v5", "Reacher-v5", "Humanoid-v5")]

# What `pgfast train ENV` should reach at its defaults, over 10 seeds never used in
# tuning (the median at least the first figure, every seed at least the second), and
# the best published on-policy result at the same budget.
MUJOCO_TARGETS = {
    "Hopper-v5": (3000, 2000, "rl-zoo TRPO 3,618 (one run), Tianshou PPO 2,609"),
    "Walker2d-v5": (4000, 2500, "rl-zoo TRPO 4,933 ± 1,453, Tianshou TRPO 3,827"),
    "HalfCheetah-v5": (5000, 3000, "rl-zoo PPO 5,819, Tianshou PPO 5,784"),
    "Ant-v5": (3500, 2000, "rl-zoo TRPO 4,982, Tianshou PPO 3,258"),
    "Swimmer-v5": (340, 200, "rl-zoo TRPO 366"),
    "InvertedPendulum-v5": (1000, 950, "1,000"),
    "InvertedDoublePendulum-v5": (9000, 8000, "Tianshou PPO 9,231"),
    "Reacher-v5": (-5, -7, "Tianshou PPO -4.1"),
    "Humanoid-v5": (1500, 800, "Tianshou PPO 1,360 at 3M steps; 716-810 at 1M"),
}


def solve(env, kind, seed, overrides=None):
    """One `pgfast train` run (same settings and generators as the CLI)."""
    config, _ = factory.settings(env, kind, overrides)
    problem, policy, update = factory.build(env, kind, config)
    threshold = factory.threshold(env)
    rng = np.random.default_rng(seed)
    theta = policy.init(rng)
    stop = StopWhenSolved(problem, policy, threshold, np.random.default_rng([seed, 1]),
                          every=config["eval_every"], confidence=config["confidence"])
    clock = time.perf_counter()
    times = []

    def timed(iteration, theta, info):   # wall seconds at each evaluation
        verdict = stop(iteration, theta, info)
        if len(stop.evaluations) > len(times):   # with eval_every > 1, not every update
            times.append(time.perf_counter() - clock)
        return verdict

    cpu, clock = time.process_time(), time.perf_counter()
    theta, history = train(update, theta, total_steps=config["steps"], rng=rng,
                           progress=False, callback=timed)
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    returns = evaluate(Problem(env, gamma=1.0), policy, stop.best_raw_theta, episodes=100,
                       rng=np.random.default_rng([seed, 2]))
    return {
        "env": env, "policy": kind, "update": config["update"], "seed": seed,
        "eval": float(returns.mean()), "threshold": threshold,
        "solved": threshold is not None and bool(returns.mean() >= threshold),
        "stopped": stop.solved,
        "steps": int(history["steps"][-1]), "train_s": float(history["wall_time"][-1]),
        "wall_s": wall, "cpu_s": cpu,
        "steps_per_cpu_s": float(history["steps"][-1]) / max(cpu, 1e-9),
        "curve": [(steps, t, score) for (_, steps, score), t in zip(stop.evaluations, times)],
    }


def throughput(update, steps=50_000, seed=0, plain=False):
    """Training steps per CPU second (and per wall second) of an MLP(64, 64) on CartPole."""
    overrides = {"update": update}
    if plain:
        overrides.update(value_minibatch=None, value_epochs=50, fisher_subsample=1)
    config, _ = factory.settings("CartPole-v1", "mlp", overrides)
    _, policy, upd = factory.build("CartPole-v1", "mlp", config)
    rng = np.random.default_rng(seed)
    cpu, wall = time.process_time(), time.perf_counter()
    _, history = train(upd, policy.init(rng), total_steps=steps, rng=rng, progress=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = int(history["steps"][-1])
    return n / cpu, n / wall


def table(results):
    lines = ["| env | policy | update | seed | evaluation | solved | steps | CPU s | "
             "wall s | steps/CPU-s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['env']} | {r['policy']} | {r['update']} | {r['seed']} | "
                     f"{r['eval']:.1f} | {'yes' if r['solved'] else 'no'} | {r['steps']} | "
                     f"{r['cpu_s']:.2f} | {r['wall_s']:.2f} | {r['steps_per_cpu_s']:.0f} |")
    return "\n".join(lines)


def summary(runs):
    """One line: solved seeds, the median and worst final evaluation, steps to solve;
    for a MuJoCo env, then its targets, whether this run met them, and the published
    figure."""
    evals = np.array([r["eval"] for r in runs])
    solved = sum(r["solved"] for r in runs)
    line = (f"{runs[0]['env']} {runs[0]['policy']} {runs[0]['update']}: solved {solved} of "
            f"{len(runs)} seeds ({runs[0]['seed']}-{runs[-1]['seed']}); evaluation median "
            f"{np.median(evals):.1f}, worst {evals.min():.1f}; steps median "
            f"{np.median([r['steps'] for r in runs]):.0f}, CPU s median "
            f"{np.median([r['cpu_s'] for r in runs]):.1f}")
    if runs[0]["env"] not in MUJOCO_TARGETS:
        return line
    median, every, published = MUJOCO_TARGETS[runs[0]["env"]]
    below = int((evals < every).sum())
    return (f"{line}\n  target (10 seeds never used in tuning): median >= {median} "
            f"({'met' if np.median(evals) >= median else 'short'}), every seed >= {every} "
            f"({'met' if below == 0 else f'short: {below} below'}); published: {published}")


def plot(results, out):
    """Median and range over seeds of the evaluation return, against steps and seconds
    (a run that stopped keeps its last evaluation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r0 = results[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, column, label in ((axes[0], 0, "environment steps"), (axes[1], 1, "seconds")):
        end = max(max(c[column] for c in r["curve"]) for r in results if r["curve"])
        grid = np.linspace(0, end, 200)
        ys = []
        for r in results:
            x = np.array([c[column] for c in r["curve"]])
            y = np.array([c[2] for c in r["curve"]])
            idx = np.searchsorted(x, grid, side="right") - 1
            ys.append(np.where(idx >= 0, y[np.maximum(idx, 0)], y[0]))   # before: first
        ys = np.array(ys)
        ax.plot(grid, np.nanmedian(ys, axis=0), label=f"median of {len(results)} seeds")
        ax.fill_between(grid, np.nanmin(ys, axis=0), np.nanmax(ys, axis=0), alpha=0.3,
                        label="min-max")
        if r0["threshold"] is not None:
            ax.axhline(r0["threshold"], color="k", ls="--", lw=0.8,
                       label=f"solved ({r0['threshold']:g})")
        ax.set_xlabel(label)
    axes[0].set_ylabel("evaluation return (deterministic)")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{r0['env']}: {r0['update']}, {r0['policy']} policy, pgfast train defaults")
    fig.tight_layout()
    path = Path(out) / f"{r0['env']}-{r0['policy']}-{r0['update']}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kind, update", [("linear", "trpo"), ("mlp", "trpo"), ("mlp", "ppo")])
def test_cartpole_solve(benchmark, kind, update, seed):
    # "train ..." groups are the training runs of docs/make_figures.py
    benchmark.group = f"train CartPole-v1 --policy {kind} --update {update}"
    result = benchmark.pedantic(solve, args=("CartPole-v1", kind, seed, {"update": update}),
                                rounds=1, iterations=1)
    benchmark.extra_info.update({k: v for k, v in result.items() if k != "curve"})
    # The evaluation curve in the form docs/make_figures.py plots.
    benchmark.extra_info["curve"] = {"steps": [steps for steps, _, _ in result["curve"]],
                                     "mean_return": [score for _, _, score in result["curve"]]}


@pytest.mark.parametrize("update", ["trpo", "ppo"])
def test_mlp_throughput(benchmark, update):
    benchmark.group = f"MLP(64, 64) CartPole {update} throughput"
    ours = benchmark.pedantic(throughput, args=(update,), rounds=1, iterations=1)
    plain = throughput(update, plain=True)
    benchmark.extra_info.update(steps_per_cpu_s=ours[0], plain_steps_per_cpu_s=plain[0])


def report(logs, out):
    runs = [json.loads(line) for log in logs for line in Path(log).read_text().splitlines()]
    Path(out).mkdir(parents=True, exist_ok=True)
    cases = sorted({(r["env"], r["policy"], r["update"]) for r in runs})
    for case in cases:
        group = sorted((r for r in runs if (r["env"], r["policy"], r["update"]) == case),
                       key=lambda r: r["seed"])
        print(table(group), summary(group), f"figure: {plot(group, out)}", sep="\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="*",
                        help="env ids (default: every case but the MuJoCo ones)")
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds FIRST_SEED, FIRST_SEED+1, ... (judge settings on seeds "
                             "their tuning never saw)")
    parser.add_argument("--out", default="bench-training", help="folder for the figures")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a setting for every case (a Python literal)")
    parser.add_argument("--report", nargs="+", metavar="RUNS.jsonl",
                        help="no training: the tables, summaries and figures of runs logged "
                             "before (by env, policy and update, in seed order)")
    args = parser.parse_args()
    if args.report:
        return report(args.report, args.out)
    settings = {key: ast.literal_eval(value)
                for key, _, value in (item.partition("=") for item in args.set)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results = []
    for env, kind, update in CASES + MUJOCO_CASES:
        if (args.envs and env not in args.envs) or (not args.envs and
                                                   (env, kind, update) in MUJOCO_CASES):
            continue
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(solve(env, kind, seed,
                              {**settings, **({"update": update} if update else {})}))
            with open(Path(args.out) / "runs.jsonl", "a") as log:   # each run as it ends
                log.write(json.dumps(runs[-1]) + "\n")
        print(table(runs), flush=True)
        print(summary(runs), flush=True)
        print(f"figure: {plot(runs, args.out)}", flush=True)
        results += runs
    print("\n" + table(results))
    if not args.no_throughput:
        print("\n| MLP(64, 64) CartPole | steps/CPU-s | steps/wall-s | plain steps/CPU-s | "
              "speed-up |\n|---|---|---|---|---|")
        for update in ("trpo", "ppo"):
            ours, plain = throughput(update), throughput(update, plain=True)
            print(f"| {update} | {ours[0]:.0f} | {ours[1]:.0f} | {plain[0]:.0f} | "
                  f"{ours[0] / plain[0]:.1f}x |")


if __name__ == "__main__":
    main()
