"""pgfast command line: train, evaluate and benchmark policy-gradient methods."""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

UPDATES = ("natural", "trpo", "ppo", "restricted", "ascent")


def make_update(name, problem, policy):
    """The update called `name` at its defaults; an MLP policy gets an MLP value
    baseline of the same shape (the defaults' LinearValue is for linear policies)."""
    from . import updates
    from .estimators import RewardToGoGradient
    from .policies import MLPValue

    hidden = getattr(policy, "hidden", ())
    value = {"value_fn": MLPValue(policy.obs_dim, hidden=hidden)} if hidden else {}
    if name == "natural":
        return updates.NaturalPolicyUpdate(problem, policy, **value)
    if name == "trpo":
        return updates.TrustRegionUpdate(problem, policy, **value)
    if name == "ppo":
        return updates.ClampedSurrogateUpdate(problem, policy, **value)
    if name == "restricted":
        return updates.RestrictedPolicyUpdate(problem, policy)
    if name == "ascent":
        return updates.PolicyGradientUpdate(RewardToGoGradient(problem, policy))
    raise ValueError(f"--update: expected one of {', '.join(UPDATES)}, got {name!r}")


def _train_command(args) -> int:
    from .policies import policy_for
    from .problem import Problem
    from .training import evaluate, train

    problem = Problem(args.env, gamma=args.gamma)
    hidden = None if args.policy == "linear" else (64, 64)
    policy = policy_for(problem.observation_space, problem.action_space, hidden=hidden)
    update = make_update(args.update, problem, policy)
    rng = np.random.default_rng(args.seed)
    out = Path(args.out or f"runs/{args.env.replace('/', '_')}-{args.update}-{args.seed}")
    metadata = {"env": args.env, "gamma": args.gamma, "update": args.update,
                "policy": args.policy, "seed": args.seed}
    theta = policy.init(rng)
    print(f"pgfast train: {args.update} on {args.env}, {type(policy).__name__} "
          f"({policy.n_params} parameters), {args.steps} steps -> {out}")
    try:
        theta, history = train(update, theta, total_steps=args.steps, rng=rng,
                               progress=not args.quiet, checkpoint_dir=out,
                               resume=args.resume, metadata=metadata)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint written to {out} (resume with --resume)")
        return 130
    _write_curve(out, history)
    returns = evaluate(problem, policy, theta, episodes=args.eval_episodes,
                       rng=np.random.default_rng(args.seed + 1))
    summary = {"episodes": int(returns.size), "mean_return": float(returns.mean()),
               "std_return": float(returns.std()), "min_return": float(returns.min()),
               "max_return": float(returns.max()), "train_steps": int(history["steps"][-1]),
               "train_seconds": float(history["wall_time"][-1])}
    (out / "evaluation.json").write_text(json.dumps(summary, indent=2))
    print(f"trained {summary['train_steps']} steps in {summary['train_seconds']:.2f} s; "
          f"evaluation over {summary['episodes']} episodes: mean return "
          f"{summary['mean_return']:.1f} ± {summary['std_return']:.1f} "
          f"(min {summary['min_return']:.1f}, max {summary['max_return']:.1f})")
    return 0


def _write_curve(out, history):
    keys = list(history)
    with open(out / "curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        writer.writerows(zip(*(history[k].tolist() for k in keys)))
    try:
        import matplotlib
    except ImportError:
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["steps"], history["mean_return"])
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean return of the batch")
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)
    plt.close(fig)


def _eval_command(args) -> int:
    from .checkpoints import load_checkpoint
    from .policies import from_config
    from .training import evaluate

    theta, saved = load_checkpoint(args.dir)
    env = saved["metadata"].get("env")
    if env is None:
        raise ValueError(f"checkpoint: {args.dir} does not record its environment")
    policy = from_config(saved["policy"])
    returns = evaluate(env, policy, theta, episodes=args.episodes,
                       rng=np.random.default_rng(args.seed), deterministic=not args.stochastic)
    print(f"{env}: mean return {returns.mean():.2f} ± {returns.std():.2f} over "
          f"{returns.size} episodes (min {returns.min():.1f}, max {returns.max():.1f})")
    return 0


