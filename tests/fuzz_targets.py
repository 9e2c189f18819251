"""Fuzz targets over pgfast's public API, run by ``test_fuzz.py`` in a child process
(``python fuzz_targets.py TARGET EXAMPLES LASTFILE``) so that a crash fails a test
instead of the run.

Every call must end in one of two ways: a finite result, or a ValueError/TypeError
whose message starts with the name of an argument ("rewards: expected ...").
Before each call the case is written to LASTFILE, so a crash names the input.
"""
import contextlib
import datetime
import functools
import io
import pickle
import re
import resource
import sys
import tempfile
from pathlib import Path

import gymnasium as gym
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgfast
import pgfast.cli
import pgfast.mujoco

LAST = None
NAMED = re.compile(r"^[A-Za-z_][\w\[\]'\"., ]*:")   # "theta:", "params['W0']:", "out:"

EXTREMES = [0.0, -0.0, 1.0, -1.0, 1e-308, 5e-324, 1e308, -1e308, 1.7e308, 1e39,
            np.nan, np.inf, -np.inf]
floats = st.one_of(st.floats(-1e6, 1e6), st.sampled_from(EXTREMES))
# Finite values only: well-formed inputs, on which a result must be finite or an error.
finite = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([x for x in EXTREMES if np.isfinite(x)]
                                                         + [-1e39, 1e154, -1e154]))
dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128,
                          object, "U3", np.uint64])
counts = st.one_of(st.integers(-3, 6), st.sampled_from([2**31, 2**63, 10**30]))
# Values of the wrong kind for any argument: the public API must refuse them by name.
ODD = [None, True, "0.1", b"1", 1 + 2j, datetime.datetime(2026, 1, 1), [1, 2], {"a": 1},
       object()]
hyper = st.one_of(floats, counts, st.sampled_from(ODD), st.text(max_size=3))
odd_thetas = st.sampled_from(ODD + ["abc", b"abc", [[1.0], [1.0, 2.0]], {"W0": [1.0]},
                                   np.array(["1", "2"]), np.zeros(3, complex)])


def arrays(shape_dims=(0, 3), max_side=5):
    """Arrays of any listed dtype and rank, elements drawn from `floats`."""
    @st.composite
    def build(draw):
        ndim = draw(st.integers(*shape_dims))
        shape = tuple(draw(st.integers(0, max_side)) for _ in range(ndim))
        values = np.array(draw(st.lists(floats, min_size=int(np.prod(shape)),
                                        max_size=int(np.prod(shape)))), dtype=float)
        dtype = draw(dtypes)
        with np.errstate(all="ignore"):
            try:
                return values.reshape(shape).astype(dtype)
            except (ValueError, TypeError, OverflowError):
                return values.reshape(shape)
    return build()


CALLS = {"results": 0, "errors": 0}   # printed at the end: how broad the run was


def grid(data, shape, elements=None):
    """A float64 array of `shape` drawn from `elements` (finite extremes by default)."""
    size = int(np.prod(shape))
    values = data.draw(st.lists(elements or finite, min_size=size, max_size=size))
    return np.array(values, dtype=float).reshape(shape)


def checked_call(label, fn, *args, **kwargs):
    """Run fn, recording the case first; assert the outcome is one of the two allowed."""
    with open(LAST, "w") as f:
        f.write(f"{label}: args={args!r} kwargs={kwargs!r}"[:4000])
    try:
        with np.errstate(all="ignore"):
            result = fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        assert NAMED.match(str(exc)), f"{label}: an error that names no argument: {exc!r}"
        CALLS["errors"] += 1
        return None
    CALLS["results"] += 1
    for part in result if isinstance(result, tuple) else (result,):
        arr = np.asarray(part)
        if arr.dtype.kind in "fc":
            assert np.isfinite(arr).all(), f"{label}: a silent non-finite result {arr!r}"
    return result


def target_returns(n):
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data(), st.booleans())
    def run(data, wellformed):
        if wellformed:   # (T, B) buffers of finite extremes, γ and λ in [0, 1]
            shape = (data.draw(st.integers(1, 6)), data.draw(st.integers(1, 3)))
            rewards, values = grid(data, shape), grid(data, shape)
            flags_a, flags_b = (grid(data, shape, st.sampled_from([0.0, 1.0])).astype(bool)
                                for _ in range(2))
            gamma, lam = data.draw(st.floats(0, 1)), data.draw(st.floats(0, 1))
        else:
            rewards, values, flags_a, flags_b = (data.draw(arrays()) for _ in range(4))
            gamma = data.draw(st.one_of(floats, st.text(max_size=2)))
            lam = data.draw(floats)
        checked_call("reward_to_go", pgfast.reward_to_go, rewards, gamma, flags_a, flags_b)
        checked_call("reward_to_go+next", pgfast.reward_to_go, rewards, gamma, None, flags_b,
                     next_values=values)
        checked_call("gae", pgfast.gae, rewards, values, values, gamma, lam, flags_a, flags_b)
        checked_call("discount_powers", pgfast.discount_powers, flags_a, flags_b, gamma)
        checked_call("episode_stats", pgfast.episode_stats, rewards, flags_a, flags_b)
    run()


