"""Bad input at the public boundary: counts no machine can serve, sizes that
overflow, results that overflow from finite inputs. Each gives a ValueError or
TypeError naming the argument, at once (no work is started)."""
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded

import pgfast
from pgfast.cli import main as cli_main

HUGE = 2**31
ENORMOUS = 10**30   # past C's 64-bit range: still a ValueError, not OverflowError


@pytest.mark.parametrize("count", [HUGE, ENORMOUS])
def test_counts_that_cannot_be_served_are_refused(count, cartpole, softmax):
    theta = softmax.init(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="episodes"):
        pgfast.evaluate(cartpole, softmax, theta, episodes=count, rng=rng)
    with pytest.raises(ValueError, match="^m:"):
        pgfast.utility(cartpole, softmax, theta, count, rng)
    with pytest.raises(ValueError, match="horizon"):
        pgfast.Problem("CartPole-v1", horizon=count * 10**9)
    with pytest.raises(ValueError, match="horizon"):
        pgfast.regulator_gradient(np.zeros(3), count)
    with pytest.raises(ValueError, match="minibatches"):
        pgfast.ClampedSurrogateUpdate(cartpole, softmax, m=4, minibatches=count)
    with pytest.raises(ValueError, match="n_steps"):
        pgfast.rollout(pgfast.make_vec("CartPole-v1", num_envs=2), softmax, theta,
                       count * 10**9, rng)


def test_more_minibatches_than_steps_is_refused(softmax):
    problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    # A near-uniform policy keeps CartPole up for tens of steps, not 400.
    update = pgfast.ClampedSurrogateUpdate(problem, softmax, m=1, minibatches=400)
    theta = softmax.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="minibatches"):
        update.update(theta, np.random.default_rng(0))


@pytest.mark.parametrize("make", [
    lambda: pgfast.MLPSoftmax(2, 1, hidden=(2**62,)),
    lambda: pgfast.MLPGaussian(3, 2, hidden=(2**40, 2**40)),
    lambda: pgfast.LinearSoftmax(2**62, 2),
    lambda: pgfast.MLPValue(4, hidden=(2**62,)),
])
def test_networks_too_large_to_hold_are_refused(make):
    with pytest.raises(ValueError, match="hidden|obs_dim"):
        make()


def test_results_that_overflow_name_the_parameters():
    policy = pgfast.LinearGaussian(2, 1)
    obs = np.ones((3, 2))
    theta = np.array([0.0, 0.0, 0.0, -800.0])   # log_std of −800: σ² = e^−1600 underflows
    with pytest.raises(ValueError, match="theta.*not finite"):
        policy.log_prob(theta, obs, np.ones((3, 1)))
    with pytest.raises(ValueError, match="theta_new.*not finite"):
        policy.kl(np.zeros(4), theta, obs)
    big = np.array([1e308, 1e308, 0.0, 0.0])
    with pytest.raises(ValueError, match="theta.*not finite"):
        policy.log_prob(big, np.full((3, 2), 1e308), np.zeros((3, 1)))
    value = pgfast.LinearValue(2)
    with pytest.raises(ValueError, match="phi.*not finite"):
        value.value(np.array([1e308, 1e308, 0.0]), np.full((2, 2), 1e308))


def test_rewards_that_overflow_name_the_actions_or_theta():
    """MountainCarContinuous's control cost −0.1·a² of an action beyond float32's range
    (the space's dtype, to which the env casts it) is −inf, from a finite action."""
    vec = pgfast.make_vec("MountainCarContinuous-v0", num_envs=2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="^actions:.*not finite"):
        vec.step(np.array([[0.5], [1e200]]))
    one = pgfast.NativeEnv("MountainCarContinuous-v0")
    one.reset(seed=0)
    with pytest.raises(ValueError, match="^action:.*not finite"):
        one.step(np.array([1e200]))
    assert np.isfinite(one.step(np.array([1e30]))[1])   # −1e59: large, still finite
    policy = pgfast.LinearGaussian(2, 1)   # a mean action of 1e200
    with pytest.raises(ValueError, match="^theta:.*slot 0 at step 0 is not finite"):
        pgfast.rollout(vec, policy, np.array([0.0, 0.0, 1e200, 0.0]), 5,
                       np.random.default_rng(0))


