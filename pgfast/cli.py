"""pgfast command line: train, evaluate and benchmark policy-gradient methods."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ._signals import Interrupts
from .defaults import UPDATES


def _train_command(args) -> int:
    from . import factory
    from .artifacts import EVALUATION_FILE, RUN_FILES
    from .checkpoints import load_checkpoint
    from .training import StopWhenSolved, train

    if args.resume and args.overwrite:
        raise ValueError("--resume: continues the run in --out and --overwrite replaces "
                         "it; give one of the two")
    saved = None
    if args.resume:
        out = _run_folder(args)
        if not out.is_dir() or not (out / RUN_FILES[0]).exists():
            raise ValueError(f"--resume: no run to resume in {out}")
        _, saved = load_checkpoint(out)
        config = _resumed_settings(args, saved["metadata"], out)
    else:
        for flag, default in RUN_DEFAULTS.items():
            if getattr(args, flag) is None:
                setattr(args, flag, default)
        args.policy = args.policy or factory.policy_kind(args.env)
        config, sources = factory.settings(args.env, args.policy, _overrides(args))
        if args.config:
            _print_config(args, config, sources, factory.threshold(args.env))
            return 0
        out = _run_folder(args, config)
        _check_out(out, args.overwrite)   # before anything slow
    threshold = factory.threshold(args.env)
    metadata = {"env": args.env, "policy": args.policy, "seed": args.seed,
                "horizon": args.horizon, "no_stop": args.no_stop,
                "eval_episodes": args.eval_episodes, "settings": _jsonable(config)}
    if saved is not None and (saved["stopped"] or _steps_done(saved) >= config["steps"]):
        verdict = "was solved" if saved["stopped"] else \
            f"used its budget of {config['steps']} steps"
        if (out / EVALUATION_FILE).exists():
            print(f"pgfast train: the run in {out} {verdict} after {_steps_done(saved)} steps; "
                  f"nothing to do" + ("" if saved["stopped"] else " (raise --steps to go on)"))
            return 0
    problem, policy, update = _build(args.env, args.policy, config, args.horizon,
                                     args.workers, args.address)
    if saved is not None:
        print(f"pgfast train: resuming the run in {out} after "
              f"{len(saved['history']['steps'])} updates ({_steps_done(saved)} steps)")
    rng = np.random.default_rng(args.seed)
    theta = policy.init(rng)
    # Without a threshold the rule never stops the run, but still keeps its best θ.
    stop = None
    if not args.no_stop:
        stop = StopWhenSolved(problem, policy, threshold, np.random.default_rng([args.seed, 1]),
                              every=config["eval_every"], confidence=config["confidence"])
    print(f"pgfast train: {config['update']} on {args.env}, {type(policy).__name__} "
          f"({policy.n_params} parameters), up to {config['steps']} steps"
          + (f", stopping at a mean return of {threshold:g}" if stop and threshold is not None
             else "") + f" -> {out}")
    if not factory.tuned(args.env):
        print(f"pgfast train: {args.env} has no tuned entry; these settings are generic"
              + (" (the continuous-control recipe of pgfast.defaults.CONTINUOUS)"
                 if not policy.discrete else ""))
    print("settings: " + ", ".join(f"{k}={_show(config[k])}"
                                   for k in _used(config, args.policy, policy))
          + " (pgfast train --config lists them all and where each comes from)")
    if args.overwrite:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    logger = None
    if args.tensorboard:
        from .loggers import TensorBoardLogger

        # A resumed run appends to its curves (what an earlier session logged past
        # the checkpoint is dropped, as the run replays it).
        purge = _steps_done(saved) + 1 if saved is not None else None
        try:
            logger = TensorBoardLogger(args.tensorboard, purge_step=purge)
        except ImportError as exc:
            raise ValueError(f"--tensorboard: {exc}") from None
    started, cpu = time.perf_counter(), time.process_time()
    try:
        theta, history = train(update, theta, total_steps=config["steps"], rng=rng,
                               callback=stop, progress=not args.quiet, checkpoint_dir=out,
                               resume=args.resume, metadata=metadata,
                               checkpoint_every=args.checkpoint_every, logger=logger,
                               num_threads=args.threads)
    except KeyboardInterrupt:
        print(f"\ninterrupted: checkpoint written to {out}; continue with: "
              f"pgfast train --resume --out {shlex.quote(str(out))}"
              + (f" --tensorboard {shlex.quote(args.tensorboard)}" if logger else ""))
        return 130
    finally:
        if logger is not None:
            logger.close()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    _write_results(out, args, config, threshold, problem, policy, stop, theta, history,
                   wall, cpu)
    return 0


# The flags that define a run, and their values when not given (None in the parser,
# so that a resume can tell a flag given from one left out).
RUN_DEFAULTS = {"env": "CartPole-v1", "seed": 0, "no_stop": False, "eval_episodes": 100}
# Flags a resume takes from the checkpoint: given with --resume, they must match.
RESUMED_FLAGS = ("env", "policy", "seed", "horizon", "no_stop", "eval_episodes", "update",
                 "gamma", "eval_every", "set")



VIDEO_FRAMES = 200   # a short video: the kept policy's first steps


def _write_video(out, args, policy, theta):
    """``video.mp4`` (a GIF without ffmpeg): one episode of the kept policy, its first
    VIDEO_FRAMES steps, when the env renders and the video extra is installed; else
    one line saying why there is none."""
    import gymnasium

    from .video import record_video

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")   # off-screen: no SDL display probe
    try:
        import imageio_ffmpeg  # noqa: F401  (MP4)
        name = "video.mp4"
    except ImportError:
        name = "video.gif"
    try:
        record_video(args.env, policy, theta, out / name, episodes=1,
                     rng=np.random.default_rng([args.seed, 3]),
                     max_episode_steps=min(args.horizon or VIDEO_FRAMES, VIDEO_FRAMES))
    except (ImportError, gymnasium.error.DependencyNotInstalled, ValueError,
            RuntimeError) as exc:
        print(f"no {name} ({str(exc).splitlines()[0]}); --no-video skips it")


def _run_folder(args, config=None):
    if args.out:
        return Path(args.out)
    if args.resume:
        raise ValueError("--resume: give the run's folder with --out")
    return Path(f"runs/{args.env.replace('/', '_')}-{args.policy}-"
                f"{config['update']}-{args.seed}")


def _steps_done(saved):
    steps = saved["history"].get("steps", ())
    return int(steps[-1]) if len(steps) else 0


def _resumed_settings(args, saved, out):
    """Take the run's flags and settings from its checkpoint's metadata; a flag given
    again must match it (only --steps may change: a larger budget goes on)."""
    from . import defaults

    order = list(defaults.GENERIC)   # the table's order (JSON sorted the keys)
    settings = dict(sorted(saved.get("settings", {}).items(),
                           key=lambda item: order.index(item[0]) if item[0] in order
                           else len(order)))
    if "hidden" in settings:
        settings["hidden"] = tuple(settings["hidden"])
    recorded = {"env": saved.get("env"), "policy": saved.get("policy"),
                "seed": saved.get("seed"), "horizon": saved.get("horizon"),
                "no_stop": saved.get("no_stop", False),
                "eval_episodes": saved.get("eval_episodes", 100),
                "update": settings.get("update"), "gamma": settings.get("gamma"),
                "eval_every": settings.get("eval_every")}
    if recorded["env"] is None or not settings:
        raise ValueError(f"--resume: the checkpoint in {out} does not record its run's "
                         f"settings (not written by pgfast train)")
    for flag in RESUMED_FLAGS:
        given = getattr(args, flag)
        if given is None:
            continue
        if flag == "set":
            mismatched = []
            for item in given:
                key, value = _parse_set(item)
                if _jsonable({key: value}) != _jsonable({key: settings.get(key)}):
                    mismatched.append(f"{key}={_show(settings.get(key))}, not {item}")
            if mismatched:
                raise ValueError(f"--set: the run in {out} was trained with "
                                 f"{'; '.join(mismatched)}; --resume takes its settings from "
                                 f"the checkpoint (only --steps may change)")
        elif given != recorded[flag] and not (flag == "no_stop" and not given):
            raise ValueError(f"--{flag.replace('_', '-')}: the run in {out} was trained with "
                             f"{recorded[flag]}, not {given}; --resume takes it from the "
                             f"checkpoint (only --steps may change)")
    for flag in ("env", "policy", "seed", "horizon", "no_stop", "eval_episodes"):
        setattr(args, flag, recorded[flag])
    if args.steps is not None:
        settings["steps"] = args.steps
    return settings


def _write_results(out, args, config, threshold, problem, policy, stop, theta, history,
                   wall, cpu):
    """The kept policy, its evaluation and the learning curve, with a summary."""
    from .artifacts import write_curve, write_evaluation, write_kept_policy
    from .problem import Problem
    from .training import evaluate

    if stop is not None and stop.best_raw_theta is not None:
        raw = stop.best_raw_theta
    else:
        raw = theta if problem.obs_normalizer is None else problem.obs_normalizer.fold(policy, theta)
    write_kept_policy(out, policy, raw)
    eval_problem = Problem(args.env, gamma=1.0, horizon=args.horizon, num_threads=args.threads)
    returns = evaluate(eval_problem, policy, raw, episodes=args.eval_episodes,
                       rng=np.random.default_rng([args.seed, 2]))
    summary = {"episodes": int(returns.size), "mean_return": float(returns.mean()),
               "std_return": float(returns.std()), "min_return": float(returns.min()),
               "max_return": float(returns.max()), "train_steps": int(history["steps"][-1]),
               "train_seconds": float(history["wall_time"][-1]), "wall_seconds": wall,
               "cpu_seconds": cpu,
               "threshold": threshold, "solved": bool(stop is not None and stop.solved),
               "updates": int(history["iteration"][-1])}
    title = f"{args.env}: {config['update']}, {args.policy} policy, seed {args.seed}"
    if not write_curve(out, history, stop.evaluations if stop is not None else [], title,
                       threshold):
        print("matplotlib is not installed: no curve.png (pip install 'pgfast[plot]')")
    if not args.no_video:
        _write_video(out, args, policy, raw)
    write_evaluation(out, summary)   # last: its presence says the run's files are whole
    if stop is not None and stop.solved:
        print(f"solved after {summary['train_steps']} steps ({summary['updates']} updates) "
              f"in {wall:.2f} s ({cpu:.2f} s of CPU)")
    elif stop is not None and stop.best_theta is not None:
        verdict = f"not solved within {config['steps']} steps" if threshold is not None \
            else f"trained {summary['train_steps']} steps"
        print(f"{verdict} ({wall:.2f} s); keeping the best parameters seen "
              f"(evaluation {stop.best_score:.1f})")
    else:
        print(f"trained {summary['train_steps']} steps in {wall:.2f} s")
    print(f"evaluation over {summary['episodes']} episodes: mean return "
          f"{summary['mean_return']:.1f} ± {summary['std_return']:.1f} "
          f"(min {summary['min_return']:.1f}, max {summary['max_return']:.1f})")


def _overrides(args):
    """The settings given on the command line: the named flags, then --set k=v."""
    given = {"update": args.update, "steps": args.steps, "gamma": args.gamma,
             "eval_every": args.eval_every}
    overrides = {k: v for k, v in given.items() if v is not None}
    overrides.update(_parse_set(item) for item in args.set or ())
    return overrides


def _parse_set(item):
    """--set KEY=VALUE as (key, value), the value of the setting's type."""
    from . import defaults

    key, sep, text = item.partition("=")
    if not sep or key not in defaults.GENERIC:
        raise ValueError(f"--set: expected KEY=VALUE with KEY one of "
                         f"{', '.join(defaults.GENERIC)}, got {item!r}")
    return key, _parse_like(text, defaults.GENERIC[key], key)