POLICIES = [lambda: pgfast.LinearSoftmax(3, 2), lambda: pgfast.MLPSoftmax(3, 4, hidden=(5,)),
            lambda: pgfast.LinearGaussian(3, 2), lambda: pgfast.MLPGaussian(3, 1, hidden=(4,)),
            lambda: pgfast.LinearValue(3), lambda: pgfast.MLPValue(3, hidden=(4,))]


def target_policies(n):
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data(), st.sampled_from(range(len(POLICIES))), st.booleans(), floats,
           st.integers(0, 2**32))
    def run(data, which, wellformed, scale, seed):
        policy = POLICIES[which]()
        rng = np.random.default_rng(seed)
        good = policy.init(rng)
        if wellformed:   # θ of the right size scaled to extremes; batches of finite extremes
            with np.errstate(all="ignore"):
                theta = good * data.draw(finite)
            n = data.draw(st.integers(1, 4))
            obs = grid(data, (n, policy.obs_dim))
            if getattr(policy, "discrete", False):
                actions = np.array(data.draw(st.lists(st.integers(0, policy.n_actions - 1),
                                                      min_size=n, max_size=n)))
            else:
                actions = grid(data, (n, getattr(policy, "act_dim", 1)))
        else:
            theta, obs, actions = (data.draw(arrays(dims, side))
                                   for dims, side in (((1, 1), 40), ((1, 2), 5), ((1, 2), 5)))
            # Half these cases use a θ of the right size, scaled to anything.
            if seed % 2 and np.asarray(theta).dtype.kind == "f":
                with np.errstate(all="ignore"):
                    theta = good * scale
        if hasattr(policy, "value"):
            checked_call("value", policy.value, theta, obs)
            checked_call("loss_and_grad", policy.loss_and_grad, theta, obs, actions[:, 0]
                         if wellformed else actions)
            return
        checked_call("sample", policy.sample, theta, obs, rng)
        checked_call("mode", policy.mode, theta, obs)
        checked_call("log_prob", policy.log_prob, theta, obs, actions)
        checked_call("grad_log_prob", policy.grad_log_prob, theta, obs, actions)
        checked_call("grad_log_prob+w", policy.grad_log_prob, theta, obs, actions,
                     weights=np.ones(len(np.atleast_2d(obs))))
        checked_call("kl", policy.kl, good, theta, obs)
        checked_call("entropy", policy.entropy, theta, obs)
        checked_call("entropy_grad", policy.entropy_grad, theta, obs)
        checked_call("fvp", policy.fisher_vector_product, theta, obs, good)
        checked_call("fisher", policy.fisher, theta, obs)
    run()


def target_gradients(n):
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data(), st.booleans())
    def run(data, wellformed):
        if wellformed:   # (T, B, P) scores, (T, B) rewards and flags of finite extremes
            t, b, p = (data.draw(st.integers(1, 4)) for _ in range(3))
            scores, rewards = grid(data, (t, b, p)), grid(data, (t, b))
            flags = grid(data, (t, b), st.sampled_from([0.0, 1.0])).astype(bool)
            gamma = data.draw(st.floats(0, 1))
            dtheta, du = grid(data, (t, p)), grid(data, (t,))
        else:
            scores, rewards, flags = (data.draw(arrays(dims))
                                      for dims in ((2, 3), (1, 2), (0, 3)))
            gamma = data.draw(floats)
            dtheta, du = rewards, scores
        checked_call("likelihood_ratio_gradient", pgfast.likelihood_ratio_gradient,
                     scores, rewards, gamma, flags)
        checked_call("optimal_baseline", pgfast.optimal_baseline, scores, rewards, gamma)
        checked_call("regression_gradient", pgfast.regression_gradient, dtheta, du)
    run()


def target_sizes(n):
    """Counts, sizes and thread numbers, including ones no machine can serve."""
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(counts, counts, counts)
    def run(a, b, c):
        rng = np.random.default_rng(0)
        checked_call("make_vec", pgfast.make_vec, "CartPole-v1", num_envs=a)
        checked_call("Problem", pgfast.Problem, "CartPole-v1", horizon=a)
        checked_call("MLPSoftmax", pgfast.MLPSoftmax, 4, 2, hidden=(a, b))
        checked_call("evaluate", pgfast.evaluate, "CartPole-v1", policy, theta,
                     episodes=a, rng=rng)
        obs = np.zeros((3, 4))
        checked_call("grad_log_prob threads", policy.grad_log_prob, theta, obs,
                     np.zeros(3, int), num_threads=b)
        env = pgfast.make_vec("CartPole-v1", num_envs=2)
        checked_call("rollout", pgfast.rollout, env, policy, theta, a, rng, num_threads=c,
                     time_limit=b if b != 0 else None)
    run()


ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
           "Pendulum-v1", "SimpleRegulator-v0"]