@pytest.mark.parametrize("theta", ["0 0 0", b"abc", np.zeros(3, complex),
                                   np.datetime64("2026-01-01"), [[0.0], [0.0, 1.0]],
                                   {"w": 1.0}])
def test_non_numeric_theta_is_refused_by_name(theta):
    policy = pgfast.LinearGaussian(1, 1)
    with pytest.raises((TypeError, ValueError), match="theta"):
        policy.log_prob(theta, np.zeros((1, 1)), np.zeros((1, 1)))


@pytest.mark.parametrize("make", [
    lambda p, s: pgfast.ClampedSurrogateUpdate(p, s, m=2, k_max=2**31),
    lambda p, s: pgfast.TrustRegionUpdate(p, s, m=2, max_backtracks=2**31),
    lambda p, s: pgfast.NaturalPolicyUpdate(p, s, m=2, cg_iterations=10**5),
    lambda p, s: pgfast.ValueBaseline(pgfast.MLPValue(4, hidden=(4,)), value_epochs=10**6),
    lambda p, s: pgfast.conjugate_gradient(lambda v: v, np.ones(2), iterations=2**31),
])
def test_loops_over_one_batch_are_bounded(make, cartpole, softmax):
    """Epochs, backtracks and CG steps beyond 10,000 would run for hours on one batch."""
    with pytest.raises(ValueError, match="<= 10000"):
        make(cartpole, softmax)


def test_sums_that_overflow_name_their_inputs():
    rewards = np.array([1e308, 1e308])
    with pytest.raises(ValueError, match="^rewards: an episode's return is not finite"):
        pgfast.episode_stats(rewards, np.array([False, True]), np.zeros(2, bool))
    with pytest.raises(ValueError, match="^grad_log_probs, rewards: the gradient"):
        pgfast.likelihood_ratio_gradient(np.array([[2.0]]), np.array([1e308]), 1.0)
    with pytest.raises(ValueError, match="^grad_log_probs, rewards: the baseline"):
        pgfast.optimal_baseline(np.array([[1e200]]), np.array([1e200]), 1.0)
    with pytest.raises(ValueError, match="^dtheta, du: the least-squares gradient"):
        pgfast.regression_gradient(np.array([[1e-300]]), np.array([1e300]))


def test_optimizer_helpers_check_their_input():
    adam = pgfast.Adam(2)
    with pytest.raises(ValueError, match="^grad: expected shape"):
        adam.step(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="^grad: the squared gradient is not finite"):
        adam.step(np.zeros(2), np.array([1e200, 0.0]))
    bold = pgfast.Adam(2, alpha=1e308)
    with pytest.raises(ValueError, match="^theta: the new θ is not finite"):
        bold.step(np.array([1e308, 0.0]), np.ones(2))
    assert bold.t == 0 and not bold.m.any()   # a refused step leaves the state as it was
    with pytest.raises(ValueError, match="^beta2:"):
        pgfast.Adam(2, beta2=1.0)
    with pytest.raises(TypeError, match="^matvec:"):
        pgfast.conjugate_gradient(None, np.ones(2))
    with pytest.raises(ValueError, match="^matvec: expected a real array of shape"):
        pgfast.conjugate_gradient(lambda v: np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="^clip:"):
        pgfast.clip_gradient(np.ones(2), "a", 1.0)
    # Checking keeps the gradient's precision: float32 in, float32 out.
    assert pgfast.clip_gradient(np.ones(2, np.float32), -0.5, 0.5).dtype == np.float32
    assert pgfast.scale_gradient(np.ones(2, np.float32), 0.5).dtype == np.float32
    # Entries near the float64 limit: ‖∇‖ overflows, the scaled gradient does not.
    scaled = pgfast.scale_gradient(np.array([1e308, 1e308]), 2.0)
    np.testing.assert_allclose(scaled, [np.sqrt(2.0), np.sqrt(2.0)])


