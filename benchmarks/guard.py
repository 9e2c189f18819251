"""The speed guard: each kernel's speed-up over its reference, measured in one run,
against the speed-ups recorded in guard.json beside this file.

A ratio (the reference's time over pgfast's, both timed in the same pytest-benchmark
run) is what the guard compares, never a time: the machine's load moves both
sides alike, so a ratio survives a busy machine that a time does not. A ratio that
fell by more than THRESHOLD (15 %) is named, and the script exits with status 1.

    python benchmarks/guard.py run [--runs 3]      # run the guarded cases, compare
    python benchmarks/guard.py compare RUN.json... # compare pytest-benchmark JSONs
    python benchmarks/guard.py record RUN.json...  # write guard.json from runs

``run`` calls pytest-benchmark under ``nice`` with every BLAS and OpenMP pool (and
PyTorch) on one thread, timing CPU time (``time.process_time``): on a machine shared
with other work a call that is preempted does not count the time it waited, so a
long reference is not inflated more than a short kernel, as it is in wall time.
``--runs K`` repeats the run and keeps each pair's median ratio; ``--save PREFIX``
keeps the JSON of each run. Run it before and after every change that
touches a kernel, a wrapper or a decorator. A pair whose reference is not
installed (PyTorch, EnvPool, Stable-Baselines3) is reported as skipped, not failed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GUARD_FILE = HERE / "guard.json"
THRESHOLD = 0.15
# The median round: in CPU time a preempted round costs nothing extra, and the
# median is steadier than the min, which catches an occasional lucky round of a
# short case (np.copy without its page faults).
STAT = "median"

# name -> (pgfast's case, the reference's case), as "file::test[params]"
PAIRS = {
    "gae vs SB3-style NumPy loop": ("bench_returns.py::test_gae_pgfast",
                                    "bench_returns.py::test_gae_numpy_loop"),
    "gae vs np.copy": ("bench_returns.py::test_gae_pgfast",
                       "bench_returns.py::test_gae_np_copy_floor"),
    "reward_to_go vs SB3-style NumPy loop": ("bench_returns.py::test_reward_to_go_pgfast",
                                             "bench_returns.py::test_reward_to_go_numpy_loop"),
    "reward_to_go vs np.copy": ("bench_returns.py::test_reward_to_go_pgfast",
                                "bench_returns.py::test_reward_to_go_np_copy_floor"),
    "LR gradient (weighted score sum, N=131072) vs torch autograd": (
        "bench_policies.py::test_pgfast_linear_softmax_weighted_grad",
        "bench_policies.py::test_torch_autograd_linear_softmax_weighted_grad"),
    "LR estimate from (2048, 64) trajectories vs torch autograd": (
        "bench_policies.py::test_pgfast_lr_estimate",
        "bench_policies.py::test_torch_autograd_lr_estimate"),
    "likelihood_ratio_gradient[trajectory] vs NumPy": (
        "bench_gradients.py::test_lr_pgfast[trajectory]",
        "bench_gradients.py::test_lr_numpy[trajectory]"),
    "regression_gradient[1000x16x8] vs NumPy pinv": (
        "bench_gradients.py::test_regression_pgfast[1000x16x8]",
        "bench_gradients.py::test_regression_numpy_pinv[1000x16x8]"),
    "regression_gradient[200x64x32] vs NumPy pinv": (
        "bench_gradients.py::test_regression_pgfast[200x64x32]",
        "bench_gradients.py::test_regression_numpy_pinv[200x64x32]"),
    "rollout CartPole x LinearSoftmax vs Gymnasium SyncVectorEnv": (
        "bench_rollout.py::test_cartpole_pgfast_fused",
        "bench_rollout.py::test_cartpole_gymnasium_sync_vector_env"),
    "MLPGaussian(64, 64) Fisher-vector product vs NumPy": (
        "bench_policies.py::test_pgfast_mlp_gaussian_fvp[1]",
        "bench_policies.py::test_numpy_mlp_gaussian_fvp"),
}

# References the benchmarks have no case for yet: named in every report so that
# their absence is a known gap, not a silent one.
NOT_BENCHMARKED = {
    "rollout vs EnvPool": "no EnvPool case in benchmarks/ (EnvPool not installed here)",
    "MLP training vs SB3": "no Stable-Baselines3 case in benchmarks/ (SB3 not installed here)",
}

ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                     "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                                     "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}


def case_key(fullname: str) -> str:
    """'benchmarks/bench_x.py::test_y[p]' (any folder) -> 'bench_x.py::test_y[p]'."""
    path, _, test = fullname.partition("::")
    return f"{Path(path).name}::{test}"


def ratios_of(runs: list[dict]) -> tuple[dict, dict]:
    """The speed-up of every pair both of whose cases ran (its median over the runs,
    each run's ratio from that run alone) and the reason for each pair that did not
    (a case missing: skipped, say, because its reference is not installed)."""
    per_run, missing = {}, {}
    for run in runs:
        times = {case_key(b["fullname"]): b["stats"][STAT] for b in run["benchmarks"]}
        for name, (ours, reference) in PAIRS.items():
            absent = [case for case in (ours, reference) if case not in times]
            if absent:
                missing[name] = "did not run: " + ", ".join(absent)
            else:
                per_run.setdefault(name, []).append(times[reference] / times[ours])
    ratios = {name: statistics.median(values) for name, values in per_run.items()}
    return ratios, {name: why for name, why in missing.items() if name not in ratios}


def compare(runs: list[dict], recorded: dict) -> list[str]:
    """Print the table of ratios; return the names of those that fell by more than
    THRESHOLD."""
    ratios, missing = ratios_of(runs)
    fell = []
    print(f"{'pair':64s} {'recorded':>10s} {'now':>10s} {'change':>8s}")
    for name in PAIRS:
        was = recorded["ratios"].get(name)
        now = ratios.get(name)
        if now is None:
            print(f"{name:64s} {'':>10s} {'skipped':>10s}   {missing[name]}")
            continue
        if was is None:
            print(f"{name:64s} {'-':>10s} {now:10.3g}   (not recorded)")
            continue
        change = now / was - 1.0
        flag = ""
        if change < -THRESHOLD:
            fell.append(name)
            flag = "  FELL"
        print(f"{name:64s} {was:10.3g} {now:10.3g} {change:+8.1%}{flag}")
    for name, why in {**recorded.get("not_benchmarked", {}), **NOT_BENCHMARKED}.items():
        print(f"{name:64s} {'':>10s} {'skipped':>10s}   {why}")
    return fell


def run_benchmarks(save: str | None) -> dict:
    """Run every guarded case in one pytest-benchmark run; the JSON it wrote."""
    cases = sorted({case for pair in PAIRS.values() for case in pair})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(save) if save else Path(tmp) / "run.json"
        command = ["nice", "-n", "10", sys.executable, "-m", "pytest", *cases,
                   "--benchmark-only", "--benchmark-timer=time.process_time",
                   "--benchmark-min-rounds=5", "-q", "-p", "no:cacheprovider",
                   f"--benchmark-json={out.resolve()}"]
        subprocess.run(command, cwd=HERE, env={**os.environ, **ONE_THREAD}, check=False,
                       preexec_fn=_one_cpu)
        return json.loads(out.read_text())


def _one_cpu():
    """Keep the benchmark process on one CPU. Left to move between cores, the same
    kernel ran 30-40% slower in some processes than in others on a 2-core VM (the LR
    score sum: 2.7 or 3.5-3.8 ns a row); pinned, every process ran at 2.7."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def record(runs: list[dict]) -> None:
    ratios, missing = ratios_of(runs)
    info = runs[0].get("machine_info", {})
    GUARD_FILE.write_text(json.dumps({
        "about": "speed-ups (reference CPU time / pgfast CPU time, the median round of "
                 "each, same run; the median over the runs) checked by benchmarks/guard.py; "
                 "a fall of more than 15 % is named",
        "stat": STAT,
        "runs": len(runs),
        "machine": f"{info.get('cpu', {}).get('brand_raw', platform.processor())}, "
                   f"{info.get('python_implementation', '')} {info.get('python_version', '')}",
        "commit": runs[0].get("commit_info", {}).get("id"),
        "date": runs[0].get("datetime"),
        "ratios": {name: round(value, 4) for name, value in ratios.items()},
        "not_recorded": missing,
        "not_benchmarked": NOT_BENCHMARKED,
    }, indent=2, ensure_ascii=False) + "\n")
    print(f"recorded {len(ratios)} ratios in {GUARD_FILE}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the guarded benchmarks and compare")
    run.add_argument("--runs", type=int, default=1, help="repeat the run; best ratio per pair")
    run.add_argument("--save", help="keep each run's JSON as SAVE-1.json, SAVE-2.json, ...")
    run.add_argument("--record", action="store_true", help="write guard.json from the runs")
    for name in ("compare", "record"):
        sub.add_parser(name).add_argument("json", type=Path, nargs="+",
                                          help="pytest-benchmark JSON files (runs)")
    args = parser.parse_args(argv)
    if args.command == "run":
        runs = [run_benchmarks(f"{args.save}-{k + 1}.json" if args.save else None)
                for k in range(args.runs)]
    else:
        runs = [json.loads(path.read_text()) for path in args.json]
    if args.command == "record" or (args.command == "run" and args.record):
        record(runs)
        return 0
    fell = compare(runs, json.loads(GUARD_FILE.read_text()))
    if fell:
        print("\nfell by more than 15 %: " + "; ".join(fell))
        return 1
    print("\nno ratio fell by more than 15 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
