"""Native environments against Gymnasium's own classic-control implementations.

The reference for every classic env is Gymnasium itself (same state in, same
action, compare); the simple regulator's reference is a NumPy transcription of
its definition drawing from the same Generator.
"""
import importlib.machinery
import importlib.util
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ClosedEnvironmentError, ResetNeeded
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers import TimeLimit

import pgfast
from pgfast import _envs, _rollout
from pgfast.envs import make_kernel, make_vec, native_ids

CLASSIC = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
           "Pendulum-v1"]
N_STEPS = 10_000


def gym_env(name):
    """Gymnasium's own env with its registered time limit and no other wrapper."""
    spec = gym.spec(name)
    return TimeLimit(spec.make(disable_env_checker=True).unwrapped, spec.max_episode_steps)


def random_actions(space, rng, n):
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.n, size=n)
    if not np.isfinite(space.low).all():
        return rng.normal(size=(n, *space.shape))
    # 1.5x the bounds, so the dynamics' clipping is exercised too.
    return rng.uniform(1.5 * space.low, 1.5 * space.high, size=(n, *space.shape)).astype(np.float32)


def assert_obs_close(ours, theirs):
    """Equal within float32 rounding (a few float32 ulps)."""
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    np.testing.assert_allclose(ours, theirs, rtol=5e-7, atol=1e-8)


def test_kernels_are_compiled():
    assert isinstance(_envs.__loader__, importlib.machinery.ExtensionFileLoader)


def test_native_ids_registered():
    mujoco = list(pgfast.mujoco.ENV_NAMES) if pgfast.mujoco.available() else []
    assert set(native_ids()) == {"pgfast/" + n for n in CLASSIC + ["SimpleRegulator-v0"] + mujoco}
    for env_id in native_ids():
        assert env_id in gym.registry


@pytest.mark.parametrize("name", CLASSIC)
def test_spaces_and_time_limits_match_gymnasium(name):
    ours, theirs = gym.make("pgfast/" + name), gym.make(name)
    assert ours.observation_space == theirs.observation_space
    assert ours.action_space == theirs.action_space
    assert ours.spec.max_episode_steps == theirs.spec.max_episode_steps
    vec = make_vec(name, num_envs=3)
    assert vec.single_observation_space == theirs.observation_space
    assert vec.single_action_space == theirs.action_space
    assert vec.max_episode_steps == theirs.spec.max_episode_steps
    assert vec.kernel.max_episode_steps == theirs.spec.max_episode_steps


# Boxes of states reachable (or nearly) in each env, to start episodes anywhere.
WIDE_STATES = {
    "CartPole-v1": ([-2.4, -3.0, -0.21, -3.0], [2.4, 3.0, 0.21, 3.0]),
    "Acrobot-v1": ([-np.pi, -np.pi, -4 * np.pi, -9 * np.pi], [np.pi, np.pi, 4 * np.pi, 9 * np.pi]),
    "MountainCar-v0": ([-1.2, -0.07], [0.6, 0.07]),
    "MountainCarContinuous-v0": ([-1.2, -0.07], [0.6, 0.07]),
    "Pendulum-v1": ([-3 * np.pi, -8.0], [3 * np.pi, 8.0]),
}


@pytest.mark.parametrize("name", CLASSIC)
def test_steps_agree_with_gymnasium_resynced(name):
    """≥ 10,000 random steps with resets: Gymnasium steps, we step every recorded
    (state, elapsed, action) in one batched kernel call and compare all outputs."""
    rng = np.random.default_rng(1)
    env = gym_env(name)
    env.reset(seed=2)
    acts = random_actions(env.action_space, rng, N_STEPS)
    states, elapsed, obs, rew, term, trunc = [], [], [], [], [], []
    for t, a in enumerate(acts):
        if t % 50 == 0:  # also start from anywhere in the state space (bounds, clipping)
            env.unwrapped.state = rng.uniform(*WIDE_STATES[name])
        states.append(np.array(env.unwrapped.state, dtype=np.float64))
        elapsed.append(env._elapsed_steps)
        o, r, te, tr, _ = env.step(a)
        obs.append(o), rew.append(r), term.append(te), trunc.append(tr)
        if te or tr:
            env.reset()
    assert any(term) or name == "Pendulum-v1"
    assert any(trunc) or name not in ("MountainCar-v0", "Pendulum-v1")

    k = make_kernel(name, N_STEPS)
    k.set_state(np.array(states))
    shape = (N_STEPS,) if k.n_actions else (N_STEPS, 1)
    step = _rollout.NextStepAutoreset(k, np.float32, shape, None)
    step.elapsed[:] = elapsed
    out, r, te, tr = step.step(np.asarray(acts).reshape(shape))
    assert_obs_close(out, np.array(obs))
    np.testing.assert_array_equal(r, rew)
    np.testing.assert_array_equal(te, term)
    np.testing.assert_array_equal(tr, trunc)
    el = step.elapsed
    np.testing.assert_array_equal(el, np.array(elapsed) + 1)