if pgfast.mujoco.available():
    ENV_IDS += ["InvertedPendulum-v5", "Hopper-v5"]


def target_envs(n):
    """Native env steps with actions of any dtype, shape and size (1e308 included)."""
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.booleans(), arrays((0, 2), 3), floats, st.integers(1, 3), st.integers(0, 2**32))
    def run(right_shape, actions, scale, repeat, seed):
        for env_id in ENV_IDS:
            vec = pgfast.make_vec(env_id, num_envs=2, max_episode_steps=50)
            vec.reset(seed=seed)
            one = pgfast.NativeEnv(env_id)
            one.reset(seed=seed)
            step_actions = actions
            if right_shape:   # actions of the space's shape, scaled to extremes
                vec.action_space.seed(seed)
                with np.errstate(all="ignore"):
                    step_actions = vec.action_space.sample() * scale
            for _ in range(repeat):   # an extreme action's state carries into the next step
                checked_call("VectorEnv.step", vec.step, step_actions)
                checked_call("Env.step", one.step,
                             step_actions[0] if right_shape else step_actions)
    run()


def target_optim(n):
    """Adam, conjugate gradient, gradient scaling and clipping on anything."""
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data(), st.booleans(), st.integers(0, 4), hyper, hyper)
    def run(data, wellformed, size, a, b):
        if wellformed:   # vectors of finite extremes, arguments in range
            theta, grad = grid(data, (size,)), grid(data, (size,))
            a, b = data.draw(st.floats(1e-6, 1e3)), data.draw(st.floats(1e-6, 1e3))
            matrix = grid(data, (size, size), st.floats(-1e3, 1e3))
            matrix = matrix @ matrix.T + np.eye(size)   # symmetric positive definite
        else:
            theta, grad, matrix = (data.draw(arrays()) for _ in range(3))
        adam = checked_call("Adam", pgfast.Adam, size if wellformed else a, alpha=b)
        if adam is not None:
            for _ in range(2):
                checked_call("Adam.step", adam.step, theta, grad)
        checked_call("scale_gradient", pgfast.scale_gradient, grad, a)
        low = -a if isinstance(a, (int, float)) else a
        checked_call("clip_gradient", pgfast.clip_gradient, grad, low, b)
        checked_call("conjugate_gradient", pgfast.conjugate_gradient,
                     lambda v: matrix @ v, grad, iterations=size if wellformed else a,
                     tol=0.0 if wellformed else b)
    run()


PROBLEM_IDS = ["CartPole-v1", "Pendulum-v1"]
PROBLEM_POLICIES = [lambda: pgfast.LinearSoftmax(4, 2),
                    lambda: pgfast.MLPSoftmax(4, 2, hidden=(4,)),
                    lambda: pgfast.LinearGaussian(3, 1),
                    lambda: pgfast.MLPGaussian(3, 1, hidden=(4,)),
                    lambda: None]


@st.composite
def problem_cases(draw):
    """An env id, a policy and a θ. Well-formed: a policy that fits, θ of its size
    scaled to finite extremes. Otherwise a policy that may not fit (or None) and θ of
    any size, scaled to anything, or an array of any dtype, or no array at all."""
    env_id = draw(st.sampled_from(PROBLEM_IDS))
    if draw(st.booleans()):
        fits = [0, 1] if env_id == "CartPole-v1" else [2, 3]
        policy = PROBLEM_POLICIES[draw(st.sampled_from(fits))]()
        with np.errstate(all="ignore"):
            return env_id, policy, policy.init(np.random.default_rng(0)) * draw(finite)
    policy = draw(st.sampled_from(PROBLEM_POLICIES))()
    theta = draw(st.one_of(arrays((0, 2), 12), odd_thetas))
    if policy is not None and draw(st.booleans()):
        with np.errstate(all="ignore"):
            theta = policy.init(np.random.default_rng(0)) * draw(floats)
    return env_id, policy, theta


ESTIMATORS = [(pgfast.FiniteDifferenceGradient, "delta"), (pgfast.RegressionGradient, "delta"),
              (pgfast.LikelihoodRatioGradient, None), (pgfast.RewardToGoGradient, None),
              (pgfast.BaselineSubtractionGradient, None), (pgfast.GAEGradient, "lam")]


