"""The embedding example (examples/custom_env): a user's cdef class environment,
compiled in its own extension against the shipped pgfast/_envs.pxd, runs inside
pgfast's fused rollout loop.

The module is built once into a temporary folder with the example's own
build.py (Cython + the C compiler, no setuptools), then checked against a NumPy
reference of its dynamics.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import pgfast
from pgfast import _envs

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "custom_env"
DT = 0.05
TIME_LIMIT = 200


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def point_mass(tmp_path_factory):
    build = _load("custom_env_build", EXAMPLE / "build.py")
    try:
        build.find_compiler()
    except build.BuildError as err:
        pytest.skip(str(err))  # "no C compiler found (tried ...)"
    path = build.build(tmp_path_factory.mktemp("custom_env"))
    return _load("point_mass", path)


def reference_step(obs, action):
    """NumPy PointMass: (next observation, reward, terminated) of every row."""
    x, v = obs[..., 0], obs[..., 1]
    force = np.clip(action[..., 0], -1.0, 1.0)
    reward = -(x * x + 0.1 * v * v)
    v_next = v + DT * force
    x_next = x + DT * v_next
    return np.stack([x_next, v_next], axis=-1), reward, np.abs(x_next) > 2.0


def expected_truncated(terminated):
    """Truncation at TIME_LIMIT steps into an episode that did not terminate."""
    trunc = np.zeros_like(terminated)
    elapsed = np.zeros(terminated.shape[1], np.int64)
    for t in range(terminated.shape[0]):
        elapsed += 1
        trunc[t] = ~terminated[t] & (elapsed >= TIME_LIMIT)
        elapsed[terminated[t] | trunc[t]] = 0
    return trunc


def test_interface_files_ship_with_the_package():
    include = Path(pgfast.get_include())
    assert (include / "pgfast" / "_envs.pxd").is_file()
    assert (include / "pgfast" / "_policies.pxd").is_file()


def test_user_kernel_subclasses_the_interface(point_mass):
    env = point_mass.PointMass(num_envs=8, seed=0)
    assert issubclass(point_mass.PointMass, _envs.VecEnvKernel)
    assert point_mass.PointMass.__module__ == "point_mass"
    assert (env.num_envs, env.obs_dim, env.act_dim, env.n_actions) == (8, 2, 1, 0)
    assert env.max_episode_steps == TIME_LIMIT


def test_rollout_shapes_and_determinism(point_mass):
    env = point_mass.PointMass(num_envs=64, seed=0)
    policy = pgfast.LinearGaussian(2, 1)
    theta = np.array([-1.0, -1.5, 0.0, np.log(0.5)])
    a = pgfast.rollout(env, policy, theta, 150, np.random.default_rng(7))
    b = pgfast.rollout(env, policy, theta, 150, np.random.default_rng(7))
    c = pgfast.rollout(env, policy, theta, 150, np.random.default_rng(8))
    assert a.observations.shape == (150, 64, 2)
    assert a.actions.shape == (150, 64, 1)
    for name in ("rewards", "terminated", "truncated", "log_probs"):
        assert getattr(a, name).shape == (150, 64), name
    assert a.last_observations.shape == (64, 2)
    for name in ("observations", "actions", "rewards", "terminated", "truncated",
                 "log_probs", "last_observations"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.array_equal(a.observations, c.observations)


def test_transitions_follow_the_dynamics(point_mass):
    env = point_mass.PointMass(num_envs=32, seed=0)
    policy = pgfast.LinearGaussian(2, 1)
    # Zero mean and σ = 1: clipped forces, some episodes leave |x| ≤ 2, others
    # reach the time limit.
    r = pgfast.rollout(env, policy, np.zeros(policy.n_params), 450, np.random.default_rng(1))
    nxt, reward, term = reference_step(r.observations, r.actions)
    np.testing.assert_allclose(r.next_observations(), nxt, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(r.rewards, reward, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(r.terminated, term)
    np.testing.assert_array_equal(r.truncated, expected_truncated(r.terminated))
    assert r.terminated.any() and r.truncated.any() and (np.abs(r.actions) > 1).any()
    # Every episode starts from U(-0.5, 0.5)²; no terminal state is ever acted in.
    starts = np.concatenate([r.observations[0], r.observations[1:][r.done[:-1]]])
    assert starts.shape[0] == 32 + r.done[:-1].sum()
    assert (np.abs(starts) <= 0.5).all() and np.unique(starts[:, 0]).size == starts.shape[0]
    assert (np.abs(r.observations[..., 0]) <= 2.0).all()


def test_terminations_where_the_mass_leaves(point_mass):
    env = point_mass.PointMass(num_envs=16, seed=0)
    policy = pgfast.LinearGaussian(2, 1)
    push_right = np.array([0.0, 0.0, 1.0, np.log(0.1)])
    r = pgfast.rollout(env, policy, push_right, 300, np.random.default_rng(2))
    assert r.terminated.sum() >= 16 and not r.truncated.any()
    assert (r.final_observations[:, 0] > 2.0).all()
    assert np.isfinite(r.episode_returns).all() and (r.episode_returns < 0).all()


def test_invalid_actions_raise(point_mass):
    env = point_mass.PointMass(num_envs=4, seed=0)
    policy = pgfast.LinearGaussian(2, 1)
    # Finite θ, but σ = exp(800) overflows: the sampled forces are not finite.
    exploding = np.array([0.0, 0.0, 0.0, 800.0])
    with pytest.raises(ValueError, match="theta: the policy produced an invalid action"):
        pgfast.rollout(env, policy, exploding, 10, np.random.default_rng(0))
    # step_one itself: -1 on NaN, the state left as it was.
    rng = np.random.default_rng(3)
    start = env.reset_slot(0, rng)
    _, _, code = env.step_slot(0, np.array([np.nan]), rng)
    assert code == -1
    obs, reward, code = env.step_slot(0, np.array([0.3]), rng)
    expected, expected_reward, _ = reference_step(start, np.array([0.3]))
    assert code == 0
    np.testing.assert_allclose(obs, expected, rtol=1e-12)
    assert reward == pytest.approx(expected_reward, rel=1e-12)


def test_long_native_rollout_is_thread_count_independent(point_mass):
    # 64 x 2000 steps: cheap only because every step stays in C.
    env = point_mass.PointMass(num_envs=64, seed=0)
    policy = pgfast.LinearGaussian(2, 1)
    theta = np.array([-1.0, -1.5, 0.0, np.log(0.2)])
    one = pgfast.rollout(env, policy, theta, 2000, np.random.default_rng(4))
    two = pgfast.rollout(env, policy, theta, 2000, np.random.default_rng(4), num_threads=2)
    assert one.rewards.shape == (2000, 64)
    assert np.isfinite(one.observations).all() and (one.rewards <= 0).all()
    np.testing.assert_array_equal(one.observations, two.observations)
    np.testing.assert_array_equal(one.rewards, two.rewards)