@pytest.mark.parametrize("name", CLASSIC)
def test_short_trajectories_agree_without_resync(name):
    rng = np.random.default_rng(3)
    env = gym_env(name).unwrapped
    single = gym.make("pgfast/" + name).unwrapped
    for episode in range(20):
        o_theirs, _ = env.reset(seed=episode)
        o_ours, _ = single.reset(seed=episode)
        np.testing.assert_array_equal(o_ours, o_theirs)
        for a in random_actions(env.action_space, rng, 40):
            o_theirs, r_theirs, te_theirs, _, _ = env.step(a)
            o_ours, r_ours, te_ours, _, _ = single.step(a)
            np.testing.assert_allclose(o_ours, o_theirs, rtol=1e-5, atol=1e-6)
            assert r_ours == r_theirs
            assert te_ours == te_theirs
            if te_theirs:
                break


@pytest.mark.parametrize("name", CLASSIC)
def test_vector_env_matches_gymnasium_sync_vector_env(name):
    """Slot i seeded with s_i follows Gymnasium's SyncVectorEnv env i seeded with s_i,
    next-step autoresets included (each slot continues its own generator)."""
    B, T = 6, 250 if name != "Acrobot-v1" else 120
    rng = np.random.default_rng(4)
    seeds = [11 * i + 5 for i in range(B)]
    theirs = SyncVectorEnv([lambda: gym_env(name) for _ in range(B)])
    ours = make_vec(name, num_envs=B)
    o_t, _ = theirs.reset(seed=seeds)
    o_o, _ = ours.reset(seed=seeds)
    np.testing.assert_array_equal(o_o, o_t)
    n_done = 0
    for a in random_actions(theirs.single_action_space, rng, T * B).reshape(T, B, -1):
        a = a[:, 0] if isinstance(theirs.single_action_space, gym.spaces.Discrete) else a
        o_t, r_t, te_t, tr_t, _ = theirs.step(a)
        o_o, r_o, te_o, tr_o, _ = ours.step(a)
        assert_obs_close(o_o, o_t)
        np.testing.assert_array_equal(r_o, r_t)
        np.testing.assert_array_equal(te_o, te_t)
        np.testing.assert_array_equal(tr_o, tr_t)
        n_done += (te_t | tr_t).sum()
    assert n_done > 0 or name in ("Acrobot-v1", "MountainCarContinuous-v0")


@pytest.mark.parametrize("name", CLASSIC)
def test_reset_equals_gymnasium_for_the_same_seed(name):
    ours, theirs = gym.make("pgfast/" + name), gym.make(name)
    for seed in range(10):
        np.testing.assert_array_equal(ours.reset(seed=seed)[0], theirs.reset(seed=seed)[0])
    options = {"x_init": 0.5, "y_init": 0.2} if name == "Pendulum-v1" else {"low": -0.3, "high": 0.2}
    np.testing.assert_array_equal(ours.reset(seed=3, options=options)[0],
                                  theirs.reset(seed=3, options=options)[0])


# (name, components drawn uniformly and their bounds, components fixed at 0)
RESET_LAWS = {
    "CartPole-v1": ([0, 1, 2, 3], -0.05, 0.05),
    "Acrobot-v1": ([0, 1, 2, 3], -0.1, 0.1),
    "MountainCar-v0": ([0], -0.6, -0.4),
    "MountainCarContinuous-v0": ([0], -0.6, -0.4),
}