def test_updates_check_their_step_settings_and_results(cartpole, softmax):
    estimator = pgfast.RewardToGoGradient(cartpole, softmax, m=2)
    with pytest.raises(TypeError, match="^grad_clip: expected a pair"):
        pgfast.PolicyGradientUpdate(estimator, grad_clip=0.5)
    with pytest.raises(ValueError, match="^grad_clip: expected low < high"):
        pgfast.PolicyGradientUpdate(estimator, grad_clip=(1.0, -1.0))
    with pytest.raises(TypeError, match="^entropy_coef:"):
        pgfast.ClampedSurrogateUpdate(cartpole, softmax, entropy_coef="0.1")
    huge = pgfast.PolicyGradientUpdate(estimator, alpha=1e308)
    theta = np.full(softmax.n_params, 1e308)
    with pytest.raises(ValueError, match="^theta: the updated θ"):
        huge.update(theta, np.random.default_rng(0))


def test_seeds_and_env_options_are_checked_by_name():
    with pytest.raises(TypeError, match="^seed:"):
        pgfast.make_vec("CartPole-v1", num_envs=2, seed=0.0)
    with pytest.raises(ValueError, match="^seed: expected ints >= 0"):
        pgfast.make_vec("CartPole-v1", num_envs=2, seed=[1, -1])
    with pytest.raises(ValueError, match="^seed: expected 2 seeds"):
        pgfast.make_vec("CartPole-v1", num_envs=2).reset(seed=[1, 2, 3])
    with pytest.raises(TypeError, match="^seed:"):
        pgfast.NativeEnv("CartPole-v1").reset(seed="7")
    with pytest.raises(TypeError, match="^g:"):
        pgfast.make_vec("Pendulum-v1", g="9.8")
    with pytest.raises(ValueError, match="^g:"):
        pgfast.NativeEnv("Pendulum-v1", g=float("inf"))
    with pytest.raises(TypeError, match="^goal_velocity: not an option of this env"):
        pgfast.make_vec("MountainCarContinuous-v0", goal_velocity=0.1)


def test_training_entry_points_check_their_arguments(cartpole, softmax, tmp_path):
    update = pgfast.ClampedSurrogateUpdate(cartpole, softmax, m=2)
    theta = softmax.init(np.random.default_rng(0))
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="^checkpoint_dir:"):
        pgfast.train(update, theta, iterations=1, rng=rng, progress=False, checkpoint_dir=1.5)
    with pytest.raises(TypeError, match="^callback:"):
        pgfast.train(update, theta, iterations=1, rng=rng, progress=False, callback="stop")
    with pytest.raises(TypeError, match="^threshold:"):
        pgfast.StopWhenSolved(cartpole, softmax, "475", rng)   # None: no threshold
    with pytest.raises(TypeError, match="^rng:"):
        pgfast.save_checkpoint(tmp_path, theta, update, {}, 0)
    with pytest.raises(TypeError, match="^history:"):
        pgfast.save_checkpoint(tmp_path, theta, update, [1, 2], rng)
    with pytest.raises(TypeError, match="^metadata:"):
        pgfast.save_checkpoint(tmp_path, theta, update, {}, rng, {"when": object()})
    with pytest.raises(ValueError, match="^theta:"):
        pgfast.save_checkpoint(tmp_path, theta[:3], update, {}, rng)
    assert not (tmp_path / "checkpoint.npz").exists()   # nothing written on refusal
    np.save(tmp_path / "checkpoint.npz", theta)   # damage that leaves an .npy header
    (tmp_path / "checkpoint.npz.npy").rename(tmp_path / "checkpoint.npz")
    with pytest.raises(ValueError, match="^checkpoint: .* corrupt"):
        pgfast.load_checkpoint(tmp_path)


def test_configs_and_normalizers_check_their_input():
    with pytest.raises(ValueError, match="^config: LinearSoftmax takes"):
        pgfast.from_config({"class": "LinearSoftmax", "obs_dim": 4, "n_actions": 2,
                            "hidden": [4]})
    with pytest.raises(TypeError, match=r"^config\['hidden'\]:"):
        pgfast.from_config({"class": "MLPSoftmax", "obs_dim": 4, "n_actions": 2,
                            "hidden": 4.0})
    with pytest.raises(TypeError, match="^obs_dim:"):
        pgfast.ObservationNormalizer("3")
    normalizer = pgfast.ObservationNormalizer(2)
    with pytest.raises(ValueError, match=r"^obs: expected shape \(\.\.\., 2\)"):
        normalizer.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="^obs: the running variance is not finite"):
        normalizer.update(np.array([[1e308, 0.0], [-1e308, 0.0]]))
    assert normalizer.count == 0 and np.array_equal(normalizer.var, [1.0, 1.0])


