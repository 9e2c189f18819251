"""The native MuJoCo envs (pgfast/mujoco.py, src/mujoco/_mujoco_envs.pyx) against
Gymnasium's own v5 envs, step for step from the same MuJoCo state.

After every step the full integration state of Gymnasium's env is copied into
the kernel (re-synchronised), so each step is compared from identical states:
observations, rewards, terminated and truncated must agree to rounding (they
agree bit for bit here: the same libmujoco does the physics and the kernels
round as numpy does). The default run takes STEPS steps per env;
``PGFAST_MUJOCO_STEPS=10000 pytest tests/test_mujoco.py`` runs the full count.
"""
import os
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

import pgfast
from pgfast import mujoco as pm

STEPS = int(os.environ.get("PGFAST_MUJOCO_STEPS", "1000"))

needs_mujoco = pytest.mark.skipif(
    not pm.available(), reason=f"MuJoCo or pgfast's MuJoCo kernels missing ({pm.INSTALL_HINT})")


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    # MuJoCo's default warning handler appends to MUJOCO_LOG.TXT in the working
    # directory (loading some of Gymnasium's models warns about a deprecated attribute).
    monkeypatch.chdir(tmp_path)


def _gymnasium(name):
    mujoco = pytest.importorskip("mujoco", reason="Gymnasium's MuJoCo envs need mujoco")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mujoco, gym.make(name, disable_env_checker=True)


@needs_mujoco
@pytest.mark.parametrize("name", pm.ENV_NAMES)
def test_spaces_limits_and_dt_match_gymnasium(name):
    _, ref = _gymnasium(name)
    ours = gym.make("pgfast/" + name)
    assert ours.spec.max_episode_steps == ref.spec.max_episode_steps
    assert ours.spec.reward_threshold == ref.spec.reward_threshold
    assert ours.observation_space == ref.observation_space
    assert ours.action_space == ref.action_space
    kernel = ours.unwrapped.kernel
    assert kernel.dt == ref.unwrapped.dt and kernel.frame_skip == ref.unwrapped.frame_skip
    np.testing.assert_array_equal(kernel.ctrl_range, ref.unwrapped.model.actuator_ctrlrange)


def _model_fields(mujoco, model):
    """Every array of an mjModel, its options and its statistics, by name."""
    fields = {name: value for name in dir(model) if not name.startswith("_")
              and isinstance(value := getattr(model, name), np.ndarray)}
    for struct in ("opt", "stat"):
        part = getattr(model, struct)
        fields.update({f"{struct}.{name}": np.asarray(value) for name in dir(part)
                       if not name.startswith("_")
                       and isinstance(value := getattr(part, name), (float, int, np.ndarray))})
    return fields


@needs_mujoco
@pytest.mark.parametrize("name", pm.ENV_NAMES)
def test_kernel_models_compile_to_gymnasiums(name):
    # HalfCheetah's kernel loads pgfast's own copy of the model (written without the
    # settotalmass attribute MuJoCo 4 deprecates): it must be the same mjModel, bit for bit.
    mujoco, ref = _gymnasium(name)
    ours = mujoco.MjModel.from_xml_path(gym.make("pgfast/" + name).unwrapped.kernel.xml_file)
    theirs, mine = _model_fields(mujoco, ref.unwrapped.model), _model_fields(mujoco, ours)
    assert theirs.keys() == mine.keys() and len(theirs) > 100
    for field, value in theirs.items():
        np.testing.assert_array_equal(mine[field], value, err_msg=field)
    assert theirs["body_mass"].sum() > 0


@needs_mujoco
@pytest.mark.parametrize("name", pm.ENV_NAMES)
def test_making_an_env_prints_no_mujoco_warning(name, capfd):
    # MuJoCo's default handler prints warnings to stdout (C level) and appends them to
    # MUJOCO_LOG.TXT in the working directory (the fixture's tmp_path).
    capfd.readouterr()
    env = gym.make("pgfast/" + name)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    out, err = capfd.readouterr()
    assert "WARNING" not in out + err
    assert not os.path.exists("MUJOCO_LOG.TXT")