@pytest.mark.parametrize("name", CLASSIC + ["SimpleRegulator-v0"])
def test_reset_distribution(name):
    n = 40_000
    k = make_kernel(name, n, seed=0)
    k.reset_all(np.empty((n, k.obs_dim)))
    s = k.get_state()
    if name == "SimpleRegulator-v0":
        laws = [(s[:, 0], None, None, 0.3, 0.01)]
    elif name == "Pendulum-v1":
        laws = [(s[:, 0], -np.pi, np.pi, 0.0, (2 * np.pi) ** 2 / 12),
                (s[:, 1], -1.0, 1.0, 0.0, 4 / 12)]
    else:
        cols, lo, hi = RESET_LAWS[name]
        laws = [(s[:, c], lo, hi, (lo + hi) / 2, (hi - lo) ** 2 / 12) for c in cols]
        np.testing.assert_array_equal(np.delete(s, cols, axis=1), 0.0)
    for x, lo, hi, mean, var in laws:
        if lo is not None:
            assert x.min() >= lo and x.max() <= hi
            assert x.min() < lo + 1e-3 * (hi - lo) and x.max() > hi - 1e-3 * (hi - lo)
        assert abs(x.mean() - mean) < 5 * np.sqrt(var / n)
        # var of the sample variance: (μ4 − σ⁴)/n ≤ 2σ⁴/n for these laws
        assert abs(x.var() - var) < 5 * np.sqrt(2 * var ** 2 / n)


def regulator_reference(s0_rng, actions):
    """s₁ ~ N(0.3, 0.1²); r_t = −s_t²; s_{t+1} = s_t + a_t + 0.1 ε_t."""
    s = s0_rng.normal(0.3, 0.1)
    states, rewards = [s], []
    for a in actions:
        rewards.append(-s * s)
        s = s0_rng.normal(s + a, 0.1)
        states.append(s)
    return np.array(states), np.array(rewards)