def target_estimators(n):
    """Problems, the six estimators, U(θ) and evaluation, with any argument wrong."""
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(problem_cases(), st.sampled_from(range(len(ESTIMATORS))),
           st.one_of(st.floats(0, 1), hyper), st.one_of(st.integers(1, 30), hyper),
           st.one_of(st.integers(1, 3), hyper), st.one_of(st.floats(1e-3, 1), hyper),
           st.integers(0, 2**32))
    def run(case, which, gamma, horizon, m, extra, seed):
        env_id, policy, theta = case
        rng = np.random.default_rng(seed)
        problem = checked_call("Problem", pgfast.Problem, env_id, gamma=gamma, horizon=horizon)
        if problem is None:
            return
        cls, name = ESTIMATORS[which]
        estimator = checked_call(cls.__name__, cls, problem, policy, m,
                                 **({name: extra} if name else {}))
        if estimator is not None:
            checked_call(f"{cls.__name__}.gradient", estimator.gradient, theta, rng)
        checked_call("utility", pgfast.utility, problem, policy, theta, m, rng)
        checked_call("evaluate", pgfast.evaluate, problem, policy, theta, episodes=m, rng=rng,
                     horizon=horizon)
    run()


UPDATE_ARGS = {
    pgfast.PolicyGradientUpdate: ["alpha", "max_grad_norm", "grad_clip", "optimizer"],
    pgfast.RestrictedPolicyUpdate: ["m", "epsilon"],
    pgfast.NaturalPolicyUpdate: ["m", "epsilon", "advantages", "lam", "value_epochs",
                                 "value_lr", "value_minibatch", "scale_rewards", "fisher",
                                 "solver", "damping", "cg_iterations", "fisher_subsample"],
    pgfast.TrustRegionUpdate: ["m", "epsilon", "backtrack_ratio", "max_backtracks",
                               "damping", "cg_iterations"],
    pgfast.ClampedSurrogateUpdate: ["m", "clip", "alpha", "k_max", "advantages", "lam",
                                    "value_epochs", "normalize_advantages",
                                    "minibatches", "optimizer", "max_grad_norm",
                                    "target_kl", "entropy_coef", "anneal_steps"],
}
UPDATES = sorted(UPDATE_ARGS, key=lambda cls: cls.__name__)
words = st.sampled_from(["sgd", "adam", "gae", "none", "dense", "cg", "auto", "analytic",
                         "empirical"])


def target_updates(n):
    """The five updates, one argument at a time set to anything, then two updates."""
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(problem_cases(), st.sampled_from(range(len(UPDATES))), st.integers(0, 20),
           st.one_of(hyper, words, st.floats(1e-4, 1)), st.integers(0, 2**32))
    def run(case, which, arg, value, seed):
        env_id, policy, theta = case
        rng = np.random.default_rng(seed)
        problem = pgfast.Problem(env_id, gamma=0.99, horizon=30)
        cls = UPDATES[which]
        names = UPDATE_ARGS[cls]
        kwargs = {names[arg % len(names)]: value}
        if cls is pgfast.PolicyGradientUpdate:
            estimator = checked_call("estimator", pgfast.RewardToGoGradient, problem, policy, 2)
            if estimator is None:
                return
            update = checked_call(cls.__name__, cls, estimator, **kwargs)
        else:
            update = checked_call(cls.__name__, cls, problem, policy, **{"m": 2, **kwargs})
        for _ in range(2):   # the second update starts from the first one's state
            if update is None:
                return
            result = checked_call(f"{cls.__name__}.update", update.update, theta, rng)
            if result is None:
                return
            theta = result[0]
    run()