def _bench_command(args) -> int:
    import importlib.util

    # The suite installed with the package as pgfast/benchmarks (the checkout's
    # benchmarks/, which an editable install serves from the checkout).
    if args.path:
        path = Path(args.path)
    else:
        spec = importlib.util.find_spec("pgfast.benchmarks")
        locations = list(spec.submodule_search_locations or []) if spec else []
        path = Path(locations[0] if locations else "pgfast/benchmarks")
    if not path.is_dir():
        raise ValueError(f"--path: no benchmark suite at {path}")

    if importlib.util.find_spec("pytest_benchmark") is None:
        raise ValueError("pgfast bench needs the test extras: pip install 'pgfast[test]'")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(path.resolve()), "--benchmark-only", "-q",
               "-p", "no:cacheprovider", "--import-mode=importlib", "-o", "python_files=bench_*.py",
               f"--benchmark-json={report}"]
        if args.filter:
            cmd += ["-k", args.filter]
        # Run from an empty folder: `python -m` puts the working folder first on the
        # path, and a checkout's pgfast/ (no compiled kernels) would shadow the install.
        result = subprocess.run(cmd, stdout=subprocess.DEVNULL, cwd=tmp)
        if not report.exists():
            raise ValueError(f"the benchmark run failed (pytest exit {result.returncode})")
        print_bench_table(json.loads(report.read_text()))
    return result.returncode


def print_bench_table(report):
    """Per benchmark group, each case's median with its ratio to pgfast's (the first
    case whose name says pgfast): a ratio above 1 is how much slower that case is."""
    groups = {}
    for bench in report["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    for group, benches in groups.items():
        print(f"\n{group}")
        ours = [b for b in benches if "pgfast" in b["name"]]
        base = ours[0]["stats"]["median"] if ours else None
        for b in sorted(benches, key=lambda b: b["stats"]["median"]):
            median = b["stats"]["median"]
            ratio = f"{median / base:9.2f}x" if base else ""
            print(f"  {b['name'][:60]:<60} {median * 1e6:12.1f} us {ratio:>10}")


def _returns_command(args) -> int:
    """Reward-to-go and GAE advantages for a rollout buffer saved with np.savez."""
    from .returns import gae, reward_to_go

    with np.load(args.buffer) as data:
        arrays = {k: data[k] for k in data.files}
    if "rewards" not in arrays:
        raise ValueError(f"{args.buffer} has no 'rewards' array")
    flags = {k: arrays.get(k) for k in ("terminated", "truncated")}
    out: dict = {"returns": reward_to_go(arrays["rewards"], args.gamma, **flags,
                                   next_values=arrays.get("next_values"))}
    if "values" in arrays and "next_values" in arrays:
        out["advantages"] = gae(arrays["rewards"], arrays["values"], arrays["next_values"],
                                args.gamma, args.lam, **flags)
    np.savez(args.out, **out)
    print(f"wrote {', '.join(out)} of shape {out['returns'].shape} to {args.out}")
    return 0


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="pgfast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pgfast {version('pgfast')}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a policy and evaluate it")
    train.add_argument("env", nargs="?", default="CartPole-v1",
                       help="environment id (native pgfast or any Gymnasium id); "
                            "default CartPole-v1")
    train.add_argument("--update", choices=UPDATES, default="trpo")
    train.add_argument("--policy", choices=("linear", "mlp"), default="linear")
    train.add_argument("--steps", type=_positive_int, default=300_000,
                       help="environment steps to train for")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--gamma", type=float, default=0.99)
    train.add_argument("--out", help="output folder (default runs/ENV-UPDATE-SEED)")
    train.add_argument("--eval-episodes", type=_positive_int, default=100)
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=_train_command)

    ev = commands.add_parser("eval", help="evaluate a saved policy")
    ev.add_argument("dir", help="a folder written by pgfast train")
    ev.add_argument("--episodes", type=_positive_int, default=100)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--stochastic", action="store_true", help="sample actions (default: mode)")
    ev.set_defaults(run=_eval_command)

    bench = commands.add_parser("bench", help="run the benchmark suite, print ratios")
    bench.add_argument("--path", help="benchmark folder (default: the suite installed with pgfast)")
    bench.add_argument("-k", dest="filter", help="only benchmarks matching this expression")
    bench.set_defaults(run=_bench_command)

    returns = commands.add_parser(
        "returns", help="reward-to-go and GAE advantages of a buffer saved with np.savez")
    returns.add_argument("buffer", help=".npz with rewards [terminated truncated values next_values]")
    returns.add_argument("--gamma", type=float, default=0.99)
    returns.add_argument("--lam", type=float, default=0.95)
    returns.add_argument("--out", default="returns.npz")
    returns.set_defaults(run=_returns_command)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, OSError, gym_error()) as exc:
        parser.exit(2, f"pgfast {args.command}: error: {exc}\n")


def gym_error():
    import gymnasium

    return gymnasium.error.Error


if __name__ == "__main__":
    sys.exit(main())