def test_extreme_parameters_give_named_errors_not_infinities():
    gaussian = pgfast.LinearGaussian(1, 1)
    theta = np.array([1e308, 0.0, 0.0])   # mean 1e308 · 1e308
    with pytest.raises(ValueError, match="^theta, obs: the mode"):
        gaussian.mode(theta, np.array([[1e308]]))
    with pytest.raises(ValueError, match="^theta, obs: a sampled action"):
        # μ at the float64 limit, σ = e^709: μ + σ z overflows for the rows with z > 0
        gaussian.sample(np.array([0.0, 1.7976931348623157e308, 709.0]), np.ones((8, 1)),
                        np.random.default_rng(0))
    problem = pgfast.Problem("CartPole-v1", gamma=0.99, horizon=20)
    tiny = pgfast.FiniteDifferenceGradient(problem, pgfast.LinearSoftmax(4, 2), m=1,
                                           delta=5e-324)
    with pytest.raises(ValueError, match="^delta: the difference quotient"):
        tiny.gradient(np.zeros(10), np.random.default_rng(0))


@pytest.mark.parametrize("setting", ["eval_every=inf", "k_max=2.5", "m=nan"])
def test_cli_settings_that_are_not_counts_exit_with_a_message(setting, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "CartPole-v1", "--set", setting, "--quiet"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        f"--set {setting.split('=')[0]}: expected a value like "
        f"{pgfast.defaults.GENERIC[setting.split('=')[0]]}, got '{setting.split('=')[1]}'")


