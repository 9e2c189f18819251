"""The kernels' own guards: what reaches a compiled module from Python is checked
there (shapes, sizes, thread counts, the Generator's capsule, concurrent use), so a
bad argument is a ValueError/TypeError naming it, never a crash or a silent write
out of bounds; long native loops answer Ctrl-C. Anything that crashed before runs
in a child process, so a crash fails the test instead of ending the run."""
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import pgfast
from pgfast import _envs, _net, _rollout


def run_child(code, timeout=60):
    """Run `code` in a fresh interpreter; its stdout, or a failure naming how it died.
    (From the tests folder: the repository root would put the source pgfast/, which
    has no compiled modules, first on the path.)"""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=Path(__file__).parent)
    assert proc.returncode == 0, (f"child exited with {proc.returncode}\n"
                                  f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc.stdout


# -------------------------------------------------------------- policy.kernel
def kernel_case(name):
    rng = np.random.default_rng(0)
    policy = pgfast.LinearSoftmax(4, 3) if name == "softmax" else pgfast.MLPGaussian(3, 2, (5,))
    theta = policy.init(rng)
    n, D, A, P = 6, policy.obs_dim, policy.kernel.act_dim, policy.n_params
    obs = rng.standard_normal((n, D))
    actions = (rng.integers(0, 3, (n, 1)) if name == "softmax"
               else rng.standard_normal((n, A))).astype(np.float64)
    return policy.kernel, theta, obs, actions, n, D, A, P


# (call, the argument its message must name): one wrong shape per call.
BAD_CALLS = {
    "sample_into theta": (lambda k, th, o, a, n, D, A, P: k.sample_into(
        th[:-1], o, np.random.default_rng(0), np.empty((n, A)), np.empty(n)), "theta"),
    "sample_into obs": (lambda k, th, o, a, n, D, A, P: k.sample_into(
        th, np.ones((n, D + 1)), np.random.default_rng(0), np.empty((n, A)), np.empty(n)),
        "obs"),
    "sample_into actions": (lambda k, th, o, a, n, D, A, P: k.sample_into(
        th, o, np.random.default_rng(0), np.empty((n - 1, A)), np.empty(n)), "actions"),
    "sample_into logp": (lambda k, th, o, a, n, D, A, P: k.sample_into(
        th, o, np.random.default_rng(0), np.empty((n, A)), np.empty(n - 1)), "logp"),
    "mode_into actions": (lambda k, th, o, a, n, D, A, P: k.mode_into(
        th, o, np.empty((n, A + 1))), "actions"),
    "outputs_into z": (lambda k, th, o, a, n, D, A, P: k.outputs_into(
        th, o, np.empty((n + 1, 3))), "z"),
    "log_prob_into actions": (lambda k, th, o, a, n, D, A, P: k.log_prob_into(
        th, o, a[:-1], np.empty(n)), "actions"),
    "log_prob_into logp": (lambda k, th, o, a, n, D, A, P: k.log_prob_into(
        th, o, a, np.empty(n + 3)), "logp"),
    "grad_log_prob_into rows": (lambda k, th, o, a, n, D, A, P: k.grad_log_prob_into(
        th, o, a, None, np.empty(1), np.empty((n, P - 1))), "rows"),
    "grad_log_prob_into weights": (lambda k, th, o, a, n, D, A, P: k.grad_log_prob_into(
        th, o, a, np.ones(n - 1), np.empty(P), np.empty((1, 1))), "weights"),
    "grad_log_prob_into grad": (lambda k, th, o, a, n, D, A, P: k.grad_log_prob_into(
        th, o, a, np.ones(n), np.empty(P + 1), np.empty((1, 1))), "grad"),
    "kl_into theta_new": (lambda k, th, o, a, n, D, A, P: k.kl_into(
        th, th[1:], o, np.empty(n), None), "theta_new"),
    "kl_into kl": (lambda k, th, o, a, n, D, A, P: k.kl_into(
        th, th, o, np.empty(n + 1), None), "kl"),
    "kl_into grad": (lambda k, th, o, a, n, D, A, P: k.kl_into(
        th, th, o, np.empty(n), np.empty(P - 1)), "grad"),
    "entropy_into ent": (lambda k, th, o, a, n, D, A, P: k.entropy_into(
        th, o, np.empty(2 * n)), "ent"),
    "entropy_grad_into grad": (lambda k, th, o, a, n, D, A, P: k.entropy_grad_into(
        th, o, np.empty(P + 2)), "grad"),
    "forward_into cache": (lambda k, th, o, a, n, D, A, P: k.forward_into(
        th, o, np.empty(3)), "cache"),
    "fvp_into v": (lambda k, th, o, a, n, D, A, P: k.fvp_into(
        th, o, th[:-1], np.empty(P)), "v"),
    "fvp_into out": (lambda k, th, o, a, n, D, A, P: k.fvp_into(
        th, o, th, np.empty(P + 1)), "out"),
    "fvp_into cache": (lambda k, th, o, a, n, D, A, P: k.fvp_into(
        th, o, th, np.empty(P), np.empty(2)), "cache"),
    "fvp_into num_threads": (lambda k, th, o, a, n, D, A, P: k.fvp_into(
        th, o, th, np.empty(P), None, 0), "num_threads"),
    "vjp_rows_into dz": (lambda k, th, o, a, n, D, A, P: k.vjp_rows_into(
        th, o, np.empty((n, 5)), np.empty((n, P))), "dz"),
    "vjp_rows_into rows": (lambda k, th, o, a, n, D, A, P: k.vjp_rows_into(
        th, o, np.zeros((n, 3 if A == 1 else A)), np.empty((n, P + 1))), "rows"),
}


@pytest.mark.parametrize("name", ["softmax", "gaussian"])
@pytest.mark.parametrize("call", sorted(BAD_CALLS))
def test_kernel_into_methods_check_shapes(name, call):
    """policy.kernel's *_into methods refuse a wrong shape instead of writing out of bounds."""
    fn, arg = BAD_CALLS[call]
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        fn(*kernel_case(name))


@pytest.mark.parametrize("name", ["softmax", "gaussian"])
def test_kernel_into_methods_accept_empty_batches(name):
    k, theta, obs, actions, n, D, A, P = kernel_case(name)
    logp = np.empty(0)
    k.log_prob_into(theta, obs[:0], actions[:0], logp)
    grad = np.full(P, 7.0)
    k.grad_log_prob_into(theta, obs[:0], actions[:0], np.empty(0), grad, np.empty((1, 1)))
    np.testing.assert_array_equal(grad, 0.0)
    with pytest.raises(ValueError, match="^obs"):
        k.kl_into(theta, theta, obs[:0], np.empty(0), np.empty(P))


def test_kernel_rng_must_be_a_generator():
    k, theta, obs, actions, n, D, A, P = kernel_case("gaussian")
    for bad in (None, object(), np.random.RandomState(0)):
        with pytest.raises(TypeError, match="^rng"):
            k.sample_into(theta, obs, bad, np.empty((n, A)), np.empty(n))
    with pytest.raises(TypeError, match="rng"):
        _rollout.bitgen_pointers([np.random.default_rng(0), "not a generator"])


def test_value_net_checks_shapes():
    net = _net.Net([3, 4, 1])
    phi = np.zeros(net.n_params)
    with pytest.raises(ValueError, match="^theta"):
        net.predict(phi[:-1], np.zeros((2, 3)), np.empty((2, 1)))
    with pytest.raises(ValueError, match="^z"):
        net.predict(phi, np.zeros((2, 3)), np.empty((3, 1)))
    with pytest.raises(ValueError, match="^targets"):
        net.squared_error_grad(phi, np.zeros((2, 3)), np.zeros(3), np.empty(net.n_params))
    m, v, obs, y = np.zeros(net.n_params), np.zeros(net.n_params), np.zeros((2, 3)), np.zeros(2)
    for order, size, arg in ((np.array([[0, 2]]), 2, "^order"), (np.array([[0, -1]]), 2, "^order"),
                             (np.array([[0, 1]]), 0, "^size")):
        with pytest.raises(ValueError, match=arg):   # never a read outside obs
            net.fit_minibatches(phi.copy(), obs, y, order, size, m, v, 0, 1e-3, 0.9, 0.999,
                                1e-8)
    with pytest.raises(ValueError, match="^v"):
        net.fit_minibatches(phi.copy(), obs, y, np.array([[0, 1]]), 2, m, v[:-1], 0, 1e-3,
                            0.9, 0.999, 1e-8)


# ------------------------------------------------------------ sizes and ints
@pytest.mark.parametrize("make, arg", [
    ("pgfast.MLPSoftmax(2, 1, hidden=(2**62,))", "hidden"),
    ("pgfast.MLPSoftmax(2, 3, hidden=(2**70,))", "hidden"),
    ("pgfast.MLPGaussian(2**40, 1, hidden=(2**40,))", "hidden"),
    ("pgfast.LinearSoftmax(2**70, 2)", "obs_dim"),
    ("pgfast._gaussian.GaussianKernel(3, 2**64)", "act_dim"),
    ("pgfast._softmax.SoftmaxKernel(3, 2**64)", "n_actions"),
    ("pgfast.MLPValue(3, hidden=(2**31, 2**31))", "hidden"),
])
def test_sizes_that_overflow_are_refused(make, arg):
    """Before: n_params silently wrapped around and sample/log_prob crashed (SIGSEGV)."""
    out = run_child(f"""
        import numpy as np, pgfast, pgfast._gaussian, pgfast._softmax
        try:
            p = {make}
        except ValueError as e:
            print("ValueError", e)
        else:
            print("accepted n_params", p.n_params)
    """)
    assert out.startswith(f"ValueError {arg}"), out


def test_networks_beyond_memory_are_refused_before_counting():
    """A network whose θ could not be held (here 2**40 + ... parameters) is refused
    when it is built, by name; n_params never wraps around."""
    with pytest.raises(ValueError, match="hidden"):
        pgfast.MLPSoftmax(3, 2, hidden=(2**20, 2**20))


@pytest.mark.parametrize("num_threads", [10**5, 2**31, 10**30])
def test_huge_num_threads_is_a_value_error(num_threads):
    """Before: 10**5 threads crashed grad_log_prob and rollout (SIGSEGV)."""
    out = run_child(f"""
        import numpy as np, pgfast
        rng = np.random.default_rng(0)
        policy = pgfast.MLPGaussian(3, 1, (4,))
        theta = policy.init(rng)
        obs, actions = rng.standard_normal((64, 3)), rng.standard_normal((64, 1))
        calls = {{
            "grad_log_prob": lambda: policy.grad_log_prob(theta, obs, actions,
                                                          num_threads={num_threads}),
            "rollout": lambda: pgfast.rollout(pgfast.make_vec("Pendulum-v1", 4), policy, theta,
                                              5, rng, num_threads={num_threads}),
        }}
        for name, call in calls.items():
            try:
                call()
            except ValueError as e:
                print(name, "ValueError", str(e).split(":")[0])
            else:
                print(name, "accepted")
    """)
    assert out.split("\n")[:2] == ["grad_log_prob ValueError num_threads",
                                   "rollout ValueError num_threads"], out


@pytest.mark.parametrize("call, arg", [
    (lambda: _envs.CartPoleKernel(2**70), "num_envs"),
    (lambda: _envs.CartPoleKernel(2**31), "num_envs"),   # more slots than memory holds
    (lambda: _envs.CartPoleKernel(2, max_episode_steps=2**70), "max_episode_steps"),
    (lambda: _envs.CartPoleKernel(-1), "num_envs"),
    (lambda: _envs.VecEnvKernel(1, 2**64, 1, 0), "obs_dim"),
    (lambda: _envs.VecEnvKernel(1, 2, 3, 2), "act_dim"),
])
def test_env_sizes_of_any_int_are_value_errors(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}\b"):
        call()


def test_rollout_time_limit_of_any_int():
    policy = pgfast.LinearSoftmax(4, 2)
    env = pgfast.make_vec("CartPole-v1", 2)
    theta = policy.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="^time_limit"):
        pgfast.rollout(env, policy, theta, 3, np.random.default_rng(0), time_limit=2**70)
    with pytest.raises(IndexError, match="^i"):
        env.kernel.reset_slot(2**70, np.random.default_rng(0))


