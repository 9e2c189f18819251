"""pgfast.distributed: rollouts on Ray actors equal the local ones, bit for bit.

One Ray session for the whole module (2 CPUs, as CI has); actors reserve no CPU
so that 3 workers fit. The user-kernel case builds examples/custom_env once.
"""
import importlib
import os
import signal
import sys
import threading
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import pgfast

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install "pgfast[ray]"')
from pgfast.distributed import RayVecEnv, connect  # noqa: E402
from pgfast.rollout import RolloutBackend, slot_generators, slot_states  # noqa: E402

# This file's env classes travel to the actors by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_env"
CPU = 0   # actors reserve no CPU: as many as the tests need fit in the 2-CPU session
FIELDS = ("observations", "actions", "rewards", "terminated", "truncated", "log_probs",
          "last_observations", "final_observations")


@pytest.fixture(scope="module")
def point_mass_dir(tmp_path_factory):
    """The folder holding the built PointMass module, or None without a compiler."""
    spec = importlib.util.spec_from_file_location("custom_env_build", EXAMPLE / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    try:
        build.find_compiler()
    except build.BuildError:
        return None
    out = tmp_path_factory.mktemp("point_mass")
    build.build(out)
    return out


@pytest.fixture(scope="module", autouse=True)
def ray_session(point_mass_dir, tmp_path_factory):
    # Workers import the user's module by name, as on a real cluster where the
    # user's package is installed on every node. Ray puts the driver's working
    # folder first on the workers' path: start it away from the source tree, so
    # they import the installed pgfast (with its compiled kernels).
    env_vars = {"PYTHONPATH": str(point_mass_dir)} if point_mass_dir else {}
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("ray"))
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": env_vars})
    finally:
        os.chdir(cwd)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def point_mass(point_mass_dir):
    if point_mass_dir is None:
        pytest.skip("no C compiler to build examples/custom_env")
    sys.path.insert(0, str(point_mass_dir))
    try:
        yield importlib.import_module("point_mass")
    finally:
        sys.path.remove(str(point_mass_dir))


def assert_same(a, b):
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if x is None or y is None:
            assert x is None and y is None, name
        else:
            assert x.dtype == y.dtype and x.shape == y.shape, name
            np.testing.assert_array_equal(x, y, err_msg=name)


@pytest.fixture(scope="module")
def cartpole():
    """CartPole with 8 slots on 1, 2 and 3 workers (shared by the tests below)."""
    envs = {w: RayVecEnv("CartPole-v1", 8, workers=w, cpus_per_worker=CPU) for w in (1, 2, 3)}
    yield envs
    for env in envs.values():
        env.close()


def test_native_rollout_equals_local_for_1_2_3_workers(cartpole):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    local = pgfast.rollout(pgfast.make_vec("CartPole-v1", 8), policy, theta, 120, rng)
    assert local.episode_returns.size > 8   # episodes ended and restarted
    for workers, env in cartpole.items():
        assert [hi - lo for lo, hi in env.blocks] == {1: [8], 2: [4, 4], 3: [3, 2, 3]}[workers]
        caller = np.random.default_rng(1)
        assert_same(pgfast.rollout(env, policy, theta, 120, caller), local)
        # The caller's generator advanced exactly as the local call advanced it.
        assert caller.bit_generator.state == rng.bit_generator.state


def test_resized_env_runs_on_the_same_actors(cartpole):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(20))
    env = cartpole[3]
    for n in (2, 5, 13):
        smaller = env.resized(n)
        assert smaller.placement is env.placement and smaller.num_envs == n
        local = pgfast.rollout(pgfast.make_vec("CartPole-v1", n), policy, theta, 50,
                               np.random.default_rng(n))
        assert_same(pgfast.rollout(smaller, policy, theta, 50, np.random.default_rng(n)), local)