def test_eval_refuses_damaged_kept_parameters_and_ctrl_c_exits_quietly(tmp_path, capsys,
                                                                      monkeypatch):
    out = tmp_path / "run"
    assert cli_main(["train", "--out", str(out), "--quiet", "--eval-episodes", "2"]) == 0
    kept = out / "policy.npz"
    intact = kept.read_bytes()
    kept.write_bytes(intact[: len(intact) // 2])   # torn
    with pytest.raises(SystemExit, match="2"):
        cli_main(["eval", str(out), "--episodes", "2"])
    assert "policy: " in capsys.readouterr().err
    kept.write_bytes(intact)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pgfast.training, "evaluate", interrupted)
    assert cli_main(["eval", str(out), "--episodes", "2"]) == 130
    assert capsys.readouterr().err.strip() == "pgfast eval: interrupted"


@pytest.mark.parametrize("name, call", [
    ("normalize_observations", lambda p, s, t: pgfast.Problem("CartPole-v1",
                                                              normalize_observations="no")),
    ("central", lambda p, s, t: pgfast.FiniteDifferenceGradient(p, s, central="no")),
    ("common_random_numbers",
     lambda p, s, t: pgfast.FiniteDifferenceGradient(p, s, common_random_numbers=0.5)),
    ("baseline", lambda p, s, t: pgfast.NaturalPolicyUpdate(p, s, baseline="no")),
    ("normalize_advantages",
     lambda p, s, t: pgfast.ClampedSurrogateUpdate(p, s, normalize_advantages=None)),
    ("learn_std", lambda p, s, t: pgfast.LinearGaussian(2, 1, learn_std="no")),
    ("deterministic", lambda p, s, t: pgfast.evaluate(p, s, t, episodes=1,
                                                      deterministic="no")),
    ("deterministic", lambda p, s, t: pgfast.rollout(pgfast.make_vec("CartPole-v1"), s, t, 5,
                                                     0, deterministic="no")),
    ("first_episode", lambda p, s, t: pgfast.rollout(pgfast.make_vec("CartPole-v1"), s, t, 5,
                                                     0, first_episode=1)),
    ("progress", lambda p, s, t: pgfast.train(pgfast.ClampedSurrogateUpdate(p, s, m=1), t,
                                              iterations=1, progress="no")),
])
def test_flags_take_bools_not_truthy_values(name, call, cartpole, softmax):
    """"no", 0.5 or None for a flag is refused by name, not read as truthy."""
    theta = softmax.init(np.random.default_rng(0))
    with pytest.raises(TypeError, match=f"^{name}: expected a bool"):
        call(cartpole, softmax, theta)


# ------------------------------------------------ issue 26: silent non-finite results
def test_rollout_refuses_log_probs_that_overflow():
    """θ at ±1.7e308 gave log_probs with most entries NaN, silently."""
    theta = np.full(10, 1.7e308)
    theta[::2] *= -1
    with pytest.raises(ValueError, match="^theta: log π of the action of slot"):
        pgfast.rollout(pgfast.make_vec("CartPole-v1", num_envs=2), pgfast.LinearSoftmax(4, 2),
                       theta, 32, np.random.default_rng(0))


class _ScriptedEnv(gym.Env):
    """A Gymnasium env whose reset and step return what the test gives it."""
    observation_space = gym.spaces.Box(-1.0, 1.0, (4,))
    action_space = gym.spaces.Discrete(2)

    def __init__(self, obs=np.zeros(4), reward=1.0, reset_obs=np.zeros(4)):
        self.obs, self.reward, self.reset_obs = obs, reward, reset_obs

    def reset(self, seed=None, options=None):
        return self.reset_obs, {}

    def step(self, action):
        return self.obs, self.reward, False, False, {}


@pytest.mark.parametrize("env, error, message", [
    (_ScriptedEnv(reward=float("nan")), ValueError, "the reward from step.. is not finite"),
    (_ScriptedEnv(reward=None), TypeError, "the reward from step.. is None"),
    (_ScriptedEnv(reward=[1.0, 2.0]), ValueError, "the reward from step.. has 2 values"),
    (_ScriptedEnv(obs=np.full(4, np.inf)), ValueError, "the observation from step.. is not"),
    (_ScriptedEnv(obs=np.zeros(3)), ValueError, r"the observation from step.. has 3 values"),
    (_ScriptedEnv(reset_obs=np.zeros(3)), ValueError, "the observation from reset.. has 3"),
    (_ScriptedEnv(obs="abcd"), TypeError, "the observation from step.. is 'abcd'"),
    (_ScriptedEnv(obs=[0.0, None, 0.0, 0.0]), TypeError, "the observation from step.. is"),
])
def test_a_python_env_returning_nan_none_or_wrong_shapes_is_named(env, error, message):
    """A NaN or None reward passed into the rollout as NaN; a wrong-shaped observation
    gave NumPy's "cannot reshape array of size 3 into shape (1,4)"."""
    with pytest.raises(error, match=f"^env: {message}"):
        pgfast.rollout(env, pgfast.LinearSoftmax(4, 2), np.zeros(10), 5,
                       np.random.default_rng(0))


@pytest.mark.parametrize("make", [lambda: pgfast.make_vec("CartPole-v1", num_envs=2),
                                  lambda: pgfast.NativeEnv("CartPole-v1")])
def test_reset_options_are_checked_by_name(make):
    env = make()
    with pytest.raises(TypeError, match="^options: expected a dict or None, got str"):
        env.reset(seed=0, options="str")
    with pytest.raises(ValueError, match="^options: .*not finite"):   # U(−1e308, 1e308)
        env.reset(seed=0, options={"low": -1e308, "high": 1e308})
    with pytest.raises(ResetNeeded):   # the unusable state is not stepped
        env.step(env.action_space.sample())
    with pytest.raises(ValueError, match="^options: Lower bound"):
        env.reset(seed=0, options={"low": 1e308})
    obs, _ = env.reset(seed=0, options={"low": -0.01, "high": 0.01})
    assert np.all(np.abs(obs) <= 0.01)


def test_the_regulator_refuses_overflow_by_name_without_warnings():
    """θ ≈ 1e300 returned −inf / NaN with only NumPy's RuntimeWarning."""
    theta = np.array([1e300, 0.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"^theta: U\(θ\) is not finite"):
            pgfast.regulator_utility(theta, 10)
        with pytest.raises(ValueError, match=r"^theta: ∇U\(θ\) is not finite"):
            pgfast.regulator_gradient(theta, 10)


# ------------------------------------------------ issue 26: runaway copies
ROWS = 2**40   # a broadcast view of 2**40 rows holds 8 bytes and would copy 8 TiB


def _view(shape, dtype=np.float64):
    return np.broadcast_to(np.zeros(1, dtype), shape)


@pytest.mark.parametrize("name, call", [
    ("rewards", lambda: pgfast.reward_to_go(_view((ROWS,)), 0.9)),
    ("rewards", lambda: pgfast.gae(_view((ROWS,)), _view((ROWS,)), _view((ROWS,)), 0.9, 0.9)),
    ("rewards", lambda: pgfast.episode_stats(_view((ROWS,)), _view((ROWS,), bool))),
    ("terminated", lambda: pgfast.discount_powers(_view((ROWS,), bool), None, 0.9)),
    *((("grad_log_probs", lambda mode=mode: pgfast.likelihood_ratio_gradient(
        _view((ROWS, 1, 3)), _view((ROWS, 1)), 0.9, mode=mode)))
      for mode in ("trajectory", "reward_to_go", "baseline")),
    ("grad_log_probs", lambda: pgfast.optimal_baseline(_view((ROWS, 3)), _view((ROWS,)), 0.9)),
    ("dtheta", lambda: pgfast.regression_gradient(_view((ROWS, 3)), _view((ROWS,)))),
    ("obs", lambda: pgfast.LinearSoftmax(4, 2).log_prob(np.zeros(10), _view((ROWS, 4)),
                                                        np.zeros(1, int))),
])
def test_huge_broadcast_views_are_refused_before_any_copy(name, call):
    """A stride-0 view was copied: MemoryError for 24–48 GiB, or a process that grew
    until it was killed. The size check counts the elements a view shows."""
    with pytest.raises(ValueError, match=f"^{name}: .*GiB, more than the"):
        call()


def test_a_huge_view_of_another_shape_is_refused_by_its_shape_before_any_copy():
    """(A view of rewards' shape is counted with rewards, above.)"""
    with pytest.raises(ValueError, match=r"^values: expected shape \(3,\)"):
        pgfast.gae(np.zeros(3), _view((ROWS,)), np.zeros(3), 0.9, 0.9)
    with pytest.raises(ValueError, match=r"^next_values: expected shape \(3,\)"):
        pgfast.reward_to_go(np.zeros(3), 0.9, next_values=_view((ROWS,)))


def test_the_memory_check_honours_the_address_space_limit(tmp_path):
    """2**31 rows (16 GiB a copy) under ``ulimit -v`` of 2 GiB: refused, not attempted."""
    code = textwrap.dedent("""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        import numpy as np, pgfast
        view = np.broadcast_to(np.zeros(1), (2**31,))
        try:
            pgfast.reward_to_go(view, 0.9)
        except ValueError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)   # not the checkout: it would shadow
    assert out.stdout.startswith("rewards: computing the reward-to-go needs 36 GiB"), out


# ------------------------------------------------ issue 26: errors that name the culprit
RAGGED = [[1.0], [1.0, 2.0]]


def _reset(env):
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("name, call", [
    ("rewards", lambda: pgfast.reward_to_go(RAGGED, 0.9)),
    ("next_values", lambda: pgfast.reward_to_go([1.0, 2.0], 0.9, next_values=RAGGED)),
    ("terminated", lambda: pgfast.reward_to_go([1.0, 2.0], 0.9, RAGGED)),
    ("truncated", lambda: pgfast.reward_to_go([1.0, 2.0], 0.9, None, RAGGED)),
    ("values", lambda: pgfast.gae([1.0, 2.0], RAGGED, [1.0, 2.0], 0.9, 0.9)),
    ("next_values", lambda: pgfast.gae([1.0, 2.0], [1.0, 2.0], RAGGED, 0.9, 0.9)),
    ("terminated", lambda: pgfast.discount_powers(RAGGED, None, 0.9)),
    ("truncated", lambda: pgfast.episode_stats([1.0, 2.0], [0, 1], RAGGED)),
    ("grad_log_probs", lambda: pgfast.likelihood_ratio_gradient(RAGGED, [1.0, 2.0], 0.9)),
    ("rewards", lambda: pgfast.optimal_baseline([[1.0], [2.0]], RAGGED, 0.9)),
    ("dtheta", lambda: pgfast.regression_gradient(RAGGED, [1.0, 2.0])),
    ("du", lambda: pgfast.regression_gradient([[1.0], [2.0]], RAGGED)),
    ("obs", lambda: pgfast.LinearValue(1).value(np.zeros(2), RAGGED)),
    ("grad", lambda: pgfast.scale_gradient(RAGGED, 1.0)),
    ("actions", lambda: _reset(pgfast.make_vec("Pendulum-v1", num_envs=2)).step(RAGGED)),
    ("action", lambda: _reset(pgfast.NativeEnv("Pendulum-v1")).step(RAGGED)),
    ("options['reset_mask']", lambda: _reset(pgfast.make_vec("CartPole-v1", num_envs=2)).reset(
        options={"reset_mask": RAGGED})),
])
def test_ragged_nested_lists_are_refused_by_name(name, call):
    """NumPy's "setting an array element with a sequence" named no argument."""
    with pytest.raises((ValueError, TypeError), match=f"^{re.escape(name)}: "):
        call()


@pytest.mark.parametrize("name, call", [
    ("obs", lambda p: p.log_prob(np.ones(3), np.full((2, 1), 1e308), np.zeros((2, 1)))),
    ("actions", lambda p: p.log_prob(np.ones(3), np.ones((2, 1)), np.full((2, 1), 1e308))),
    ("obs", lambda p: p.mode(np.array([2.0, 0.0, 0.0]), np.full((2, 1), 1e308))),
    ("weights", lambda p: p.grad_log_prob(np.ones(3), np.ones((2, 1)), np.full((2, 1), 50.0),
                                          weights=np.full(2, 1e308))),
    ("obs", lambda p: pgfast.LinearValue(1).value(np.array([2.0, 0.0]),
                                                  np.full((2, 1), 1e308))),
    ("targets", lambda p: pgfast.LinearValue(1).loss_and_grad(np.ones(2), np.ones((2, 1)),
                                                              np.full(2, 1e308))),
])
def test_an_extreme_input_is_named_not_theta(name, call):
    """Extreme observations, actions, weights or targets were blamed on θ/φ."""
    with pytest.raises(ValueError, match=f"^{name}, .*not finite.*in {name}\\)"):
        call(pgfast.LinearGaussian(1, 1))


@pytest.mark.parametrize("name, make", [
    ("n_actions", lambda: pgfast.LinearSoftmax(4, n_actions=2**40)),
    ("obs_dim", lambda: pgfast.MLPSoftmax(obs_dim=2**40, n_actions=2)),
    ("act_dim", lambda: pgfast.MLPGaussian(3, 2**40, hidden=(4,))),
    ("hidden", lambda: pgfast.MLPValue(4, hidden=(2**40,))),
])
def test_a_network_too_large_names_its_largest_size(name, make):
    with pytest.raises(ValueError, match=f"^{name}: a network of"):
        make()


def test_objects_of_the_wrong_kind_are_refused_by_name(cartpole, softmax):
    env = pgfast.make_vec("CartPole-v1", num_envs=2)
    with pytest.raises(TypeError, match="^policy: expected a pgfast policy"):
        pgfast.rollout(env, pgfast.LinearValue(4), np.zeros(5), 5, np.random.default_rng())
    for cls in (pgfast.NaturalPolicyUpdate, pgfast.TrustRegionUpdate,
                pgfast.ClampedSurrogateUpdate):   # at construction, not the first update
        with pytest.raises(ValueError, match="^value_fn: expects 3 observation values"):
            cls(cartpole, softmax, m=2, value_fn=pgfast.LinearValue(3))
    with pytest.raises(ValueError, match=r"^value_params: expected shape \(5,\)"):
        pgfast.GAEGradient(cartpole, softmax, 2, value_params=np.zeros(3))
    with pytest.raises(ValueError, match=r"^params: expected shape \(5,\)"):
        pgfast.ValueBaseline(pgfast.LinearValue(4), params=np.zeros(3))


@pytest.mark.parametrize("policy", [pgfast.LinearSoftmax(4, 2), pgfast.MLPSoftmax(4, 2, (3,)),
                                    pgfast.LinearGaussian(4, 2), pgfast.MLPGaussian(4, 2, (3,))])
def test_entropy_grad_into_checks_its_observations(policy):
    theta, grad = np.zeros(policy.n_params), np.zeros(policy.n_params)
    for obs, message in [(np.zeros((3, 5)), r"^obs: expected shape \(3, 4\)"),
                         (np.zeros((3, 3)), r"^obs: expected shape \(3, 4\)"),
                         (np.zeros((0, 4)), "^obs: the mean entropy needs at least one")]:
        with pytest.raises(ValueError, match=message):
            policy.kernel.entropy_grad_into(theta, obs, grad)
    with pytest.raises(ValueError, match="^grad: expected shape"):
        policy.kernel.entropy_grad_into(theta, np.zeros((3, 4)), np.zeros(policy.n_params + 1))


def test_callback_checks_for_train():
    """For train's callback: a wrong arity, or a verdict without a truth value (an
    array), named rather than Python's own TypeError / ValueError."""
    from pgfast._validation import callback_verdict, check_callback

    with pytest.raises(TypeError, match=r"^callback: expected a function of \(iteration"):
        check_callback(lambda i, theta: None)
    assert check_callback(print) is print and check_callback(None) is None
    with pytest.raises(TypeError, match="^callback: expected it to return None, True"):
        callback_verdict(np.array([True, False]))
    assert callback_verdict(None) and callback_verdict(True) and not callback_verdict(False)


# ------------------------------------------------ issue 26: the CLI
def _damaged_buffers(folder):
    good = folder / "good.npz"
    np.savez(good, rewards=np.ones(4))
    data = good.read_bytes()
    files = {"truncated.npz": data[: len(data) // 2], "empty.npz": b""}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    np.save(folder / "single.npy", np.ones(3))
    with open(folder / "pickled.npz", "wb") as f:
        pickle.dump({"rewards": [1.0]}, f)
    np.savez(folder / "objects.npz", rewards=np.array([1.0, None], dtype=object))
    np.savez(folder / "norewards.npz", values=np.ones(2))
    return ["truncated.npz", "empty.npz", "single.npy", "pickled.npz", "objects.npz",
            "norewards.npz", "missing.npz"]


def test_cli_returns_names_a_damaged_buffer(tmp_path, capsys):
    """A truncated or empty .npz printed a traceback; others named neither file nor array."""
    for name in _damaged_buffers(tmp_path):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(["returns", str(tmp_path / name), "--out", str(tmp_path / "out.npz")])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1, (name, err)
        assert err[0].startswith("pgfast returns: error: buffer: ") and name in err[0], err
    with pytest.raises(SystemExit):
        cli_main(["returns", str(tmp_path / "objects.npz")])
    assert "array 'rewards' of" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--seed", "-1"], ["eval", "somewhere", "--seed",
                                                                 "-1"]])
def test_cli_negative_seed_names_the_option(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith(
        "error: argument --seed: expected an integer >= 0, got -1")


@pytest.mark.parametrize("module, argv, message", [
    ("mujoco", ["train", "Hopper-v5"], 'mujoco: not installed; the MuJoCo envs need it: '
                                       'pip install "pgfast[mujoco]"'),
    ("ray", ["train", "CartPole-v1", "--workers", "2"], 'ray: not installed; --workers needs '
                                                        'it: pip install "pgfast[ray]"'),
    ("imageio", ["train", "Pusher-v5"], "imageio: not installed; Gymnasium's MuJoCo envs "
                                        'need it: pip install "gymnasium[mujoco]"'),
])
def test_cli_missing_extra_is_one_line(module, argv, message, tmp_path):
    """Each gave a 34–61-line traceback and exit status 1. The library is hidden from a
    child process (None in sys.modules makes its import fail, as when not installed)."""
    if module == "imageio" and not pgfast.mujoco.available():
        pytest.skip("Gymnasium's Pusher-v5 reaches its imageio import only with MuJoCo")
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from pgfast.cli import main\n"
            f"sys.exit(main({argv + ['--steps', '300', '--quiet', '--out', str(tmp_path / 'r')]!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 2, out
    assert out.stderr.strip() == f"pgfast train: error: {message}", out.stderr