def test_native_rollout_checks_its_arrays():
    """_rollout.rollout trusts nothing it is given: every array is checked against
    the env and the policy before the loop starts."""
    env = pgfast.make_kernel("CartPole-v1", 3)
    policy = pgfast.LinearSoftmax(4, 2)
    T, B = 5, 3
    generators = np.random.default_rng(0).spawn(B)   # alive while their pointers are used
    args = dict(thetas=np.zeros((1, policy.n_params)),
                bitgens=np.array(_rollout.bitgen_pointers(generators), np.uintp),
                time_limit=0, observations=np.empty((T, B, 4)), actions=np.empty((T, B, 1)),
                rewards=np.empty((T, B)), terminated=np.empty((T, B), np.uint8),
                truncated=np.empty((T, B), np.uint8), log_probs=np.empty((T, B)),
                final_observations=np.empty((T, B, 4)), last_observations=np.empty((B, 4)),
                status=np.empty(B, np.intc), steps=np.empty(B, np.int64))
    _rollout.rollout(env, policy.kernel, **args)   # the right shapes run
    assert (args["steps"] == T).all()
    for name, bad in [("thetas", np.zeros((2, policy.n_params))),
                      ("bitgens", args["bitgens"][:2]),
                      ("observations", np.empty((T, B + 1, 4))),
                      ("actions", np.empty((T, B, 2))),
                      ("final_observations", np.empty((T - 1, B, 4))),
                      ("log_probs", np.empty((T, B - 1))),
                      ("last_observations", np.empty((B, 5))),
                      ("status", np.empty(B + 1, np.intc))]:
        with pytest.raises(ValueError, match=rf"^{name}\b"):
            _rollout.rollout(env, policy.kernel, **{**args, name: bad})
    with pytest.raises(ValueError, match="^policy"):
        _rollout.rollout(env, pgfast.LinearSoftmax(3, 2).kernel, **args)