def test_large_theta_goes_through_the_object_store(cartpole):
    policy = pgfast.MLPSoftmax(4, 2, hidden=(128, 64))
    theta = policy.init(np.random.default_rng(21))
    assert theta.nbytes > pgfast.distributed.INLINE_BYTES
    local = pgfast.rollout(pgfast.make_vec("CartPole-v1", 8), policy, theta, 40,
                           np.random.default_rng(22))
    assert_same(pgfast.rollout(cartpole[2], policy, theta, 40, np.random.default_rng(22)),
                local)


def test_multi_theta_first_episode_and_deterministic():
    policy = pgfast.LinearGaussian(3, 1)
    rng = np.random.default_rng(2)
    thetas = 0.3 * rng.standard_normal((5, policy.n_params))
    local_env = pgfast.make_vec("Pendulum-v1", 5)
    env = RayVecEnv("Pendulum-v1", 5, workers=2, cpus_per_worker=CPU)
    for options in (dict(first_episode=True, time_limit=40), dict(deterministic=True),
                    dict(time_limit=30, num_threads=2)):
        a = pgfast.rollout(local_env, policy, thetas, 50, np.random.default_rng(3), **options)
        b = pgfast.rollout(env, policy, thetas, 50, np.random.default_rng(3), **options)
        assert_same(a, b)
    env.close()


def test_given_generators_end_where_local_leaves_them(cartpole):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = np.zeros(policy.n_params)
    local = [np.random.default_rng(s) for s in range(8)]
    remote = [np.random.default_rng(s) for s in range(8)]
    a = pgfast.rollout(pgfast.make_vec("CartPole-v1", 8), policy, theta, 60, local)
    b = pgfast.rollout(cartpole[2], policy, theta, 60, remote)
    assert_same(a, b)
    assert [g.bit_generator.state for g in remote] == [g.bit_generator.state for g in local]


@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
def test_gymnasium_id_rolls_out_each_slot_as_one_local_env():
    # CartPole-v0 is Gymnasium's own (Python) env: one Env per slot, slot b exactly
    # pgfast.rollout(Env, policy, θ, T, generator_b).
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(4))
    generators = slot_generators(slot_states(np.random.default_rng(5), 3))
    parts = [pgfast.rollout(gym.make("CartPole-v0"), policy, theta, 40, g) for g in generators]
    env = RayVecEnv("CartPole-v0", 3, workers=2, cpus_per_worker=CPU)
    assert env.max_episode_steps == 200
    ro = pgfast.rollout(env, policy, theta, 40, np.random.default_rng(5))
    local = pgfast.distributed._concatenate(parts)
    assert_same(ro, local)
    env.close()


def test_user_compiled_kernel_from_its_class(point_mass):
    policy = pgfast.LinearGaussian(2, 1)
    theta = np.array([-1.0, -1.5, 0.0, np.log(0.5)])
    local = pgfast.rollout(point_mass.PointMass(6), policy, theta, 250,
                           np.random.default_rng(6))
    env = RayVecEnv(point_mass.PointMass, 6, workers=2, cpus_per_worker=CPU)
    assert env.max_episode_steps == 200
    assert_same(pgfast.rollout(env, policy, theta, 250, np.random.default_rng(6)), local)
    env.close()


def test_gradients_and_training_equal_local(cartpole):
    # The same Problem over a local 8-slot env and over the actors' 8 slots.
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(7))
    local = pgfast.Problem(pgfast.make_vec("CartPole-v1", 8), gamma=0.99)
    for workers in (2, 3):
        remote = pgfast.Problem(cartpole[workers], gamma=0.99)
        assert remote.horizon == local.horizon == 500
        for make in (lambda p: pgfast.RewardToGoGradient(p, policy, m=8),
                     lambda p: pgfast.FiniteDifferenceGradient(p, policy, m=1)):
            g_local = make(local).gradient(theta, np.random.default_rng(8))
            g_remote = make(remote).gradient(theta, np.random.default_rng(8))
            np.testing.assert_array_equal(g_local, g_remote)
            assert np.abs(g_local).sum() > 0

    def run(problem):
        update = pgfast.NaturalPolicyUpdate(problem, policy, m=8)
        return pgfast.train(update, theta, iterations=2, rng=np.random.default_rng(9),
                            progress=False)

    (theta_local, hist_local), (theta_remote, hist_remote) = run(local), run(remote)
    assert not np.array_equal(theta_local, theta)
    np.testing.assert_array_equal(theta_local, theta_remote)
    np.testing.assert_array_equal(hist_local["mean_return"], hist_remote["mean_return"])