def test_simple_regulator_matches_its_definition():
    actions = np.random.default_rng(0).normal(size=50)
    ref_states, ref_rewards = regulator_reference(np.random.default_rng(7), actions)
    env = gym.make("pgfast/SimpleRegulator-v0").unwrapped
    obs, _ = env.reset(seed=7)
    states, rewards = [obs[0]], []
    for a in actions:
        obs, r, te, tr, _ = env.step(np.array([a]))
        assert not te and not tr
        states.append(obs[0]), rewards.append(r)
    np.testing.assert_allclose(states, ref_states, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(rewards, ref_rewards, rtol=1e-14, atol=1e-15)


def test_simple_regulator_transition_law_and_time_limit():
    B = 20_000
    vec = make_vec("SimpleRegulator-v0", num_envs=B, seed=1, max_episode_steps=3)
    assert vec.kernel.max_episode_steps == 3
    s0, _ = vec.reset()
    a = np.full((B, 1), -0.3)
    s1, r, te, tr, _ = vec.step(a)
    np.testing.assert_allclose(r, -s0[:, 0] ** 2)
    eps = (s1 - s0 - a)[:, 0] / 0.1
    assert abs(eps.mean()) < 5 / np.sqrt(B) and abs(eps.std() - 1) < 5 / np.sqrt(2 * B)
    assert not te.any() and not tr.any()
    vec.step(a)
    _, _, te, tr, _ = vec.step(a)
    assert tr.all() and not te.any()
    assert make_vec("SimpleRegulator-v0").max_episode_steps is None


@pytest.mark.parametrize("env_id", native_ids())
def test_check_env_passes(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium's advice about infinite bounds
        # The MuJoCo envs' rendering is checked in tests/test_mujoco.py: check_env's
        # would open a window in "human" mode, which needs a display.
        check_env(gym.make(env_id).unwrapped,
                  skip_render_check=env_id.removeprefix("pgfast/") in pgfast.mujoco.ENV_NAMES)


def test_gymnasium_make_applies_the_time_limit():
    env = gym.make("pgfast/Pendulum-v1")
    env.reset(seed=0)
    for t in range(200):
        _, _, te, tr, _ = env.step(np.zeros(1, np.float32))
        assert not te and tr == (t == 199)


def test_vector_env_contract():
    B = 5
    vec = make_vec("pgfast/Pendulum-v1", num_envs=B, seed=0)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert vec.num_envs == B and vec.kernel.num_envs == B
    assert vec.observation_space.shape == (B, 3) and vec.action_space.shape == (B, 1)
    obs, info = vec.reset()
    assert obs.dtype == np.float32 and obs in vec.observation_space and info == {}
    for t in range(200):
        obs, r, te, tr, info = vec.step(vec.action_space.sample())
        assert obs.dtype == np.float32 and obs.shape == (B, 3) and obs in vec.observation_space
        assert r.dtype == np.float64 and r.shape == (B,)
        assert te.dtype == np.bool_ and tr.dtype == np.bool_ and info == {}
        assert not te.any() and tr.all() == (t == 199) and tr.any() == (t == 199)
    # the next step resets every slot: initial observations, reward 0, no flags
    obs, r, te, tr, _ = vec.step(np.full((B, 1), 2.0, np.float32))
    np.testing.assert_array_equal(r, 0.0)
    assert not te.any() and not tr.any()
    assert (np.abs(obs[:, 2]) <= 1.0).all()
    _, r, _, tr, _ = vec.step(np.zeros((B, 1), np.float32))
    assert (r < 0).all() and not tr.any()


def test_vector_env_autoreset_after_termination():
    B = 16
    vec = make_vec("CartPole-v1", num_envs=B, seed=3)
    vec.reset()
    prev_done = np.zeros(B, bool)
    seen = 0
    for _ in range(300):
        obs, r, te, tr, _ = vec.step(np.ones(B, np.int64))  # always push right: falls fast
        if prev_done.any():
            np.testing.assert_array_equal(r[prev_done], 0.0)
            assert not te[prev_done].any() and not tr[prev_done].any()
            assert (np.abs(obs[prev_done]) <= 0.05).all()
            seen += prev_done.sum()
        np.testing.assert_array_equal(r[~prev_done], 1.0)
        prev_done = te | tr
    assert seen > B


def test_reset_mask_resets_only_masked_slots():
    vec = make_vec("CartPole-v1", num_envs=4, seed=0)
    obs0, _ = vec.reset()
    obs1, *_ = vec.step(np.array([0, 1, 0, 1]))
    mask = np.array([True, False, True, False])
    obs2, _ = vec.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs2[~mask], obs1[~mask])
    assert not np.array_equal(obs2[mask], obs1[mask])


def run(vec, T, seed=0):
    rng = np.random.default_rng(seed)
    out = [vec.reset()[0]]
    for _ in range(T):
        out.extend(vec.step(random_actions(vec.single_action_space, rng, vec.num_envs)
                            .reshape(vec.action_space.shape))[:4])
    return out


@pytest.mark.parametrize("env_id", native_ids())
def test_determinism_under_a_seed(env_id):
    a = run(make_vec(env_id, num_envs=4, seed=9), 60)
    b = run(make_vec(env_id, num_envs=4, seed=9), 60)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    vec = make_vec(env_id, num_envs=4)
    vec.reset(seed=9)
    np.testing.assert_array_equal(vec.reset(seed=9)[0], a[0])
    c = run(make_vec(env_id, num_envs=4, seed=10), 1)
    assert not np.array_equal(a[0], c[0])


def test_slot_streams_do_not_depend_on_num_envs():
    small = make_vec("SimpleRegulator-v0", num_envs=3, seed=5)
    large = make_vec("SimpleRegulator-v0", num_envs=7, seed=5)
    np.testing.assert_array_equal(small.reset()[0], large.reset()[0][:3])
    for _ in range(20):
        a = np.full((7, 1), -0.1)
        np.testing.assert_array_equal(small.step(a[:3])[0], large.step(a)[0][:3])


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_every_form_of_the_same_actions_steps_alike(env_id):
    """Arrays read directly (float64, float32, int64, int32, C order) and those converted
    first (lists, big-endian, strided, other dtypes) give the same step."""
    base = np.array([0, 1, 1, 0, 1]) if env_id == "CartPole-v1" else \
        np.array([[0.5], [-1.0], [2.0], [0.0], [-2.0]])
    forms = [base.astype(np.float64), base.astype(np.float32), base.astype(np.int64),
             base.astype(np.int32), base.tolist(), base.astype(">f8"), base.astype(np.int16),
             np.repeat(base, 2, axis=0)[::2]]
    if env_id == "Pendulum-v1":   # halves and wholes only: exact in every dtype above
        forms = forms[:2] + [forms[4], forms[5], forms[7]]
    results = []
    for actions in forms:
        vec = make_vec(env_id, num_envs=5, seed=3)
        vec.reset()
        results.append([vec.step(actions)[:4] for _ in range(3)])
    for other in results[1:]:
        for got, want in zip(other, results[0]):
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
                assert g.dtype == w.dtype


@pytest.mark.parametrize("actions, err", [
    (np.array([0, 1, 2]), ValueError),        # out of range
    (np.array([0, -1, 1]), ValueError),
    (np.array([0.0, 0.5, 1.0]), ValueError),  # not an integer
    (np.array([0.0, np.nan, 1.0]), ValueError),
    (np.array([0, 1]), ValueError),           # wrong shape
    (np.array([[0], [1], [0]]), ValueError),
    (np.array(["a", "b", "c"]), TypeError),
])
def test_bad_discrete_actions_raise(actions, err):
    vec = make_vec("CartPole-v1", num_envs=3, seed=0)
    vec.reset()
    state = vec.kernel.get_state()
    with pytest.raises(err, match="actions"):
        vec.step(actions)
    np.testing.assert_array_equal(vec.kernel.get_state(), state)
    env = gym.make("pgfast/CartPole-v1").unwrapped
    env.reset(seed=0)
    with pytest.raises((ValueError, TypeError), match="action"):
        env.step(actions[0] if actions[0] != 0 else 2)


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "MountainCarContinuous-v0", "SimpleRegulator-v0"])
def test_nan_continuous_actions_raise_and_leave_the_state(env_id):
    vec = make_vec(env_id, num_envs=2, seed=0)
    vec.reset()
    state = vec.kernel.get_state()
    for bad in ([[0.0], [np.nan]], [[np.inf], [0.0]], [0.0, 0.0]):
        with pytest.raises(ValueError, match="actions"):
            vec.step(np.array(bad))
    np.testing.assert_array_equal(vec.kernel.get_state(), state)
    env = gym.make("pgfast/" + env_id).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(np.array([np.nan]))


