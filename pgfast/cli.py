"""pgfast command line: train, evaluate and benchmark policy-gradient methods."""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .checkpoints import write_atomically
from .defaults import UPDATES


def _train_command(args) -> int:
    from . import defaults
    from .checkpoints import CHECKPOINT_FILE, load_checkpoint
    from .training import StopWhenSolved, evaluate, train

    args.policy = args.policy or defaults.policy_kind(args.env)
    config, sources = defaults.settings(args.env, args.policy, _overrides(args))
    threshold = defaults.threshold(args.env)
    if args.config:
        _print_config(args, config, sources, threshold)
        return 0
    out = Path(args.out or f"runs/{args.env.replace('/', '_')}-{args.policy}-"
                          f"{config['update']}-{args.seed}")
    _check_out(out, args.resume, args.overwrite)   # before anything slow
    problem, policy, update = _build(args.env, args.policy, config, args.horizon,
                                     args.workers, args.address)
    metadata = {"env": args.env, "policy": args.policy, "seed": args.seed,
                "horizon": args.horizon, "settings": _jsonable(config)}
    if args.resume:
        _, saved = load_checkpoint(out)
        _check_resume(saved["metadata"], metadata)
        done = saved["history"]["steps"]
        print(f"pgfast train: resuming the run in {out} after {len(done)} updates "
              f"({int(done[-1]) if len(done) else 0} steps)")
    rng = np.random.default_rng(args.seed)
    theta = policy.init(rng)
    stop = None
    if threshold is not None and not args.no_stop:
        stop = StopWhenSolved(problem, policy, threshold, np.random.default_rng([args.seed, 1]),
                              every=config["eval_every"])
    print(f"pgfast train: {config['update']} on {args.env}, {type(policy).__name__} "
          f"({policy.n_params} parameters), up to {config['steps']} steps"
          + (f", stopping at a mean return of {threshold:g}" if stop else "") + f" -> {out}")
    print("settings: " + ", ".join(f"{k}={_show(config[k])}"
                                   for k in _used(config, args.policy, policy))
          + " (pgfast train --config lists them all and where each comes from)")
    started, cpu = time.perf_counter(), time.process_time()
    try:
        theta, history = train(update, theta, total_steps=config["steps"], rng=rng,
                               callback=stop, progress=not args.quiet, checkpoint_dir=out,
                               resume=args.resume, metadata=metadata,
                               checkpoint_every=args.checkpoint_every)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint written to {out} (continue with --resume)")
        return 130
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if stop is not None and stop.best_raw_theta is not None:
        raw = stop.best_raw_theta
    else:
        raw = theta if problem.obs_normalizer is None else problem.obs_normalizer.fold(policy, theta)
    write_atomically(out / POLICY_FILE,
                     lambda f: np.savez(f, theta=raw, config=json.dumps(policy.config())))
    eval_problem = defaults.Problem(args.env, gamma=1.0, horizon=args.horizon)
    returns = evaluate(eval_problem, policy, raw, episodes=args.eval_episodes,
                       rng=np.random.default_rng([args.seed, 2]))
    summary = {"episodes": int(returns.size), "mean_return": float(returns.mean()),
               "std_return": float(returns.std()), "min_return": float(returns.min()),
               "max_return": float(returns.max()), "train_steps": int(history["steps"][-1]),
               "train_seconds": float(history["wall_time"][-1]), "wall_seconds": wall,
               "cpu_seconds": cpu,
               "threshold": threshold, "solved": bool(stop is not None and stop.solved),
               "updates": int(history["iteration"][-1])}
    (out / "evaluation.json").write_text(json.dumps(summary, indent=2))
    _write_curve(out, history, stop, args, config, threshold)
    if stop is not None and stop.solved:
        print(f"solved after {summary['train_steps']} steps ({summary['updates']} updates) "
              f"in {wall:.2f} s ({cpu:.2f} s of CPU)")
    elif stop is not None:
        print(f"not solved within {config['steps']} steps ({wall:.2f} s); "
              f"keeping the best parameters seen (evaluation {stop.best_score:.1f})")
    else:
        print(f"trained {summary['train_steps']} steps in {wall:.2f} s")
    print(f"evaluation over {summary['episodes']} episodes: mean return "
          f"{summary['mean_return']:.1f} ± {summary['std_return']:.1f} "
          f"(min {summary['min_return']:.1f}, max {summary['max_return']:.1f})")
    return 0


POLICY_FILE = "policy.npz"   # the kept parameters, acting on raw observations