@pytest.mark.filterwarnings("ignore:.*CartPole-v0 is out of date")
def test_problem_of_a_gymnasium_id_is_the_same_on_workers():
    # Gymnasium's own CartPole-v0: a local SyncVectorEnv, or one Env per slot in actors.
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(12))
    local = pgfast.Problem("CartPole-v0", gamma=0.99)
    remote = pgfast.Problem("CartPole-v0", gamma=0.99, workers=2)
    grads = [pgfast.RewardToGoGradient(p, policy, m=6).gradient(theta, np.random.default_rng(13))
             for p in (local, remote)]
    np.testing.assert_array_equal(grads[0], grads[1])
    assert np.abs(grads[0]).sum() > 0


def test_killed_actor_is_replaced_with_the_same_result(cartpole):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(10))
    env = cartpole[2]
    before = pgfast.rollout(env, policy, theta, 80, np.random.default_rng(11))
    ray.kill(env._pool.actors[1])
    after = pgfast.rollout(env, policy, theta, 80, np.random.default_rng(11))
    assert_same(before, after)


class DiesOnce(gym.Wrapper):
    """Gymnasium CartPole whose process exits at the 10th step of an episode
    unless a marker file exists (it creates it first): an actor dying mid-rollout."""

    def __init__(self, marker):
        super().__init__(gym.make("CartPole-v1"))
        self.marker, self.steps = marker, 0

    def reset(self, **kwargs):
        self.steps = 0
        return super().reset(**kwargs)

    def step(self, action):
        self.steps += 1
        if self.steps == 10 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        return super().step(action)


class DyingFactory:
    def __init__(self, marker):
        self.marker = marker

    def __call__(self, n):
        return [DiesOnce(self.marker) for _ in range(n)]


def test_actor_dying_mid_rollout_reruns_its_block(tmp_path):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(12))
    marker = tmp_path / "died"
    open(marker, "w").close()   # the driver's probe env must not die
    env = RayVecEnv(DyingFactory(str(marker)), 4, workers=2, cpus_per_worker=CPU)
    reference = pgfast.rollout(env, policy, theta, 30, np.random.default_rng(13))
    marker.unlink()
    pids = {pid for pid, _ in env.placement}
    ro = pgfast.rollout(env, policy, theta, 30, np.random.default_rng(13))
    assert marker.exists()   # an actor did die ...
    assert {pid for pid, _ in env.placement} != pids
    assert_same(ro, reference)   # ... and its block gave the same numbers on a new one
    env.close()


class SlowCartPole(gym.Wrapper):
    def __init__(self):
        super().__init__(gym.make("CartPole-v0"))

    def step(self, action):
        time.sleep(0.01)
        return super().step(action)


def slow_factory(n):
    return [SlowCartPole() for _ in range(n)]


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt during the test, whatever its disposition when
    the run started: a shell starts a background job (``cmd &``) with SIGINT ignored,
    and a Ctrl-C sent by the test would then never arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# After the Ctrl-C, train must stop within its current iteration; beyond this the
# test fails (a lost signal would otherwise let 1000 iterations run for half an hour).
STOP_WITHIN = 30.0