@pytest.mark.parametrize("name", CLASSIC + ["SimpleRegulator-v0"])
def test_kernel_rejects_invalid_actions_itself(name):
    """The kernel's own check (the fused rollout calls it without the wrapper)."""
    k = make_kernel(name, 3, seed=0)
    k.reset_all(np.empty((3, k.obs_dim)))
    state = k.get_state()
    acts = np.zeros((3, 1))
    acts[1, 0] = np.nan
    step = _rollout.NextStepAutoreset(k, np.float64, (3, 1), None)
    with pytest.raises(_rollout.InvalidAction) as refused:
        step.step(acts)
    assert refused.value.args == (1,)
    np.testing.assert_array_equal(k.get_state(), state)
    obs, _, code = k.step_slot(0, np.array([np.nan]), np.random.default_rng(0))
    assert code == -1
    if k.n_actions:
        assert k.step_slot(0, np.array([float(k.n_actions)]), np.random.default_rng(0))[2] == -1
    np.testing.assert_array_equal(k.get_state(), state)


def test_closed_and_unreset_envs_raise():
    vec = make_vec("CartPole-v1", num_envs=2)
    with pytest.raises(ResetNeeded):
        vec.step(np.zeros(2, np.int64))
    vec.reset(seed=0)
    vec.close()
    vec.close()  # closing twice is allowed
    with pytest.raises(ClosedEnvironmentError):
        vec.step(np.zeros(2, np.int64))
    with pytest.raises(ClosedEnvironmentError):
        vec.reset()
    env = gym.make("pgfast/CartPole-v1").unwrapped
    with pytest.raises(ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    env.close()
    with pytest.raises(ClosedEnvironmentError):
        env.step(0)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="env_id"):
        make_vec("LunarLander-v3")
    with pytest.raises(TypeError, match="env_id"):
        make_vec(3)
    with pytest.raises(ValueError, match="num_envs"):
        make_vec("CartPole-v1", num_envs=0)
    with pytest.raises(ValueError, match="max_episode_steps"):
        make_vec("CartPole-v1", max_episode_steps=-1)
    with pytest.raises(ValueError, match="seed"):
        make_kernel("CartPole-v1", 2, seed=[1, 2, 3])
    with pytest.raises(ValueError, match="state"):
        make_kernel("CartPole-v1", 2).set_state(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="state"):
        make_kernel("CartPole-v1", 1).set_state([[0.0, np.nan, 0.0, 0.0]])
    with pytest.raises(ValueError, match="obs"):
        make_kernel("CartPole-v1", 2).reset_all(np.empty((3, 4)))
    with pytest.raises(ValueError, match="^render_mode: expected None"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Gymnasium warns before our error
        gym.make("pgfast/CartPole-v1", render_mode="ansi")
    with pytest.raises(ValueError, match="^render_mode: pgfast/SimpleRegulator-v0 does not"):
        gym.make("pgfast/SimpleRegulator-v0", render_mode="rgb_array")
    with pytest.raises(TypeError, match="^render_mode:"):
        pgfast.NativeEnv("CartPole-v1", render_mode=1)


def test_env_id_prefix_is_optional_and_kwargs_pass_through():
    assert repr(make_vec("pgfast/Acrobot-v1")) == repr(make_vec("Acrobot-v1"))
    low_g = make_vec("Pendulum-v1", num_envs=1, seed=0, g=0.0)
    low_g.reset()
    low_g.kernel.set_state(np.array([[1.0, 0.0]]))
    obs, *_ = low_g.step(np.zeros((1, 1), np.float32))
    assert obs[0, 2] == 0.0  # no gravity, no torque: θ̇ stays 0
    assert pgfast.make_vec is make_vec


# --- rendering: Gymnasium's pictures of the native state -----------------------------------

RENDERED = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
            "Pendulum-v1"]