def _overrides(args):
    """The settings given on the command line: the named flags, then --set k=v."""
    given = {"update": args.update, "steps": args.steps, "gamma": args.gamma,
             "eval_every": args.eval_every}
    overrides = {k: v for k, v in given.items() if v is not None}
    from . import defaults

    for item in args.set or ():
        key, sep, text = item.partition("=")
        if not sep or key not in defaults.GENERIC:
            raise ValueError(f"--set: expected KEY=VALUE with KEY one of "
                             f"{', '.join(defaults.GENERIC)}, got {item!r}")
        overrides[key] = _parse_like(text, defaults.GENERIC[key], key)
    return overrides


def _parse_like(text, example, key):
    try:
        if isinstance(example, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return text.lower() in ("true", "1")
        if isinstance(example, tuple):
            return tuple(int(x) for x in text.split(",") if x)
        if isinstance(example, str):
            return text
        value = float(text)   # "1e5" is welcome where a count is expected
        if isinstance(example, int):
            if not value.is_integer():   # 2.5, inf and nan are not counts
                raise ValueError
            value = int(value)
    except ValueError:
        raise ValueError(f"--set {key}: expected a value like {_show(example)}, "
                         f"got {text!r}") from None
    if key == "log_std":   # a log: any finite value
        if not np.isfinite(value):
            raise ValueError(f"--set {key}: expected a finite number, got {text!r}")
    elif not (value > 0 and (isinstance(value, int) or np.isfinite(value))):
        raise ValueError(f"--set {key}: expected a positive number, got {text!r}")
    return value


_USED_BY = {
    "trpo": ("epsilon", "fisher_subsample"), "natural": ("epsilon", "fisher_subsample"),
    "ppo": ("clip", "alpha", "k_max", "minibatches", "anneal"), "restricted": (), "ascent": (),
}


def _used(config, policy_kind, policy):
    """The settings this run reads, in the table's order."""
    used = {"update", "steps", "gamma", "m", "normalize", "eval_every",
            *_USED_BY[config["update"]]}
    if config["update"] in ("trpo", "natural", "ppo"):
        used |= {"lam", "value_lr", "value_epochs", "value_minibatch", "scale_rewards"}
    if policy_kind == "mlp":
        used.add("hidden")
    if not policy.discrete:
        used.add("log_std")
    return [k for k in config if k in used]


def _show(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _jsonable(config):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def _print_config(args, config, sources, threshold):
    print(f"pgfast train {args.env} --policy {args.policy}: settings in use")
    for key, value in config.items():
        print(f"  {key:<18} {_show(value):<12} ({sources[key]})")
    print(f"  {'threshold':<18} {threshold if threshold is not None else 'none':<12} "
          f"(stop when solved{'' if threshold is not None else ': no threshold known'})")


def _check_out(out, resume, overwrite):
    """Fail now, not after the run: --out must be a writable folder, and one that
    holds another run is only reused with --resume or --overwrite."""
    from .checkpoints import CHECKPOINT_FILE

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a folder")
    has_run = (out / CHECKPOINT_FILE).exists()
    if resume and not has_run:
        raise ValueError(f"--resume: no run to resume in {out}")
    if has_run and not resume and not overwrite:
        raise ValueError(f"--out: {out} holds another run; continue it with --resume "
                         f"or replace it with --overwrite")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ValueError(f"--out: cannot write to {out} ({exc.strerror or exc})") from None


def _build(env, policy_kind, config, horizon, workers=None, address=None):
    """defaults.build with the env errors a user can make said in one line."""
    import gymnasium

    from . import defaults

    try:
        return defaults.build(env, policy_kind, config, horizon, workers, address)
    except gymnasium.error.Error as exc:
        raise ValueError(f"env: {env!r} is neither a pgfast nor a Gymnasium environment "
                         f"id ({exc})") from None
    except TypeError as exc:   # spaces no pgfast policy acts in
        raise ValueError(f"env: {env} cannot be trained with a {policy_kind} policy "
                         f"({exc})") from None
    except ValueError as exc:
        if str(exc).startswith("horizon"):
            raise ValueError(f"--horizon: {env} has no time limit; give the rollout depth, "
                             f"e.g. --horizon 200") from None
        raise


def _check_resume(saved, now):
    """A resumed run must be the same run: say which settings differ (the budget may
    grow, and evaluations, which draw from their own generator, may change pace)."""
    differ = []
    for key in ("env", "policy", "seed", "horizon"):
        if saved.get(key) != now.get(key):
            differ.append(f"{key}: {saved.get(key)} in the checkpoint, {now.get(key)} now")
    old, new = saved.get("settings", {}), now["settings"]
    for key in new:
        if key not in ("steps", "eval_every") and key in old and old[key] != new[key]:
            differ.append(f"{key}: {old[key]} in the checkpoint, {new[key]} now")
    if differ:
        raise ValueError("--resume: the checkpoint was trained with other settings ("
                         + "; ".join(differ) + ")")


def _write_curve(out, history, stop, args, config, threshold):
    keys = list(history)
    with open(out / "curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        writer.writerows(zip(*(history[k].tolist() for k in keys)))
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no curve.png (pip install 'pgfast[plot]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(history["steps"], history["mean_return"], lw=1, label="training batch (mean return)")
    if stop is not None and stop.evaluations:
        _, steps, scores = zip(*stop.evaluations)
        ax.plot(steps, scores, "o", ms=3, label="deterministic evaluation")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"solved ({threshold:g})")
    ax.set_title(f"{args.env}: {config['update']}, {args.policy} policy, seed {args.seed}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)
    plt.close(fig)


def _eval_command(args) -> int:
    from .checkpoints import load_checkpoint
    from .policies import Policy, from_config
    from .problem import ObservationNormalizer
    from .training import evaluate

    theta, saved = load_checkpoint(args.dir)
    env = saved["metadata"].get("env")
    if env is None:
        raise ValueError(f"checkpoint: {args.dir} does not record its environment")
    policy = from_config(saved["policy"])
    if not isinstance(policy, Policy):
        raise ValueError(f"checkpoint: {args.dir} records a {type(policy).__name__}, "
                         "not a policy")
    kept = Path(args.dir) / POLICY_FILE
    if kept.exists():   # the best parameters, already acting on raw observations
        theta = _load_kept(kept, policy)
    elif "obs_mean" in saved["state"]:
        normalizer = ObservationNormalizer(policy.obs_dim)
        normalizer.load_state_dict(saved["state"])
        theta = normalizer.fold(policy, theta)
    returns = evaluate(env, policy, theta, episodes=args.episodes,
                       rng=np.random.default_rng(args.seed), deterministic=not args.stochastic,
                       horizon=saved["metadata"].get("horizon"))
    print(f"{env}: mean return {returns.mean():.2f} ± {returns.std():.2f} over "
          f"{returns.size} episodes (min {returns.min():.1f}, max {returns.max():.1f})")
    return 0


def _load_kept(path, policy):
    """The parameters ``pgfast train`` kept in `path`, checked to be the policy's."""
    try:
        with np.load(path, allow_pickle=False) as data:   # an .npy header: no `with`
            theta, config = data["theta"], json.loads(str(data["config"]))
    except Exception as exc:   # damaged bytes fail in any of zipfile's and numpy's ways
        raise ValueError(f"policy: {path} is corrupt or unreadable ({exc})") from None
    if config != json.loads(json.dumps(policy.config())) or theta.dtype != np.float64 \
            or theta.shape != (policy.n_params,) or not np.isfinite(theta).all():
        raise ValueError(f"policy: {path} does not hold finite parameters of {policy!r}")
    return theta


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

    train = commands.add_parser(
        "train", help="train a policy with the env's defaults until solved, then evaluate it")
    train.add_argument("env", nargs="?", default="CartPole-v1",
                       help="environment id (native pgfast or any Gymnasium id); "
                            "default CartPole-v1")
    train.add_argument("--policy", choices=("linear", "mlp"),
                       help="default: linear, or the env's entry in pgfast.defaults.POLICY")
    train.add_argument("--update", choices=UPDATES,
                       help="default: the env's entry in pgfast.defaults.TABLE")
    train.add_argument("--steps", type=_positive_int,
                       help="environment-step budget (default: the env's entry)")
    train.add_argument("--gamma", type=float, help="discount (default: the env's entry)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override one setting (see --config), e.g. --set m=32")
    train.add_argument("--config", action="store_true",
                       help="list the settings in use and where each comes from, then exit")
    train.add_argument("--horizon", type=_positive_int,
                       help="rollout depth, for envs without a time limit")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="run folder (default runs/ENV-POLICY-UPDATE-SEED)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run already in --out")
    train.add_argument("--no-stop", action="store_true",
                       help="train the whole budget instead of stopping when solved")
    train.add_argument("--eval-every", type=_positive_int,
                       help="updates between evaluations for stopping (default: the env's "
                            "entry, else 1)")
    train.add_argument("--eval-episodes", type=_positive_int, default=100)
    train.add_argument("--checkpoint-every", type=_positive_int, default=20,
                       help="updates between checkpoints (also at the end, Ctrl-C, SIGTERM)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--workers", type=_positive_int,
                       help="roll out on this many Ray actors (pip install 'pgfast[ray]'); "
                            "the same results as without")
    train.add_argument("--address", help="Ray cluster host:port for --workers "
                                          "(default: start a local one)")
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
    except KeyboardInterrupt:   # outside training (which says where its checkpoint is)
        print(f"\npgfast {args.command}: interrupted", file=sys.stderr)
        return 130


def gym_error():
    import gymnasium

    return gymnasium.error.Error


if __name__ == "__main__":
    sys.exit(main())