def test_interrupt_stops_the_actors_and_leaves_the_checkpoint_loadable(tmp_path, sigint_raises):
    policy = pgfast.LinearSoftmax(4, 2)
    theta = np.zeros(policy.n_params)
    env = RayVecEnv(slow_factory, 2, workers=2, cpus_per_worker=CPU)
    actors = list(env._pool.actors)
    update = pgfast.NaturalPolicyUpdate(pgfast.Problem(env), policy, m=2)
    thetas = [theta]   # after each finished iteration
    deadline = time.monotonic() + 1.0 + STOP_WITHIN

    def record(i, th, info):
        thetas.append(th.copy())
        if time.monotonic() > deadline:
            raise AssertionError(f"train ran on {STOP_WITHIN:g} s after SIGINT "
                                 f"(iteration {i}): the interrupt was lost")

    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))   # Ctrl-C
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        pgfast.train(update, theta, iterations=1000, rng=np.random.default_rng(14),
                     progress=False, checkpoint_dir=tmp_path, callback=record)
    timer.join()
    for actor in actors:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.ready.remote(0), timeout=30)
    saved_theta, saved = pgfast.load_checkpoint(tmp_path, update=update)
    assert len(saved["history"]["iteration"]) == len(thetas) - 1 < 1000
    np.testing.assert_array_equal(saved_theta, thetas[-1])
    # The next call starts new actors.
    a = pgfast.rollout(env, policy, theta, 5, np.random.default_rng(15))
    b = pgfast.rollout(env, policy, theta, 5, np.random.default_rng(15))
    assert_same(a, b)
    env.close()
    with pytest.raises(ValueError, match="closed"):
        pgfast.rollout(env, policy, theta, 5, np.random.default_rng())


def test_unreachable_address_fails_fast():
    # 192.0.2.0/24 is reserved for documentation: nothing answers there.
    with pytest.raises(ConnectionError, match="no Ray cluster answers"):
        connect("192.0.2.1:6379", timeout=0.5)
    with pytest.raises(ConnectionError, match="no Ray cluster answers"):
        RayVecEnv("CartPole-v1", 2, address="ray://192.0.2.1:10001", timeout=0.5)


def test_bad_arguments(cartpole):
    policy = pgfast.LinearSoftmax(4, 2)
    with pytest.raises(TypeError, match="env"):
        RayVecEnv(42, 2)
    with pytest.raises(TypeError, match="env: factory"):
        RayVecEnv(lambda n: "not an env", 2)
    with pytest.raises(ValueError, match="num_envs"):
        RayVecEnv("CartPole-v1", 0)
    with pytest.raises(ValueError, match="cpus_per_worker"):
        RayVecEnv("CartPole-v1", 2, cpus_per_worker=-1)
    with pytest.raises(ValueError, match="factory"):
        RayVecEnv(slow_factory, 2, max_episode_steps=5)
    with pytest.raises(TimeoutError, match="workers"):   # asks for more CPUs than exist
        RayVecEnv("CartPole-v1", 2, cpus_per_worker=3, timeout=1)
    env = cartpole[2]
    with pytest.raises(ValueError, match="theta"):
        pgfast.rollout(env, policy, np.zeros((2, policy.n_params)), 5, np.random.default_rng())
    with pytest.raises(ValueError, match="policy"):
        pgfast.rollout(env, pgfast.LinearSoftmax(3, 2), np.zeros(8), 5, np.random.default_rng())
    with pytest.raises(TypeError, match="rng"):
        pgfast.rollout(env, policy, np.zeros(policy.n_params), 5, [np.random.default_rng()])
    # A rollout back-end, not a VectorEnv: it offers no step at a time.
    assert isinstance(env, RolloutBackend)
    assert not hasattr(env, "step") and not isinstance(env, gym.vector.VectorEnv)


def test_problem_with_workers_equals_local():
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(16))
    local = pgfast.Problem("CartPole-v1")
    remote = pgfast.Problem("CartPole-v1", workers=2)
    estimators = [lambda p: pgfast.GAEGradient(p, policy, m=16, value_fn=pgfast.LinearValue(4)),
                  lambda p: pgfast.FiniteDifferenceGradient(p, policy, m=2,
                                                            common_random_numbers=True)]
    for make in estimators:
        np.testing.assert_array_equal(make(local).gradient(theta, np.random.default_rng(17)),
                                      make(remote).gradient(theta, np.random.default_rng(17)))