def same_state(a, b):
    """Nested state dicts equal leaf by leaf (arrays by value and dtype)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_state(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and \
            a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def target_checkpoints(n):
    """A saved checkpoint with bytes flipped, cut, added or spliced from another save:
    loading gives the saved state exactly or a clear error, never mixed state."""
    folder = Path(tempfile.mkdtemp())
    policy = pgfast.LinearSoftmax(4, 2)
    update = pgfast.ClampedSurrogateUpdate(pgfast.Problem("CartPole-v1", horizon=20), policy,
                                           m=2)
    saves = []
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        theta, _ = update.update(policy.init(rng), rng)
        pgfast.save_checkpoint(folder, theta, update, {"steps": np.array([seed])}, rng)
        saves.append((pgfast.load_checkpoint(folder, update),
                       (folder / "checkpoint.npz").read_bytes()))
    good, other = saves[0][1], saves[1][1]

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["flip", "cut", "add", "zero", "splice"]),
           st.integers(0, len(good) - 1), st.integers(1, 64), st.integers(1, 255))
    def run(how, at, length, byte):
        data = bytearray(good)
        if how == "flip":
            data[at] ^= byte
        elif how == "cut":
            del data[at:at + length]
        elif how == "add":
            data[at:at] = bytes([byte]) * length
        elif how == "zero":
            data[at:at + length] = bytes(len(data[at:at + length]))
        else:   # the tail of another save after this one's head: a torn overwrite
            data[at:] = other[at:]
        (folder / "checkpoint.npz").write_bytes(bytes(data))
        loaded = checked_call("load_checkpoint", pgfast.load_checkpoint, folder, update)
        if loaded is not None:
            theta, saved = loaded   # one save, whole: the first, or all of the second
            assert any(np.array_equal(theta, want_theta) and same_state(saved["run"], want["run"])
                       for (want_theta, want), _ in saves), "mixed state loaded"
    run()


# Every setting but the step budget, which --steps covers (a budget of 2**31 steps is
# a long run a user may ask for, not bad input).
ENV_KWARGS = {"CartPole-v1": [], "Pendulum-v1": ["g"], "MountainCarContinuous-v0": ["goal_velocity"],
              "Acrobot-v1": []}


def target_training(n):
    """train, StopWhenSolved, save_checkpoint, the env and policy constructors and the
    regulator, one argument at a time set to anything."""
    folder = Path(tempfile.mkdtemp())
    problem = pgfast.Problem("CartPole-v1", gamma=0.99, horizon=20)
    policy = pgfast.LinearSoftmax(4, 2)

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 30), st.one_of(hyper, st.integers(1, 3), st.floats(0, 1)),
           st.sampled_from(sorted(ENV_KWARGS)), st.integers(0, 2**32))
    def run(which, value, env_id, seed):
        # A budget of 2**31 iterations is a long run a user may ask for, not bad input.
        budget = value if not isinstance(value, int) or value < 10 else 2
        rng = np.random.default_rng(seed)
        theta = policy.init(rng)
        update = pgfast.ClampedSurrogateUpdate(problem, policy, m=2)
        train_args = dict(iterations=2, rng=rng, progress=False)
        calls = [
            *(lambda name=name: checked_call(f"train {name}", pgfast.train, update, theta,
                                              **{**train_args, name: budget})
              for name in ("iterations", "total_steps")),
            *(lambda name=name: checked_call(f"train {name}", pgfast.train, update, theta,
                                              **{**train_args, name: value})
              for name in ("rng", "callback", "progress", "metadata", "checkpoint_every",
                           "blas_threads")),
            lambda: checked_call("train checkpoint_dir", pgfast.train, update, theta,
                                 checkpoint_dir=value, **train_args),
            lambda: checked_call("train theta", pgfast.train, update, value, **train_args),
            *(lambda name=name: checked_call(f"StopWhenSolved {name}", pgfast.StopWhenSolved,
                                              problem, policy, **{"threshold": 100.0,
                                                                  "rng": rng, name: value})
              for name in ("threshold", "rng", "every", "episodes", "confirm_episodes",
                           "confidence")),
            lambda: checked_call("save_checkpoint history", pgfast.save_checkpoint, folder,
                                 theta, update, value, rng),
            lambda: checked_call("save_checkpoint metadata", pgfast.save_checkpoint, folder,
                                 theta, update, {}, rng, value),
            lambda: checked_call("save_checkpoint rng", pgfast.save_checkpoint, folder,
                                 theta, update, {}, value),
            *(lambda name=name: checked_call(f"make_vec {name}", pgfast.make_vec, env_id,
                                              **{name: value})
              for name in ["num_envs", "seed", "max_episode_steps", *ENV_KWARGS[env_id]]),
            lambda: checked_call("NativeEnv", pgfast.NativeEnv, env_id, render_mode=value),
            lambda: checked_call("make_kernel", pgfast.make_kernel, value),
            lambda: checked_call("ObservationNormalizer", pgfast.ObservationNormalizer, value),
            lambda: checked_call("from_config", pgfast.from_config, value),
            lambda: checked_call("from_config hidden", pgfast.from_config,
                                 {**policy.config(), "hidden": value}),
            lambda: checked_call("policy_for", pgfast.policy_for, value,
                                 problem.action_space if hasattr(problem, "action_space")
                                 else None),
            lambda: checked_call("regulator_gradient", pgfast.regulator_gradient,
                                 np.array([-0.5, 0.0, 0.0]), value),
            lambda: checked_call("regulator_utility gamma", pgfast.regulator_utility,
                                 np.array([-0.5, 0.0, 0.0]), 10, value),
            lambda: checked_call("Problem normalize", pgfast.Problem, "CartPole-v1",
                                 normalize_observations=value),
            lambda: checked_call("Problem workers", pgfast.Problem, "CartPole-v1",
                                 workers=value if value != 1 else 0),
        ]
        calls[which % len(calls)]()
    run()


SETTINGS = sorted(set(pgfast.defaults.GENERIC) - {"steps"}) + ["nonsense"]
cli_values = st.one_of(st.integers(-3, 6).map(str), st.sampled_from(
    ["0.5", "1e308", "nan", "inf", "-1", "2147483648", "1" * 30, "true", "(4,)", "(0,)",
     "(2**62,)", "ppo", "trpo", "", "x", "1,2", "[1]"]))
CLI_MESSAGE = re.compile(r"^pgfast( \w+)?: error: (argument [\w/-]+: "
                         r"|(--)?[A-Za-z_][\w\[\]'\"., -]*: )")


def target_cli(n):
    """``pgfast train`` and ``pgfast eval`` with any setting: a run of a few hundred
    steps, or exit status 2 with a one-line message (never a traceback)."""
    folder = Path(tempfile.mkdtemp())

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(["CartPole-v1", "Pendulum-v1", "MountainCarContinuous-v0",
                            "NoSuch-v0"]), st.sampled_from(["linear", "mlp"]),
           st.lists(st.tuples(st.sampled_from(SETTINGS), cli_values), max_size=3),
           st.one_of(st.just("300"), st.sampled_from(["0", "-5", "1e3",
                                                       "99999999999999999999999"])),
           st.sampled_from(["", "--resume", "--no-stop"]), st.one_of(st.none(), st.integers(0)))
    def run(env_id, policy, pairs, steps, flag, damage):
        out = Path(tempfile.mkdtemp(dir=folder)) / "run"
        argv = ["train", env_id, "--policy", policy, "--steps", steps, "--quiet",
                "--eval-episodes", "2", "--out", str(out), "--seed", "0"]
        for key, value in pairs:
            argv += ["--set", f"{key}={value}"]
        checked_cli(argv + (["--no-stop"] if flag == "--no-stop" else []))
        saved = out / "checkpoint.npz"
        if damage is not None and saved.exists():   # a byte of the checkpoint flipped
            data = bytearray(saved.read_bytes())
            data[damage % len(data)] ^= 0xFF
            saved.write_bytes(bytes(data))
        if flag == "--resume":
            checked_cli(argv + ["--resume"])
        if out.exists():
            checked_cli(["eval", str(out), "--episodes", "2"])
    run()


def checked_cli(argv):
    """Run the CLI in this process: it returns 0 or exits with status 2 and a message."""
    with open(LAST, "w") as f:
        f.write(f"pgfast {' '.join(argv)}")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = pgfast.cli.main(argv)
        except SystemExit as exc:
            status = exc.code
    assert status in (0, 2), f"pgfast {' '.join(argv)}: exit status {status}"
    if status == 2:
        message = err.getvalue().strip().splitlines()[-1]
        assert CLI_MESSAGE.match(message), f"pgfast {' '.join(argv)}: unclear error {message!r}"
        CALLS["errors"] += 1
    else:
        CALLS["results"] += 1


# ------------------------------------------------------------------------------
# One array argument at a time made ragged, huge (a broadcast view of 2**31 rows and
# more), strided, extreme, non-finite or of the wrong dtype, the others well-formed:
# the call gives a finite result or an error naming that argument.

def _array_calls():
    """(label, function, {argument: well-formed value}) over the public functions of
    arrays; the arrays (ndarrays) are the arguments the fuzzing changes."""
    T, B, P = 4, 2, 3
    r = np.linspace(-1.0, 1.0, T * B).reshape(T, B)
    flags = np.zeros((T, B), bool)
    flags[1, 0] = True
    scores = np.linspace(-1.0, 1.0, T * B * P).reshape(T, B, P)
    obs = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
    soft, gauss = pgfast.LinearSoftmax(3, 2), pgfast.MLPGaussian(3, 1, hidden=(4,))
    value = pgfast.LinearValue(3)
    ts, tg, tv = (f.init(np.random.default_rng(0)) for f in (soft, gauss, value))
    returns_args = dict(rewards=r, terminated=flags, truncated=flags)
    pendulums = pgfast.make_vec("Pendulum-v1", num_envs=2)
    pendulums.reset(seed=0)
    return [
        ("NativeVectorEnv.step", pendulums.step, dict(actions=np.zeros((2, 1)))),
        ("reward_to_go", pgfast.reward_to_go, dict(returns_args, gamma=0.9, next_values=r)),
        ("gae", pgfast.gae, dict(returns_args, values=r, next_values=r, gamma=0.9, lam=0.9)),
        ("discount_powers", pgfast.discount_powers, dict(terminated=flags, truncated=flags,
                                                         gamma=0.9)),
        ("episode_stats", pgfast.episode_stats, returns_args),
        *((f"likelihood_ratio_gradient {mode}",
           functools.partial(pgfast.likelihood_ratio_gradient, mode=mode),
           dict(returns_args, grad_log_probs=scores, gamma=0.9))
          for mode in ("trajectory", "reward_to_go", "baseline")),
        ("optimal_baseline", pgfast.optimal_baseline,
         dict(returns_args, grad_log_probs=scores, gamma=0.9)),
        ("regression_gradient", pgfast.regression_gradient,
         dict(dtheta=np.eye(4, 3) + 0.5, du=np.linspace(0.0, 1.0, 4))),
        ("LinearSoftmax.sample", soft.sample, dict(theta=ts, obs=obs, rng=0)),
        ("LinearSoftmax.log_prob", soft.log_prob, dict(theta=ts, obs=obs,
                                                       actions=np.array([0, 1]))),
        ("LinearSoftmax.grad_log_prob", soft.grad_log_prob,
         dict(theta=ts, obs=obs, actions=np.array([0, 1]), weights=np.ones(2))),
        ("LinearSoftmax.fisher_vector_product", soft.fisher_vector_product,
         dict(theta=ts, obs=obs, v=ts)),
        ("MLPGaussian.mode", gauss.mode, dict(theta=tg, obs=obs)),
        ("MLPGaussian.log_prob", gauss.log_prob, dict(theta=tg, obs=obs,
                                                      actions=np.zeros((2, 1)))),
        ("MLPGaussian.grad_log_prob", gauss.grad_log_prob,
         dict(theta=tg, obs=obs, actions=np.ones((2, 1)), weights=np.ones(2))),
        ("MLPGaussian.kl", gauss.kl, dict(theta_old=tg, theta_new=tg, obs=obs)),
        ("MLPGaussian.entropy_grad", gauss.entropy_grad, dict(theta=tg, obs=obs)),
        ("LinearValue.value", value.value, dict(phi=tv, obs=obs)),
        ("LinearValue.loss_and_grad", value.loss_and_grad,
         dict(phi=tv, obs=obs, targets=np.ones(2))),
        ("scale_gradient", pgfast.scale_gradient, dict(grad=ts, max_norm=1.0)),
        ("clip_gradient", pgfast.clip_gradient, dict(grad=ts, low=-1.0, high=1.0)),
    ]


def _changed(good, how, data):
    """`good` (an ndarray) changed in one way; None when the way does not apply."""
    if how == "ragged":
        return [[good.flat[0]], [good.flat[0], good.flat[0]]] if good.size else [[1], [1, 2]]
    if how == "huge":   # a few bytes of memory, showing 2**k rows: the copy would not fit
        rows = 2 ** data.draw(st.integers(31, 44))
        return np.broadcast_to(good.reshape(-1)[:1].reshape((1,) * good.ndim) if good.size
                               else np.zeros((1,) * good.ndim, good.dtype),
                               (rows,) + good.shape[1:])
    if how == "strided":   # the same values, reversed and not contiguous
        twice = np.repeat(good, 2, axis=0) if good.ndim else good
        return twice[::-2] if good.ndim else good
    if how == "dtype":
        return good.astype(data.draw(st.sampled_from(["U3", object, np.complex128])))
    if good.size == 0 or good.dtype == np.bool_ and how == "extreme":
        return None
    bad = good.astype(np.float64)
    values = finite if how == "extreme" else st.sampled_from([np.nan, np.inf, -np.inf])
    if data.draw(st.booleans()):   # every entry, or one
        bad[...] = data.draw(values)
    else:
        bad.flat[data.draw(st.integers(0, bad.size - 1))] = data.draw(values)
    return bad


def blamed_call(label, culprit, fn, kwargs):
    """Call fn(**kwargs) with `culprit` changed: a finite result, or a ValueError or
    TypeError whose leading names ("a, b: ...") include the culprit."""
    with open(LAST, "w") as f:
        f.write(f"{label} with {culprit} changed: {kwargs[culprit]!r}"[:4000])
    try:
        with np.errstate(all="ignore"):
            result = fn(**kwargs)
    except (ValueError, TypeError) as exc:
        head = str(exc).split(":", 1)[0]
        names = [n.split("[")[0] for n in re.split(r",\s*", head)]
        assert culprit in names, f"{label}: {culprit} changed, the error names {head!r}: {exc}"
        CALLS["errors"] += 1
        return
    CALLS["results"] += 1
    for part in result if isinstance(result, tuple) else (result,):
        arr = np.asarray(part)
        if arr.dtype.kind in "fc":
            assert np.isfinite(arr).all(), f"{label}: a silent non-finite result {arr!r}"


# Peak memory of the whole target: a broadcast view copied even once would pass it.
RUNAWAY = 1 << 30


def target_arrays(n):
    calls = _array_calls()
    # The memory checks then see at most 8 GiB (the machine may have more): a view of
    # 2**31 rows is refused whatever the machine, and no copy can take the machine down.
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data(), st.sampled_from(range(len(calls))),
           st.sampled_from(["ragged", "huge", "strided", "extreme", "nonfinite", "dtype"]))
    def run(data, which, how):
        label, fn, kwargs = calls[which]
        culprit = data.draw(st.sampled_from([k for k, v in kwargs.items()
                                             if isinstance(v, np.ndarray)]))
        bad = _changed(kwargs[culprit], how, data)
        if bad is not None:
            blamed_call(f"{label} ({how})", culprit, fn, {**kwargs, culprit: bad})
    run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert peak < RUNAWAY, f"a runaway allocation: the process peaked at {peak / 2**20:.0f} MiB"


class ScriptedEnv(gym.Env):
    """A Gymnasium env that returns `bad` in place of one of its outputs from step
    `at` on (0: reset), and well-formed outputs otherwise."""

    def __init__(self, discrete, field, bad, at):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,))
        self.action_space = gym.spaces.Discrete(2) if discrete else \
            gym.spaces.Box(-1.0, 1.0, (1,))
        self.field, self.bad, self.at, self.t = field, bad, at, 0

    def reset(self, seed=None, options=None):
        self.t = 0
        obs = self.bad if self.field == "reset_obs" and self.at == 0 else np.zeros(3)
        return self.bad if self.field == "reset" else (obs, {})

    def step(self, action):
        self.t += 1
        out = {"obs": np.full(3, 0.1), "reward": 1.0, "terminated": self.t % 4 == 0,
               "truncated": False, "info": {}}
        if self.t >= self.at and self.field in out:
            out[self.field] = self.bad
        if self.t >= self.at and self.field == "step":
            return self.bad
        return tuple(out.values())


ENV_ODD = [np.nan, np.inf, None, "a", [1.0, 2.0], np.zeros(5), np.zeros((1, 3)),
           np.full(3, np.nan), [0.0, None, 0.0], {}, object(), 1e308, True, (1, 2, 3, 4),
           np.array(["a", "b", "c"]), -1e308]


def target_pyenvs(n):
    """Python envs that return NaN, None, wrong shapes and wrong types, at reset or
    after some steps: the rollout is finite or an error naming the env."""
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.booleans(), st.sampled_from(["obs", "reward", "terminated", "truncated", "info",
                                           "reset_obs", "reset", "step"]),
           st.sampled_from(range(len(ENV_ODD))), st.integers(0, 6), st.integers(0, 2**32))
    def run(discrete, field, which, at, seed):
        env = ScriptedEnv(discrete, field, ENV_ODD[which], at)
        policy = pgfast.LinearSoftmax(3, 2) if discrete else pgfast.LinearGaussian(3, 1)
        theta = policy.init(np.random.default_rng(seed))
        result = checked_call(f"rollout {field}={ENV_ODD[which]!r} at {at}", pgfast.rollout,
                              env, policy, theta, 8, np.random.default_rng(seed))
        if result is not None:   # an odd value the rollout accepts must be a finite one
            assert np.isfinite(result.rewards).all() and np.isfinite(result.observations).all()
    run()


def target_returns_cli(n):
    """``pgfast returns`` on buffers damaged in every way: one line naming the file,
    the array or the argument, exit status 2 (or a result)."""
    folder = Path(tempfile.mkdtemp())

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data(), st.sampled_from(["none", "flip", "cut", "zero", "empty", "npy", "pickle",
                                       "text", "objects", "strings", "shape", "nan"]),
           st.integers(1, 6), st.sampled_from(["0.99", "1", "2", "nan", "-1"]))
    def run(data, damage, t, gamma):
        rewards = np.linspace(0.0, 1.0, t)
        arrays = {"rewards": rewards, "values": rewards, "next_values": rewards,
                  "terminated": rewards > 0.5}
        if damage == "objects":
            arrays["values"] = np.array([None] * t, dtype=object)
        elif damage == "strings":
            arrays["terminated"] = np.array(["yes"] * t)
        elif damage == "shape":
            arrays["next_values"] = np.zeros(t + 1)
        elif damage == "nan":
            arrays["rewards"] = np.full(t, np.nan)
        path = folder / f"buffer{data.draw(st.integers(0, 9))}.npz"
        if damage == "npy":
            with open(path, "wb") as f:
                np.save(f, rewards)
        elif damage == "pickle":
            path.write_bytes(pickle.dumps(arrays))
        elif damage == "text":
            path.write_text("rewards=1,2,3")
        else:
            np.savez(path, **arrays, allow_pickle=True) if damage == "objects" else \
                np.savez(path, **arrays)
            content = bytearray(path.read_bytes())
            at = data.draw(st.integers(0, len(content) - 1))
            if damage == "flip":
                content[at] ^= data.draw(st.integers(1, 255))
            elif damage == "cut":
                del content[at:]
            elif damage == "zero":
                content[at:at + 64] = bytes(len(content[at:at + 64]))
            elif damage == "empty":
                content = bytearray()
            path.write_bytes(bytes(content))
        checked_cli(["returns", str(path), "--gamma", gamma, "--out", str(folder / "out.npz")])
    run()


TARGETS = {name[7:]: fn for name, fn in globals().items() if name.startswith("target_")}

if __name__ == "__main__":
    target, examples, LAST = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    TARGETS[target](examples)
    print(f"{target}: {sum(CALLS.values())} calls, {CALLS['results']} finite results, "
          f"{CALLS['errors']} named errors")