# Settings whose 0 means something: no damping, λ = 0 (one-step TD), γ = 0.
_MAY_BE_ZERO = {"damping", "lam", "gamma"}


def _parse_like(text, example, key):
    if example is None:   # an optional count (batch_steps): a count, or "none" for off
        if text.lower() == "none":
            return None
        example = 0
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
    elif key in _MAY_BE_ZERO:
        if not (0 <= value < np.inf):
            raise ValueError(f"--set {key}: expected a number ≥ 0, got {text!r}")
    elif not (value > 0 and (isinstance(value, int) or np.isfinite(value))):
        raise ValueError(f"--set {key}: expected a positive number, got {text!r}")
    return value


_USED_BY = {
    "trpo": ("epsilon", "fisher_subsample"), "natural": ("epsilon", "fisher_subsample"),
    "ppo": ("clip", "alpha", "k_max", "minibatches", "anneal"), "restricted": (), "ascent": (),
}


def _used(config, policy_kind, policy):
    """The settings this run reads, in the table's order."""
    used = {"update", "steps", "gamma", "m", "normalize", "eval_every", "confidence",
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


def _check_out(out, overwrite):
    """Fail now, not after the run: --out must be a folder we can write (created at the
    first checkpoint, so a command that fails leaves none behind), and one that holds
    another run is only reused with --resume or --overwrite."""
    from .checkpoints import has_checkpoint

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: {out} exists and is not a folder")
    if has_checkpoint(out) and not overwrite:
        raise ValueError(f"--out: {out} holds another run; continue it with "
                         f"pgfast train --resume --out {shlex.quote(str(out))}, or replace "
                         f"it with --overwrite")
    existing = out.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out: cannot write to {out} ({existing} is not a writable "
                         f"folder)")


def _build(env, policy_kind, config, horizon, workers=None, address=None):
    """factory.build with the env errors a user can make said in one line."""
    import gymnasium

    from . import factory

    try:
        return factory.build(env, policy_kind, config, horizon, workers, address)
    except gymnasium.error.DependencyNotInstalled:
        raise   # a known id whose library is missing: main() says which to install
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


def _kept_policy(folder):
    """The env, horizon, policy and kept θ (acting on raw observations) of a run folder."""
    from .artifacts import POLICY_FILE, load_kept_policy
    from .checkpoints import load_checkpoint
    from .policies import from_config
    from .statistics import ObservationNormalizer

    theta, saved = load_checkpoint(folder)
    env = saved["metadata"].get("env")
    if env is None:
        raise ValueError(f"checkpoint: {folder} does not record its environment")
    policy = from_config(saved["policy"])
    kept = Path(folder) / POLICY_FILE
    if kept.exists():   # the best parameters, already acting on raw observations
        theta = load_kept_policy(kept, policy)
    elif "observations" in saved["problem"]:
        normalizer = ObservationNormalizer(policy.obs_dim)
        normalizer.load_state_dict(saved["problem"]["observations"])
        theta = normalizer.fold(policy, theta)
    return env, saved["metadata"].get("horizon"), policy, theta


def _eval_command(args) -> int:
    from .training import evaluate

    env, horizon, policy, theta = _kept_policy(args.dir)
    returns = evaluate(env, policy, theta, episodes=args.episodes,
                       rng=np.random.default_rng(args.seed), deterministic=not args.stochastic,
                       horizon=horizon)
    print(f"{env}: mean return {returns.mean():.2f} ± {returns.std():.2f} over "
          f"{returns.size} episodes (min {returns.min():.1f}, max {returns.max():.1f})")
    if args.video:
        from .video import record_video

        try:
            shown = record_video(env, policy, theta, args.video, episodes=args.video_episodes,
                                 rng=np.random.default_rng(args.seed),
                                 deterministic=not args.stochastic, max_episode_steps=horizon)
        except ImportError as exc:
            raise ValueError(str(exc)) from None
        print(f"video: {args.video}, {shown.size} episode(s), returns "
              + ", ".join(f"{r:.1f}" for r in shown))
    return 0


def _export_command(args) -> int:
    """Write the kept policy as ONNX or C, then check it against pgfast's actions on
    the observations of deterministic episodes of the run's env."""
    from . import export
    from .problem import Problem

    env, horizon, policy, theta = _kept_policy(args.dir)
    folder = Path(args.dir)
    try:
        if args.format == "onnx":
            written = [export.export_onnx(policy, theta, Path(args.out or folder / "policy.onnx"))]
        else:
            written = list(export.export_c(policy, theta, Path(args.out or folder), args.name))
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    print(f"pgfast export: {policy!r} of {env} -> {', '.join(map(str, written))}")
    problem = Problem(env, gamma=1.0, horizon=horizon)
    traj = problem.rollouts(policy, theta, args.episodes, np.random.default_rng(args.seed),
                            deterministic=True)
    obs = traj.observations[traj.alive]
    try:
        if args.format == "onnx":
            actions, runner = export.onnx_actions(written[0], obs), "onnxruntime"
        else:
            actions, runner = export.c_actions(written[1], policy, obs), "the C compiler"
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    worst = export.check_actions(policy, theta, obs, actions)
    agreement = ("the same actions" if worst == 0 else
                 f"actions within {worst:.1f} ulps" if not policy.discrete else
                 f"the same actions except {worst:.2%} at near-ties")
    print(f"checked with {runner} on {len(obs)} observations of {args.episodes} deterministic "
          f"episodes: {agreement} as pgfast's")
    return 0


def _tune_command(args) -> int:
    """An Optuna search of the env's settings; the best printed as --set options and as
    a table entry, with a plot of the study."""
    from . import tuning

    out = Path(args.out or f"tune/{args.env.replace('/', '_')}")
    try:
        study = tuning.tune(args.env, out, args.trials, steps=args.steps, policy=args.policy,
                            update=args.update, seeds=args.seeds, episodes=args.episodes,
                            horizon=args.horizon, workers=args.workers, seed=args.seed)
    except ImportError as exc:
        raise ValueError(str(exc)) from None
    search = study.user_attrs["search"]
    states = [t.state.name for t in study.trials]
    print(f"study {out / tuning.STUDY_FILE}: {states.count('COMPLETE')} trials finished, "
          f"{states.count('PRUNED')} pruned ({search['update']}, {search['policy']} policy, "
          f"{search['steps']} steps x {search['seeds']} seed(s) a trial)")
    best = tuning.best_settings(study)
    print(f"best: trial {study.best_trial.number}, mean return {study.best_value:.1f} "
          f"on seeds {study.best_trial.user_attrs.get('seeds')}")
    options = " ".join(f"--set {k}={_show(_rounded(v))}" for k, v in best.items())
    print(f"pgfast train {args.env} --policy {search['policy']} --update {search['update']} "
          f"--steps {search['steps']} {options}")
    entry = {"update": search["update"], "steps": search["steps"],
             **{k: _rounded(v) for k, v in best.items()}}
    print(f"table entry: TABLE[{args.env!r}][{search['policy']!r}] = {entry!r}")
    (out / "best.json").write_text(json.dumps(
        {"trial": study.best_trial.number, "score": study.best_value,
         "seeds": study.best_trial.user_attrs.get("seeds"), "search": search,
         "settings": _jsonable(entry)}, indent=2))
    _plot_study(study, out / "study.png")
    return 0


def _rounded(value):
    """Four significant digits for a drawn float (what a table entry shows)."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _plot_study(study, path):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no study.png (pip install 'pgfast[plot]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    pruned = [t for t in study.trials if t.state.name == "PRUNED" and t.intermediate_values]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot([t.number for t in done], [t.value for t in done], "o", ms=4, label="finished")
    if pruned:
        ax.plot([t.number for t in pruned],
                [t.intermediate_values[max(t.intermediate_values)] for t in pruned], "x",
                ms=5, color="0.5", label="pruned (last evaluation)")
    if done:
        ax.step([t.number for t in done], np.maximum.accumulate([t.value for t in done]),
                where="post", color="k", lw=1, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("mean return")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


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

    arrays = _load_buffer(args.buffer)
    if "rewards" not in arrays:
        raise ValueError(f"buffer: {args.buffer} has no 'rewards' array (it holds "
                         f"{', '.join(map(repr, arrays)) or 'none'})")
    flags = {k: arrays.get(k) for k in ("terminated", "truncated")}
    out: dict = {"returns": reward_to_go(arrays["rewards"], args.gamma, **flags,
                                   next_values=arrays.get("next_values"))}
    if "values" in arrays and "next_values" in arrays:
        out["advantages"] = gae(arrays["rewards"], arrays["values"], arrays["next_values"],
                                args.gamma, args.lam, **flags)
    np.savez(args.out, **out)
    print(f"wrote {', '.join(out)} of shape {out['returns'].shape} to {args.out}")
    return 0


def _load_buffer(path):
    """The named arrays of an .npz archive, or a ValueError naming the file (and the
    array) when it is not one: damaged, empty, a single .npy array, or pickled objects."""
    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:   # damaged bytes fail in any of zipfile's and numpy's ways
        raise ValueError(f"buffer: {path} is not a readable .npz archive "
                         f"({type(exc).__name__}: {exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"buffer: {path} holds a single array (.npy); expected an .npz "
                         f"archive of named arrays (np.savez(path, rewards=...))")
    arrays = {}
    with data:
        for name in data.files:
            try:
                arrays[name] = data[name]
            except Exception as exc:
                raise ValueError(f"buffer: array {name!r} of {path} is unreadable "
                                 f"({type(exc).__name__}: {exc})") from None
    return arrays


def _missing_extra(exc) -> str:
    """One line for an optional library that is not installed: which one, and what
    installs it (the error, or the one it was raised from, names the module)."""
    module = next((e.name.split(".")[0] for e in (exc, exc.__cause__, exc.__context__)
                   if isinstance(e, ImportError) and e.name), None)
    if isinstance(exc, ImportError) and module in _EXTRAS:
        return f"{module}: not installed; {_EXTRAS[module]}"
    return f"{module or 'env'}: {exc}"   # Gymnasium's own advice for its envs


# The optional libraries a command may need, and what installs each.
_EXTRAS = {"mujoco": 'the MuJoCo envs need it: pip install "pgfast[mujoco]"',
           "ray": '--workers needs it: pip install "pgfast[ray]"',
           "imageio": 'Gymnasium\'s MuJoCo envs need it: pip install "gymnasium[mujoco]"'}


def _int_at_least(minimum, what):
    """An argparse type: an integer >= `minimum`, refused as "expected `what`"."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_seed = _int_at_least(0, "an integer >= 0")   # NumPy's seeds


def _builtin_envs():
    """The train command's epilog: pgfast's native envs, those with tuned settings starred."""
    import textwrap

    from . import mujoco
    from .defaults import TABLE
    from .envs import PREFIX, native_ids

    names = [env_id.removeprefix(PREFIX) for env_id in native_ids()]
    names += [name for name in mujoco.ENV_NAMES if name not in names]
    listed = "  ".join(name + ("*" if name in TABLE else "") for name in names)
    heading = ("built-in environments (* tuned settings in pgfast.defaults.TABLE; the others, "
               "and any other Gymnasium id, train with the generic settings; the -v5 ones "
               f"need MuJoCo: {mujoco.INSTALL_HINT}):")
    return (textwrap.fill(heading, 86, break_on_hyphens=False) + "\n"
            + textwrap.fill(listed, 86, initial_indent="  ", subsequent_indent="  ",
                            break_on_hyphens=False))


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(prog="pgfast", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pgfast {version('pgfast')}")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train", help="train a policy with the env's defaults until solved, then evaluate it",
        epilog=_builtin_envs(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("env", nargs="?",
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
    train.add_argument("--seed", type=_seed, help="default 0")
    train.add_argument("--out", help="run folder (default runs/ENV-POLICY-UPDATE-SEED)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run in --out, with the settings in its checkpoint "
                            "(only --steps may change: a larger budget)")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the run already in --out")
    train.add_argument("--no-stop", action="store_true", default=None,
                       help="train the whole budget instead of stopping when solved")
    train.add_argument("--eval-every", type=_positive_int,
                       help="updates between evaluations for stopping (default: the env's "
                            "entry, else 1)")
    train.add_argument("--eval-episodes", type=_positive_int,
                       help="episodes of the final evaluation (default 100)")
    train.add_argument("--checkpoint-every", type=_positive_int, default=20,
                       help="updates between checkpoints (also at the end, Ctrl-C, SIGTERM)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=_positive_int, default=1,
                       help="threads for the rollouts of one run (the same results on any "
                            "count; default 1)")
    train.add_argument("--no-video", action="store_true",
                       help="no video.mp4 of the kept policy in the run folder (it needs "
                            "pip install 'pgfast[video]' and an env that renders)")
    train.add_argument("--tensorboard", metavar="DIR",
                       help="write the history and evaluations as TensorBoard scalars, with "
                            "SB3's names (pip install 'pgfast[tensorboard]'); a resumed run "
                            "appends")
    train.add_argument("--workers", type=_positive_int,
                       help="roll out on this many Ray actors (pip install 'pgfast[ray]'); "
                            "the same results as without")
    train.add_argument("--address", help="Ray cluster host:port for --workers "
                                          "(default: start a local one)")
    train.set_defaults(run=_train_command)

    ev = commands.add_parser("eval", help="evaluate a saved policy")
    ev.add_argument("dir", help="a folder written by pgfast train")
    ev.add_argument("--episodes", type=_positive_int, default=100)
    ev.add_argument("--seed", type=_seed, default=0)
    ev.add_argument("--stochastic", action="store_true", help="sample actions (default: mode)")
    ev.add_argument("--video", metavar="FILE",
                    help="also record episodes to FILE (.mp4 or .gif; "
                         "pip install 'pgfast[video]')")
    ev.add_argument("--video-episodes", type=_positive_int, default=1,
                    help="episodes in the video (default 1)")
    ev.set_defaults(run=_eval_command)

    export = commands.add_parser(
        "export", help="write the kept policy as ONNX or C and check it against pgfast")
    export.add_argument("dir", help="a folder written by pgfast train")
    export.add_argument("--format", choices=("onnx", "c"), required=True,
                        help="onnx: DIR/policy.onnx (pip install 'pgfast[onnx]'); "
                             "c: DIR/NAME.h and DIR/NAME.c, dependency-free C99")
    export.add_argument("--out", help="the .onnx file, or the folder of the C files "
                                      "(default: DIR)")
    export.add_argument("--name", default="policy",
                        help="C: the files' stem and the prefix of the C names (default policy)")
    export.add_argument("--episodes", type=_positive_int, default=10,
                        help="deterministic episodes whose observations check the export")
    export.add_argument("--seed", type=int, default=0)
    export.set_defaults(run=_export_command)

    tune = commands.add_parser(
        "tune", help="search the env's settings with Optuna (pip install 'pgfast[tune]')")
    tune.add_argument("env", help="environment id")
    tune.add_argument("--trials", type=_positive_int, required=True,
                      help="trials the study holds when done (a rerun adds to it)")
    tune.add_argument("--steps", type=_positive_int,
                      help="environment steps of each run (default: the env's entry)")
    tune.add_argument("--workers", type=_positive_int, default=1,
                      help="processes searching at once (default 1)")
    tune.add_argument("--policy", choices=("linear", "mlp"),
                      help="default: the env's entry in pgfast.defaults.POLICY")
    tune.add_argument("--update", choices=UPDATES, help="default: the env's entry")
    tune.add_argument("--seeds", type=_positive_int, default=1,
                      help="runs per trial, each on a seed of its own (default 1)")
    tune.add_argument("--episodes", type=_positive_int, default=10,
                      help="deterministic episodes per evaluation (default 10)")
    tune.add_argument("--horizon", type=_positive_int,
                      help="rollout depth, for envs without a time limit")
    tune.add_argument("--seed", type=int, default=0, help="seeds the TPE sampler")
    tune.add_argument("--out", help="study folder (default tune/ENV)")
    tune.set_defaults(run=_tune_command)

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
    # One Ctrl-C gives one line and exit 130, never a traceback: later ones are held
    # (training uses the same guard while it writes its checkpoint), and as the program
    # (not called in-process) they stay held until it has exited.
    with Interrupts(hold_after=argv is None):
        try:
            return args.run(args)
        except (ImportError, gym_missing_dependency()) as exc:   # an optional extra
            parser.exit(2, f"pgfast {args.command}: error: {_missing_extra(exc)}\n")
        except (ValueError, TypeError, OSError, gym_error()) as exc:
            parser.exit(2, f"pgfast {args.command}: error: {exc}\n")
        except KeyboardInterrupt:   # outside training (which says where its checkpoint is)
            print(f"\npgfast {args.command}: interrupted", file=sys.stderr)
            return 130


def gym_error():
    import gymnasium

    return gymnasium.error.Error


def gym_missing_dependency():
    import gymnasium

    return gymnasium.error.DependencyNotInstalled


if __name__ == "__main__":
    sys.exit(main())
