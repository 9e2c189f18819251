"""Fuzz targets over pgfast's public API, run by ``test_fuzz.py`` in a child process
(``python fuzz_targets.py TARGET EXAMPLES LASTFILE``) so that a crash fails a test
instead of the run.

Every call must end in one of two ways: a finite result, or a ValueError/TypeError
whose message starts with the name of an argument ("rewards: expected ...").
Before each call the case is written to LASTFILE, so a crash names the input.
"""
import re
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgfast
import pgfast.mujoco

LAST = None
NAMED = re.compile(r"^[A-Za-z_][\w\[\]'\"., ]*:")   # "theta:", "params['W0']:", "out:"

EXTREMES = [0.0, -0.0, 1.0, -1.0, 1e-308, 5e-324, 1e308, -1e308, 1.7e308, 1e39,
            np.nan, np.inf, -np.inf]
floats = st.one_of(st.floats(-1e6, 1e6), st.sampled_from(EXTREMES))
dtypes = st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_, np.complex128,
                          object, "U3", np.uint64])
counts = st.one_of(st.integers(-3, 6), st.sampled_from([2**31, 2**63, 10**30]))


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


def checked_call(label, fn, *args, **kwargs):
    """Run fn, recording the case first; assert the outcome is one of the two allowed."""
    with open(LAST, "w") as f:
        f.write(f"{label}: args={args!r} kwargs={kwargs!r}"[:4000])
    try:
        with np.errstate(all="ignore"):
            result = fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        assert NAMED.match(str(exc)), f"{label}: an error that names no argument: {exc!r}"
        return None
    for part in result if isinstance(result, tuple) else (result,):
        arr = np.asarray(part)
        if arr.dtype.kind in "fc":
            assert np.isfinite(arr).all(), f"{label}: a silent non-finite result {arr!r}"
    return result


def target_returns(n):
    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(arrays(), arrays(), arrays(), arrays(), st.one_of(floats, st.text(max_size=2)),
           floats)
    def run(rewards, values, flags_a, flags_b, gamma, lam):
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
    @given(st.sampled_from(range(len(POLICIES))), arrays((1, 1), 40), arrays((1, 2)),
           arrays((1, 2)), st.one_of(floats, st.sampled_from(EXTREMES)), st.integers(0, 2**32))
    def run(which, theta, obs, actions, scale, seed):
        policy = POLICIES[which]()
        rng = np.random.default_rng(seed)
        good = policy.init(rng)
        # Half the cases use a θ of the right size, scaled to extremes.
        if seed % 2 and np.asarray(theta).dtype.kind == "f":
            with np.errstate(all="ignore"):
                theta = good * scale
        if hasattr(policy, "value"):
            checked_call("value", policy.value, theta, obs)
            checked_call("loss_and_grad", policy.loss_and_grad, theta, obs, actions)
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
    @given(arrays((2, 3)), arrays((1, 2)), arrays(), floats)
    def run(scores, rewards, flags, gamma):
        checked_call("likelihood_ratio_gradient", pgfast.likelihood_ratio_gradient,
                     scores, rewards, gamma, flags)
        checked_call("optimal_baseline", pgfast.optimal_baseline, scores, rewards, gamma)
        checked_call("regression_gradient", pgfast.regression_gradient, scores, rewards)
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


TARGETS = {name[7:]: fn for name, fn in globals().items() if name.startswith("target_")}

if __name__ == "__main__":
    target, examples, LAST = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    TARGETS[target](examples)