@needs_mujoco
@pytest.mark.parametrize("name", pm.ENV_NAMES)
def test_reset_matches_gymnasium(name):
    _, ref = _gymnasium(name)
    ours = gym.make("pgfast/" + name)
    for seed in range(25):
        np.testing.assert_array_equal(ours.reset(seed=seed)[0], ref.reset(seed=seed)[0])


@needs_mujoco
@pytest.mark.parametrize("name", pm.ENV_NAMES)
def test_step_for_step_against_gymnasium(name):
    mujoco, ref = _gymnasium(name)
    ours = gym.make("pgfast/" + name)
    kernel = ours.unwrapped.kernel
    model, data = ref.unwrapped.model, ref.unwrapped.data
    sig = mujoco.mjtState.mjSTATE_INTEGRATION
    state = np.empty(mujoco.mj_stateSize(model, sig))
    rng = np.random.default_rng(0)
    low, high = ref.action_space.low, ref.action_space.high
    seed = 0
    np.testing.assert_array_equal(ours.reset(seed=seed)[0], ref.reset(seed=seed)[0])
    counts = {"terminated": 0, "truncated": 0, "clamped": 0}
    for t in range(STEPS):
        # float64 actions, some outside the box: MuJoCo clamps the control,
        # the control cost sees the raw action.
        action = rng.uniform(1.2 * low, 1.2 * high)
        counts["clamped"] += bool((np.abs(action) > high).any())
        o_ref, r_ref, te_ref, tr_ref, _ = ref.step(action)
        o, r, te, tr, _ = ours.step(action)
        np.testing.assert_allclose(o, o_ref, rtol=1e-12, atol=1e-12, err_msg=f"step {t}")
        assert r == pytest.approx(r_ref, rel=1e-12, abs=1e-12), t
        assert (te, tr) == (bool(te_ref), bool(tr_ref)), t
        counts["terminated"] += te
        counts["truncated"] += tr
        if te or tr:
            seed += 1
            np.testing.assert_array_equal(ours.reset(seed=seed)[0], ref.reset(seed=seed)[0])
        mujoco.mj_getState(model, data, state, sig)   # re-synchronise
        mujoco.mj_forward(model, data)
        kernel.set_state(0, state)
    assert counts["clamped"] > 0
    if name in ("Hopper-v5", "Walker2d-v5", "InvertedPendulum-v5",
                "InvertedDoublePendulum-v5", "Humanoid-v5"):
        assert counts["terminated"] > 0     # random actions fall over
    if name == "Reacher-v5":
        assert counts["truncated"] > 0      # 50-step episodes


