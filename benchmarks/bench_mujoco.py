"""Hopper-v5 rollouts with an MLP(64, 64) Gaussian policy: pgfast's fused loop
(native MuJoCo kernel) next to Gymnasium's SyncVectorEnv and EnvPool, each driven
by the same NumPy policy, at the same number of envs and steps.

    OPENBLAS_NUM_THREADS=1 pytest benchmarks/bench_mujoco.py --benchmark-only

Run as a script, it times whole training runs against the physics floor, per env:

    python benchmarks/bench_mujoco.py [--envs Hopper-v5 ...] [--steps 1000000]

the floor (MuJoCo's ``mj_step`` for as many env steps, frame skip included, timed on
``--floor-steps`` and scaled), then ``pgfast train ENV --no-stop --steps N`` (evaluations,
final evaluation and files included, ``--no-video``) on 1 thread, on 2 threads, and two
1-thread runs side by side: what the machine gives two independent processes, which
bounds what 2 threads can give one. Wall seconds, each also per 1M steps and as a
multiple of the floor.

steps/s = T·B / time (extra_info); the ratio column of the group is the speed-up.
EnvPool runs only where it is installed (``pip install envpool``). The physics floor
is MuJoCo alone (B x T x frame_skip ``mj_step`` calls through its Python bindings, no
policy, no rewards): no Hopper rollout can beat it, whoever drives the loop.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import gymnasium as gym
import numpy as np
import pytest

import pgfast
import pgfast._rollout
from pgfast import mujoco as pm

pytestmark = pytest.mark.skipif(not pm.available(),
                                reason=f"MuJoCo envs unavailable ({pm.INSTALL_HINT})")

B = 64
T = 200
GROUP = f"rollout Hopper-v5 x MLPGaussian(64, 64), B={B}, T={T}"


def _policy():
    policy = pgfast.MLPGaussian(11, 3, hidden=(64, 64))
    return policy, policy.init(np.random.default_rng(0))


def numpy_gaussian_mlp_rollout(env, params, T, rng, dtype=np.float32):
    """What a NumPy user writes: a batched tanh-MLP Gaussian policy over a vector env."""
    obs, _ = env.reset(seed=0)
    rewards = np.empty((T, env.num_envs))
    for t in range(T):
        h = np.tanh(obs @ params["W0"] + params["b0"])
        h = np.tanh(h @ params["W1"] + params["b1"])
        mean = h @ params["W2"] + params["b2"]
        actions = mean + np.exp(params["log_std"]) * rng.standard_normal(mean.shape)
        obs, rewards[t], _, _, _ = env.step(actions.astype(dtype))
    return rewards


def _record(benchmark):
    benchmark.extra_info["steps_per_second"] = T * B / benchmark.stats.stats.median


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("num_threads", [1, 2])
def test_hopper_pgfast_fused(benchmark, num_threads):
    policy, theta = _policy()
    env = pgfast.make_vec("Hopper-v5", num_envs=B)
    rngs = np.random.default_rng(0).spawn(B)
    ro = benchmark.pedantic(pgfast.rollout, args=(env, policy, theta, T, rngs),
                            kwargs={"num_threads": num_threads}, rounds=5, iterations=1)
    _record(benchmark)
    assert ro.rewards.shape == (T, B) and np.isfinite(ro.rewards).all()


@pytest.mark.benchmark(group=GROUP)
def test_hopper_checks_only(benchmark, monkeypatch):
    """The fused loop stubbed out: the call's checks and allocations alone."""
    def no_rollout(*args):   # finite rewards and log-probabilities, as the checks read them
        args[7].fill(0.0)
        args[10].fill(0.0)

    policy, theta = _policy()
    env = pgfast.make_vec("Hopper-v5", num_envs=B)
    rngs = np.random.default_rng(0).spawn(B)
    monkeypatch.setattr(pgfast._rollout, "rollout", no_rollout)
    benchmark(pgfast.rollout, env, policy, theta, T, rngs)


@pytest.mark.benchmark(group=GROUP)
def test_hopper_gymnasium_sync_vector_env(benchmark):
    pytest.importorskip("mujoco", reason="Gymnasium's Hopper-v5 needs mujoco")
    policy, theta = _policy()
    env = gym.make_vec("Hopper-v5", num_envs=B, vectorization_mode="sync")
    benchmark.pedantic(numpy_gaussian_mlp_rollout,
                       args=(env, policy.unpack(theta), T, np.random.default_rng(0)),
                       rounds=2, iterations=1)
    _record(benchmark)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("num_threads", [1, 2])
