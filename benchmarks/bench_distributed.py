"""Rollouts on Ray actors (pgfast.distributed) next to the same rollout in one process.

    pytest benchmarks/bench_distributed.py --benchmark-only

Throughput: BusyMass (benchmarks/busy_mass.pyx, a user-style embedded env whose
step costs about 50 µs, built like examples/custom_env) rolled out locally, on
one actor and on two; steps/s = T·B / time (extra_info), and the ratio column
of the group is the speed-up. The same rollout with two OpenMP threads in one
process is the single-machine reference.

Overhead: a small CartPole rollout (B=2, T=10) locally and on one and two
actors: the distributed path's fixed cost per call (θ to the object store, one
task per actor, arrays back and concatenated).

Needs Ray (pip install "pgfast[ray]") and a C compiler; a 2-CPU local session.
"""
import functools
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import pgfast

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "pgfast[ray]"')
from pgfast.distributed import RayVecEnv  # noqa: E402

HERE = Path(__file__).resolve().parent
SUBSTEPS = 3000   # about 50 µs per step on an idle core of the 2-core CI machine
B, T = 16, 200
SMALL_B, SMALL_T = 2, 10


@pytest.fixture(scope="module")
def busy_mass(tmp_path_factory):
    spec = importlib.util.spec_from_file_location(
        "custom_env_build", HERE.parent / "examples" / "custom_env" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    try:
        build.find_compiler()
    except build.BuildError as err:
        pytest.skip(str(err))
    out = tmp_path_factory.mktemp("busy_mass")
    build.build(out, HERE / "busy_mass.pyx")
    sys.path.insert(0, str(out))
    module = __import__("busy_mass")
    # Workers import it by name (PYTHONPATH); Ray starts them in the driver's
    # working folder, which must not be the source tree (no compiled kernels).
    cwd = os.getcwd()
    os.chdir(out)
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": str(out)}})
    finally:
        os.chdir(cwd)
    yield module
    ray.shutdown()
    sys.path.remove(str(out))


POLICY = pgfast.LinearGaussian(2, 1)
THETA = np.array([-1.0, -1.5, 0.0, np.log(0.3)])


def _run(benchmark, env, n_slots, n_steps, rounds, **options):
    benchmark.pedantic(pgfast.rollout, args=(env, POLICY, THETA, n_steps,
                                                  np.random.default_rng(0)),
                            kwargs=options, rounds=rounds, iterations=1, warmup_rounds=1)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info["steps_per_second"] = n_slots * n_steps / seconds
    benchmark.extra_info["us_per_step"] = seconds / (n_slots * n_steps) * 1e6


@pytest.mark.benchmark(group=f"distributed throughput BusyMass({SUBSTEPS}), B={B}, T={T}")
@pytest.mark.parametrize("threads", [1, 2])
def test_busy_local(benchmark, busy_mass, threads):
    env = busy_mass.BusyMass(B, substeps=SUBSTEPS)
    _run(benchmark, env, B, T, 5, num_threads=threads)


@pytest.mark.benchmark(group=f"distributed throughput BusyMass({SUBSTEPS}), B={B}, T={T}")
@pytest.mark.parametrize("workers", [1, 2])
def test_busy_ray(benchmark, busy_mass, workers):
    env = RayVecEnv(functools.partial(busy_mass.BusyMass, substeps=SUBSTEPS), B,
                    workers=workers)
    _run(benchmark, env, B, T, 5)
    remote, local = (pgfast.rollout(e, POLICY, THETA, T, np.random.default_rng(1))
                     for e in (env, busy_mass.BusyMass(B, substeps=SUBSTEPS)))
    np.testing.assert_array_equal(remote.observations, local.observations)
    env.close()


@pytest.mark.benchmark(group=f"distributed overhead CartPole-v1, B={SMALL_B}, T={SMALL_T}")
def test_small_local(benchmark, busy_mass):
    policy = pgfast.LinearSoftmax(4, 2)
    env = pgfast.make_vec("CartPole-v1", SMALL_B)
    benchmark(pgfast.rollout, env, policy, np.zeros(policy.n_params), SMALL_T,
              np.random.default_rng(0))


@pytest.mark.benchmark(group=f"distributed overhead CartPole-v1, B={SMALL_B}, T={SMALL_T}")
@pytest.mark.parametrize("workers", [1, 2])
def test_small_ray(benchmark, busy_mass, workers):
    policy = pgfast.LinearSoftmax(4, 2)
    env = RayVecEnv("CartPole-v1", SMALL_B, workers=workers)
    benchmark.pedantic(pgfast.rollout, args=(env, policy, np.zeros(policy.n_params), SMALL_T,
                                             np.random.default_rng(0)),
                       rounds=50, iterations=1, warmup_rounds=2)
    env.close()