@needs_mujoco
def test_terminate_when_unhealthy_false_matches_gymnasium():
    mujoco, _ = _gymnasium("Hopper-v5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gym.make("Hopper-v5", terminate_when_unhealthy=False, disable_env_checker=True)
    ours = gym.make("pgfast/Hopper-v5", terminate_when_unhealthy=False)
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(ours.reset(seed=3)[0], ref.reset(seed=3)[0])
    for t in range(300):   # falls over within 300 steps, keeps going
        action = rng.uniform(-1, 1, 3)
        o_ref, r_ref, te_ref, _, _ = ref.step(action)
        o, r, te, _, _ = ours.step(action)
        np.testing.assert_array_equal(o, o_ref)
        assert r == r_ref and not te and not te_ref
    assert r_ref < 0.5   # the healthy reward is gone: it did fall


@needs_mujoco
@pytest.mark.parametrize("name", ["HalfCheetah-v5", "Walker2d-v5"])
def test_reset_noise_scale_matches_gymnasium(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = gym.make(name, reset_noise_scale=0.3, disable_env_checker=True)
    ours = gym.make("pgfast/" + name, reset_noise_scale=0.3)
    for seed in range(5):
        np.testing.assert_array_equal(ours.reset(seed=seed)[0], ref.reset(seed=seed)[0])


@needs_mujoco
@pytest.mark.parametrize("name", ["Hopper-v5", "Ant-v5", "Reacher-v5"])
def test_float32_actions_differ_only_by_the_float32_control_cost(name):
    # Gymnasium squares a float32 action in float32 (np.square keeps the dtype);
    # the kernels see float64. The physics is the same, the control cost differs
    # by float32 rounding.
    _, ref = _gymnasium(name)
    ours = gym.make("pgfast/" + name)
    ours.reset(seed=0)
    ref.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(40):
        action = rng.uniform(-1, 1, ref.action_space.shape).astype(np.float32)
        o_ref, r_ref, te_ref, tr_ref, _ = ref.step(action)
        o, r, te, tr, _ = ours.step(action)
        np.testing.assert_array_equal(o, o_ref)
        assert r == pytest.approx(r_ref, rel=0, abs=1e-6) and (te, tr) == (te_ref, tr_ref)
        if te or tr:
            break


@needs_mujoco
@pytest.mark.parametrize("name", ["Hopper-v5", "Ant-v5", "Humanoid-v5"])
def test_fused_rollout_is_deterministic_and_thread_independent(name):
    vec = pgfast.make_vec(name, num_envs=6, seed=0)
    policy = pgfast.MLPGaussian(vec.kernel.obs_dim, vec.kernel.act_dim, (64, 64))
    theta = np.random.default_rng(0).normal(0, 0.1, policy.n_params)
    T = 300 if name == "Hopper-v5" else 100
    one = pgfast.rollout(vec, policy, theta, T, np.random.default_rng(5))
    two = pgfast.rollout(vec, policy, theta, T, np.random.default_rng(5), num_threads=2)
    for field in ("observations", "actions", "rewards", "terminated", "truncated", "log_probs"):
        np.testing.assert_array_equal(getattr(one, field), getattr(two, field), err_msg=field)
    assert np.isfinite(one.observations).all() and np.isfinite(one.rewards).all()
    if name in ("Hopper-v5", "Humanoid-v5"):
        assert one.terminated.any()   # random policies fall
    # Every episode starts from a reset: the torso height within the reset noise
    # of the initial pose (Hopper 1.25 ± 0.005; Ant 0.75 ± 0.1; Humanoid 1.4 ± 0.01).
    starts = np.concatenate([one.observations[0], one.observations[1:][one.done[:-1]]])
    z0, noise = {"Hopper-v5": (1.25, 5e-3), "Ant-v5": (0.75, 0.1),
                 "Humanoid-v5": (1.4, 1e-2)}[name]
    assert (np.abs(starts[:, 0] - z0) <= noise).all()
    assert np.unique(starts[:, 0]).size == starts.shape[0]


@needs_mujoco
def test_fused_rollout_transitions_replay_in_gymnasium():
    """Each recorded (s_t, a_t) of a fused rollout, replayed from the same MuJoCo
    state in Gymnasium, gives the recorded reward and next observation."""
    mujoco, ref = _gymnasium("HalfCheetah-v5")
    vec = pgfast.make_vec("HalfCheetah-v5", num_envs=1, seed=0)
    policy = pgfast.MLPGaussian(17, 6, (64, 64))
    theta = np.random.default_rng(2).normal(0, 0.1, policy.n_params)
    ref.reset(seed=0)
    model, data = ref.unwrapped.model, ref.unwrapped.data
    # HalfCheetah's observation omits the x position, which nothing depends on:
    # qpos = (x, obs[:8]), qvel = obs[8:] rebuilds the state up to x.
    r = pgfast.rollout(vec, policy, theta, 200, np.random.default_rng(1))
    for t in range(199):
        s = r.observations[t, 0]
        ref.unwrapped.set_state(np.concatenate([[0.0], s[:8]]), s[8:])
        o, rew, *_ = ref.step(r.actions[t, 0])
        np.testing.assert_allclose(o, r.observations[t + 1, 0], rtol=1e-6, atol=1e-6)
        assert rew == pytest.approx(r.rewards[t, 0], rel=1e-6, abs=1e-6)


@needs_mujoco
def test_problem_and_policy_gradient_run_natively():
    problem = pgfast.Problem("Hopper-v5", gamma=0.99, horizon=100)
    assert isinstance(problem.env_for(4), pgfast.NativeVectorEnv)   # the fused loop's env
    assert problem.observation_space.shape == (11,) and problem.action_space.shape == (3,)
    policy = pgfast.MLPGaussian(11, 3, (64, 64))
    traj = problem.rollouts(policy, np.zeros(policy.n_params), 4, np.random.default_rng(0))
    assert np.isfinite(traj.rewards).all()


# ---- bad input --------------------------------------------------------------


@needs_mujoco
def test_bad_actions_raise():
    env = gym.make("pgfast/Hopper-v5")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action: expected finite"):
        env.step(np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="action: expected shape"):
        env.step(np.zeros(4))
    vec = pgfast.make_vec("Hopper-v5", num_envs=2, seed=0)
    vec.reset()
    with pytest.raises(ValueError, match="actions: expected finite"):
        vec.step(np.array([[0.0, 0.0, 0.0], [np.inf, 0.0, 0.0]]))
    # The kernel itself: -1 and the state left as it was.
    kernel = vec.kernel
    before = kernel.get_state(0)
    _, _, code = kernel.step_slot(0, np.array([np.nan, 0.0, 0.0]), np.random.default_rng(0))
    assert code == -1
    np.testing.assert_array_equal(kernel.get_state(0), before)
    # A policy whose samples overflow: the fused loop stops with a ValueError.
    policy = pgfast.MLPGaussian(11, 3, (8,))
    theta = np.zeros(policy.n_params)
    theta[-3:] = 800.0     # log_std: finite θ, σ = exp(800) overflows
    with pytest.raises(ValueError, match="invalid action"):
        pgfast.rollout(vec, policy, theta, 5, np.random.default_rng(0))


@needs_mujoco
def test_exploding_physics_terminates_the_episode():
    kernel = pm.kernel_class("Hopper-v5")(1, seed=0)
    rng = np.random.default_rng(0)
    kernel.reset_slot(0, rng)
    state = kernel.get_state(0)
    nq = 6
    state[1 + nq:1 + 2 * nq] = 1e12     # qvel: MuJoCo flags it as bad and resets
    kernel.set_state(0, state)
    obs, reward, code = kernel.step_slot(0, np.zeros(3), rng)
    assert code == 1 and kernel.unstable_count(0) > 0
    assert np.isfinite(obs).all() and np.isfinite(reward)
    with pytest.raises(ValueError, match="state: expected finite"):
        kernel.set_state(0, np.full_like(state, np.nan))
    with pytest.raises(ValueError, match="state: expected"):
        kernel.set_state(0, state[:-1])
    # A reset clears it.
    kernel.reset_slot(0, rng)
    assert kernel.unstable_count(0) == 0


@needs_mujoco
def test_bad_models_raise(tmp_path):
    cls = pm.kernel_class("Hopper-v5")
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body></mujoco>")
    with pytest.raises(ValueError, match="xml_file: MuJoCo could not load"):
        cls(1, xml_file=broken)
    with pytest.raises(ValueError, match="xml_file: MuJoCo could not load"):
        cls(1, xml_file=tmp_path / "missing.xml")
    with pytest.raises(ValueError, match=r"xml_file: HopperKernel needs a model with"):
        cls(1, xml_file=pm.kernel_class("Ant-v5")(1).xml_file)
    with pytest.raises(ValueError, match="num_envs"):
        pgfast.make_vec("Hopper-v5", num_envs=0)


@pytest.fixture
def _unchecked():
    # pgfast.mujoco checks the loaded MuJoCo once per process: forget that around a
    # test that changes what an import finds.
    pm._module.cache_clear()
    yield
    pm._module.cache_clear()


def test_without_mujoco_asking_for_an_env_says_how_to_install(monkeypatch, _unchecked):
    # Simulate a machine without MuJoCo: importing it fails.
    monkeypatch.setitem(sys.modules, "mujoco", None)
    monkeypatch.setitem(sys.modules, "pgfast._mujoco_envs", None)
    assert not pm.available()
    assert "pgfast/Hopper-v5" not in pgfast.native_ids()
    assert "pgfast/CartPole-v1" in pgfast.native_ids()
    with pytest.raises(ImportError, match=r'pip install "pgfast\[mujoco\]"'):
        pgfast.make_vec("Hopper-v5")
    with pytest.raises(ImportError, match=r'pip install "pgfast\[mujoco\]"'):
        gym.make("pgfast/Ant-v5")
    assert "pgfast/Hopper-v5" in gym.registry


# ---- which MuJoCo ------------------------------------------------------------


def _supported_mujoco():
    """The MuJoCo releases pgfast's mujoco extra accepts (its installed metadata)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    for line in requires("pgfast") or []:
        requirement = Requirement(line)
        if requirement.name == "mujoco" and "mujoco" in str(requirement.marker):
            return requirement.specifier
    raise AssertionError("pgfast's metadata has no mujoco extra")


@needs_mujoco
def test_the_kernels_run_on_the_installed_mujocos_library():
    mujoco = pytest.importorskip("mujoco")
    module = pm._module()
    # One library for both: the mujoco package's, whichever release it is.
    assert module.library_version() == mujoco.mj_version()
    assert mujoco.__version__ in _supported_mujoco()
    assert module.HEADER_VERSION // 1000 == module.library_version() // 1000   # one API line


@needs_mujoco
def test_another_mujoco_line_is_refused(monkeypatch, _unchecked):
    module = pm._module()
    pm._module.cache_clear()
    monkeypatch.setattr(module, "library_version", lambda: module.HEADER_VERSION + 1000)
    with pytest.raises(ImportError, match=r"need MuJoCo 4\.0\.x, the loaded library is 4\.1\.\d+: "
                                          r'pip install "pgfast\[mujoco\]"'):
        pm.kernel_class("Hopper-v5")
    assert not pm.available()


@needs_mujoco
@pytest.mark.parametrize("struct, field", [("model", "nv"), ("model", "opt.timestep"),
                                           ("model", "body_mass"), ("data", "qvel"),
                                           ("data", "warning.number"), ("data", "cfrc_ext")])
def test_a_library_with_another_struct_layout_is_refused(monkeypatch, _unchecked, struct, field):
    module = pm._module()
    pm._module.cache_clear()
    real = module.struct_fields

    def shifted(model_address, data_address):
        # What the kernels would read if the library had one more member before `field`.
        fields = dict(zip(("model", "data"), real(model_address, data_address)))
        value = fields[struct][field]
        fields[struct][field] = [n + 1 for n in value] if isinstance(value, list) else value + 8
        return fields["model"], fields["data"]

    monkeypatch.setattr(module, "struct_fields", shifted)
    with pytest.raises(ImportError, match=rf"lays out mjModel/mjData differently .*\({field}\)"):
        pm.kernel_class("Hopper-v5")


# Run in a fresh interpreter whose `import mujoco` finds another MuJoCo release.
_ON_ANOTHER_MUJOCO = """
import sys, warnings
import gymnasium as gym, mujoco, numpy as np
from pgfast import mujoco as pm
assert mujoco.__version__ == sys.argv[1], mujoco.__version__
assert pm.available() and pm._module().library_version() == mujoco.mj_version()
warnings.simplefilter("ignore")
for name in ("Hopper-v5", "HalfCheetah-v5", "Humanoid-v5"):
    ref, ours = gym.make(name, disable_env_checker=True), gym.make("pgfast/" + name)
    rng = np.random.default_rng(0)
    assert np.array_equal(ours.reset(seed=0)[0], ref.reset(seed=0)[0]), name
    for t in range(200):
        action = rng.uniform(ref.action_space.low, ref.action_space.high)
        o_ref, r_ref, te_ref, _, _ = ref.step(action)
        o, r, te, _, _ = ours.step(action)
        assert np.array_equal(o, o_ref) and r == r_ref and te == te_ref, (name, t)
        if te:
            break
print("stepped with MuJoCo", mujoco.mj_versionString())
"""


@needs_mujoco
@pytest.mark.slow
def test_the_oldest_supported_mujoco_runs_the_envs(tmp_path):
    # The test extra installs the newest supported MuJoCo, which every other test
    # here runs on; this one installs the oldest the extra accepts beside it.
    import subprocess
    mujoco = pytest.importorskip("mujoco")
    oldest = next(s.version for s in _supported_mujoco() if s.operator == ">=")
    if mujoco.__version__ == oldest:
        pytest.skip(f"the installed MuJoCo is the oldest supported ({oldest}); "
                    "the other tests run on it")
    target = tmp_path / f"mujoco-{oldest}"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         f"mujoco-core=={oldest}"], capture_output=True, text=True, timeout=600)
    if install.returncode != 0:
        pytest.skip(f"could not install mujoco-core=={oldest} from the package index: "
                    f"{install.stderr.strip()[-300:]}")
    result = subprocess.run([sys.executable, "-c", _ON_ANOTHER_MUJOCO, oldest], cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(target)},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"stepped with MuJoCo {oldest}" in result.stdout


# --- rendering: MuJoCo's renderer, through Gymnasium's env of the same id ------------------

def _render_or_skip(env):
    """env.render(), or a skip saying what is missing where no OpenGL context opens."""
    try:
        return env.render()
    except RuntimeError as exc:
        if "could not open an OpenGL context" in str(exc):
            pytest.skip(str(exc))
        raise


@needs_mujoco
@pytest.mark.parametrize("name", pm.ENV_NAMES)
def test_rendered_frames_are_gymnasiums(name):
    """Same seed, same actions: the same frames as Gymnasium's env, step by step
    (positions and frames as mj_step leaves them, drawn by MuJoCo's renderer)."""
    _gymnasium(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = gym.make("pgfast/" + name, render_mode="rgb_array")
        theirs = gym.make(name, render_mode="rgb_array", disable_env_checker=True)
    ours.reset(seed=3)
    theirs.reset(seed=3)
    theirs.action_space.seed(3)
    frames = [_render_or_skip(ours)]
    np.testing.assert_array_equal(frames[0], theirs.render())
    for _ in range(8):
        action = theirs.action_space.sample()
        ours.step(action)
        theirs.step(action)
        frames.append(ours.render())
        np.testing.assert_array_equal(frames[-1], theirs.render())
    assert frames[0].shape == (480, 480, 3) and frames[0].dtype == np.uint8
    assert not all(np.array_equal(frames[0], f) for f in frames[1:])
    ours.close()
    theirs.close()


@needs_mujoco
def test_copy_data_into_refuses_another_model():
    mujoco, ref = _gymnasium("Hopper-v5")
    kernel = pgfast.make_kernel("Hopper-v5", 1, seed=0)
    other = gym.make("InvertedPendulum-v5").unwrapped
    with pytest.raises(ValueError, match="^target: the mjData of another model"):
        kernel.copy_data_into(0, other.data)
    with pytest.raises(TypeError, match="^target:"):
        kernel.copy_data_into(0, np.zeros(3))


@needs_mujoco
def test_human_mode_without_a_display_is_refused(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux's (DISPLAY, WAYLAND_DISPLAY)")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ValueError, match="^render_mode: 'human' opens a window"):
        pgfast.NativeEnv("Hopper-v5", render_mode="human")