# ------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_interrupts_a_long_native_rollout_quickly():
    """Before: a long rollout noticed Ctrl-C only when it ended (9.4 s in the report)."""
    out = run_child("""
        import os, signal, threading, time
        import numpy as np, pgfast
        # Ctrl-C raises here even when the test run started with SIGINT ignored
        # (a shell's background job), which the child would inherit.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        env = pgfast.make_vec("Pendulum-v1", 16)
        policy = pgfast.MLPGaussian(3, 1, (128, 128))
        theta = policy.init(np.random.default_rng(0))
        sent = []
        def interrupt():
            time.sleep(0.5)
            sent.append(time.perf_counter())
            os.kill(os.getpid(), signal.SIGINT)
        threading.Thread(target=interrupt, daemon=True).start()
        start = time.perf_counter()
        try:
            pgfast.rollout(env, policy, theta, 100_000, np.random.default_rng(0))
        except KeyboardInterrupt:
            print("interrupted after %.3f s" % (time.perf_counter() - sent[0]))
        else:
            print("finished in %.1f s" % (time.perf_counter() - start))
        # the env is released and works again
        r = pgfast.rollout(env, policy, theta, 3, np.random.default_rng(1))
        print("then", r.rewards.shape)
    """, timeout=300)
    lines = out.split("\n")
    assert lines[0].startswith("interrupted after"), out
    # 0.1 s is the target on an idle machine; allow for a loaded CI runner.
    assert float(lines[0].split()[2]) < 1.0, out
    assert lines[1] == "then (3, 16)", out


