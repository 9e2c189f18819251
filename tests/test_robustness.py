"""Bad input at the public boundary: counts no machine can serve, sizes that
overflow, results that overflow from finite inputs. Each gives a ValueError or
TypeError naming the argument, at once (no work is started)."""
import numpy as np
import pytest

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
        pgfast.StopWhenSolved(cartpole, softmax, None, rng)
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
    with pytest.raises(ValueError, match="^theta: the mode"):
        gaussian.mode(theta, np.array([[1e308]]))
    with pytest.raises(ValueError, match="^theta: a sampled action"):
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