def test_hopper_envpool(benchmark, num_threads):
    envpool = pytest.importorskip("envpool", reason="EnvPool is not installed")
    policy, theta = _policy()
    env = envpool.make("Hopper-v5", env_type="gymnasium", num_envs=B, batch_size=B,
                       num_threads=num_threads, seed=0)
    benchmark.pedantic(numpy_gaussian_mlp_rollout,
                       args=(env, policy.unpack(theta), T, np.random.default_rng(0), np.float64),
                       rounds=5, iterations=1)
    _record(benchmark)


@pytest.mark.benchmark(group=GROUP)
def test_hopper_mujoco_physics_floor(benchmark):
    mujoco = pytest.importorskip("mujoco", reason="the physics floor calls mujoco directly")
    kernel = pm.kernel_class("Hopper-v5")(1)
    model = mujoco.MjModel.from_xml_path(kernel.xml_file)
    data = [mujoco.MjData(model) for _ in range(B)]

    def reset():
        for d in data:
            mujoco.mj_resetData(model, d)

    def physics():
        for d in data:
            mujoco.mj_step(model, d, nstep=T * kernel.frame_skip)

    benchmark.pedantic(physics, setup=reset, rounds=5, iterations=1)
    _record(benchmark)


# ---------------------------------------------------------------------------
# Script mode: training wall time against the physics floor
# ---------------------------------------------------------------------------

def physics_floor(env, steps, slots=B):
    """Seconds MuJoCo alone takes for `steps` env steps (`slots` states stepped through
    its Python bindings, frame_skip mj_step calls an env step; no policy, no rewards)."""
    import mujoco

    kernel = pm.kernel_class(env)(1)
    model = mujoco.MjModel.from_xml_path(kernel.xml_file)
    data = [mujoco.MjData(model) for _ in range(slots)]
    per_slot = max(1, steps // slots)
    clock = time.perf_counter()
    for d in data:
        mujoco.mj_step(model, d, nstep=per_slot * kernel.frame_skip)
    return (time.perf_counter() - clock) * steps / (per_slot * slots)


def train_command(env, steps, threads, out):
    return [sys.executable, "-m", "pgfast", "train", env, "--steps", str(steps), "--no-stop",
            "--threads", str(threads), "--out", out, "--no-video", "--quiet"]


def timed_runs(commands):
    """Wall seconds of each command, all started together."""
    clock = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                                   "OMP_NUM_THREADS": "1"}) for c in commands]
    times = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise RuntimeError(f"{' '.join(p.args)} failed:\n{err.decode()}")
        times.append(time.perf_counter() - clock)
    return times


def main():
    parser = argparse.ArgumentParser(description="MuJoCo training time against the physics "
                                                 "floor")
    parser.add_argument("--envs", nargs="*", default=list(pm.ENV_NAMES))
    parser.add_argument("--steps", type=int, default=1_000_000, help="training steps a run")
    parser.add_argument("--floor-steps", type=int, default=100_000,
                        help="env steps the floor is timed on (scaled to --steps)")
    args = parser.parse_args()
    per_m = 1e6 / args.steps
    print(f"| env | floor s / 1M | 1 thread s / 1M (× floor) | 2 threads s / 1M (× floor) | "
          f"speed-up | two 1-thread runs side by side, s / 1M | 2 threads / side by side |\n"
          "|---|---|---|---|---|---|---|", flush=True)
    for env in args.envs:
        floor = physics_floor(env, args.floor_steps) * 1e6 / args.floor_steps
        with tempfile.TemporaryDirectory() as tmp:
            (one,) = timed_runs([train_command(env, args.steps, 1, f"{tmp}/a")])
            (two,) = timed_runs([train_command(env, args.steps, 2, f"{tmp}/b")])
            pair = timed_runs([train_command(env, args.steps, 1, f"{tmp}/{k}")
                               for k in ("c", "d")])
        one, two, side = one * per_m, two * per_m, max(pair) * per_m
        # Side by side, two runs do 2x the work in `side` seconds: a speed-up of 2*one/side.
        print(f"| {env} | {floor:.1f} | {one:.1f} ({one / floor:.2f}×) | {two:.1f} "
              f"({two / floor:.2f}×) | {one / two:.2f}× | {side:.1f} | "
              f"{(one / two) / (2 * one / side):.0%} |", flush=True)


if __name__ == "__main__":
    main()