NEEDS_PYGAME = pytest.mark.skipif(importlib.util.find_spec("pygame") is None,
                                  reason='drawing needs pygame: pip install "pgfast[render]"')


@NEEDS_PYGAME
@pytest.mark.parametrize("name", RENDERED)
def test_rendered_frames_are_gymnasiums(name):
    """The same seed and actions give the same frames as Gymnasium's env, frame by
    frame over an episode (its state, and for Pendulum the torque arrow, drawn alike)."""
    ours = gym.make(f"pgfast/{name}", render_mode="rgb_array")
    theirs = gym.make(name, render_mode="rgb_array")
    ours.reset(seed=7)
    theirs.reset(seed=7)
    theirs.action_space.seed(7)
    frames = [ours.render()]
    np.testing.assert_array_equal(frames[0], theirs.render())
    for _ in range(60):
        action = theirs.action_space.sample()
        done = ours.step(action)[2:4]
        theirs.step(action)
        frames.append(ours.render())
        np.testing.assert_array_equal(frames[-1], theirs.render())
        if any(done):
            break
    assert frames[0].dtype == np.uint8 and frames[0].ndim == 3 and frames[0].shape[2] == 3
    assert not all(np.array_equal(frames[0], f) for f in frames[1:])   # the picture moves
    assert ours.metadata["render_fps"] == theirs.metadata["render_fps"]
    ours.close()
    theirs.close()


@NEEDS_PYGAME
def test_render_needs_a_reset_and_a_mode():
    env = pgfast.NativeEnv("Pendulum-v1", render_mode="rgb_array")
    with pytest.raises(ResetNeeded):
        env.render()
    env.reset(seed=0)
    env.step(np.array([2.0], np.float32))
    state, pushed = env.kernel.get_state(), env.render()
    env.step(np.array([-2.0], np.float32))
    env.kernel.set_state(state)   # the same state: only the torque arrow differs
    assert not np.array_equal(env.render(), pushed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert pgfast.NativeEnv("Pendulum-v1").render() is None


@NEEDS_PYGAME
def test_human_mode_draws_on_reset_and_step(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")   # a window without a display
    env = gym.make("pgfast/CartPole-v1", render_mode="human")
    env.reset(seed=0)
    env.step(0)
    assert env.render() is None
    env.close()


def test_render_without_pygame_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pygame", None)
    with pytest.raises(gym.error.DependencyNotInstalled,
                       match=r'^render_mode: drawing CartPole-v1 needs pygame: '
                             r'pip install "pgfast\[render\]"$'):
        pgfast.NativeEnv("CartPole-v1", render_mode="rgb_array")