# ------------------------------------------------------------------- threads
def test_a_native_env_refuses_a_second_thread():
    """Before: two threads stepping one env interleaved their episodes silently."""
    env = pgfast.make_vec("Pendulum-v1", 8)
    env.reset(seed=0)
    policy = pgfast.MLPGaussian(3, 1, (128, 128))
    theta = policy.init(np.random.default_rng(0))
    started, result = threading.Event(), {}

    def long_rollout():
        started.set()
        while "ro" not in result:
            try:
                result["ro"] = pgfast.rollout(env, policy, theta, 4000, np.random.default_rng(0))
            except ValueError:   # the main thread's call came first: try again
                pass

    worker = threading.Thread(target=long_rollout)
    worker.start()
    started.wait()
    deadline = time.perf_counter() + 30
    refused = []
    while worker.is_alive() and time.perf_counter() < deadline and not refused:
        for call in (lambda: env.step(np.zeros((8, 1), np.float32)),
                     lambda: env.reset(seed=1),
                     lambda: pgfast.rollout(env, policy, theta, 2, np.random.default_rng(1))):
            try:
                call()
            except ValueError as e:
                refused.append(str(e))
        time.sleep(0.01)
    worker.join()
    assert refused, "the worker's rollout ended before a second call could meet it"
    assert all(msg.startswith("env: ") and "in use by another thread" in msg
               for msg in refused)
    # the same rollout alone gives the same result: the refused calls changed nothing
    alone = pgfast.rollout(env, policy, theta, 4000, np.random.default_rng(0))
    np.testing.assert_array_equal(result["ro"].rewards, alone.rewards)
