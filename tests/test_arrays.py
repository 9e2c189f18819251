"""Arrays in, arrays out (pgfast/_arrays.py): other libraries' arrays through every
public array function, against the NumPy call. The protocol is checked with
array-api-strict (no framework needed); PyTorch and JAX where installed."""
import numpy as np
import pytest

import pgfast
from pgfast._arrays import as_numpy

xs = pytest.importorskip("array_api_strict", reason="array-api-strict (test extra) not installed")


def strict_to_numpy(x):
    return np.from_dlpack(x)


class DLPackOnly:
    """An object with DLPack and nothing else, on a device of our choosing."""

    def __init__(self, arr, device=(1, 0)):
        self.arr, self.where = arr, device

    def __dlpack__(self, **kwargs):
        return self.arr.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.where


def buffer(T=40, B=3, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    r, v, nv = (rng.standard_normal((T, B)).astype(dtype) for _ in range(3))
    term = rng.random((T, B)) < 0.1
    trunc = rng.random((T, B)) < 0.05
    return r, v, nv, term, trunc


# --------------------------------------------------------------------------- returns

RETURNS_CALLS = {
    "gae": lambda r, v, nv, te, tr: pgfast.gae(r, v, nv, 0.99, 0.95, te, tr),
    "reward_to_go": lambda r, v, nv, te, tr: pgfast.reward_to_go(r, 0.9, te, tr, nv),
    "discount_powers": lambda r, v, nv, te, tr: pgfast.discount_powers(te, tr, 0.9),
    "episode_stats": lambda r, v, nv, te, tr: pgfast.episode_stats(r, te, tr),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", sorted(RETURNS_CALLS))
def test_returns_strict_in_strict_out(call, dtype):
    arrays = buffer(dtype=dtype)
    want = RETURNS_CALLS[call](*arrays)
    got = RETURNS_CALLS[call](*(xs.asarray(a) for a in arrays))
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for w, g in zip(want, got):
        assert isinstance(g, xs._array_object.Array)
        g = strict_to_numpy(g)
        float_inputs = call != "discount_powers"
        if w.dtype.kind == "f":
            assert g.dtype == (dtype if float_inputs else np.float64)
        else:
            assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w.astype(g.dtype))


def test_numpy_in_numpy_out_unchanged():
    r, v, nv, term, trunc = buffer()
    out = pgfast.gae(r, v, nv, 0.99, 0.95, term, trunc)
    assert type(out) is np.ndarray and out.dtype == np.float32


def test_mixed_precision_gives_float64():
    r, v, nv, term, trunc = buffer()
    got = pgfast.gae(xs.asarray(r), xs.asarray(v.astype(np.float64)), xs.asarray(nv),
                     0.99, 0.95)
    assert got.dtype == xs.float64


def test_out_written_in_place_and_returned():
    r, v, nv, term, trunc = buffer()
    out = xs.zeros(r.shape, dtype=xs.float32)
    got = pgfast.gae(*(xs.asarray(a) for a in (r, v, nv)), 0.99, 0.95, xs.asarray(term),
                     out=out)
    assert got is out
    np.testing.assert_array_equal(strict_to_numpy(out), pgfast.gae(r, v, nv, 0.99, 0.95, term))


def test_inputs_viewed_without_copy():
    x = xs.asarray(np.arange(6.0))
    assert np.shares_memory(as_numpy(x, "x"), strict_to_numpy(x))
    plain = np.arange(3.0)
    assert as_numpy(plain, "x") is plain and as_numpy([1.0], "x") == [1.0]


# --------------------------------------------------------------------------- bad input

def test_mixed_libraries_name_the_argument():
    r, v, nv, term, trunc = buffer()
    with pytest.raises(TypeError, match="^values: expected a array_api_strict array like "
                                        "rewards, got a numpy array"):
        pgfast.gae(xs.asarray(r), v, xs.asarray(nv), 0.99, 0.95)
    with pytest.raises(TypeError, match="^terminated: .*numpy"):
        pgfast.gae(xs.asarray(r), xs.asarray(v), xs.asarray(nv), 0.99, 0.95, term)
    with pytest.raises(TypeError, match="^next_values: .*got a DLPackOnly array"):
        pgfast.gae(xs.asarray(r), xs.asarray(v), DLPackOnly(nv), 0.99, 0.95)


@pytest.mark.parametrize("dtype", [xs.int64, xs.bool, xs.complex64])
def test_non_float_arrays_name_the_argument(dtype):
    r, v, nv, term, trunc = buffer()
    bad = xs.astype(xs.asarray(v), dtype)
    with pytest.raises(TypeError, match="^values: expected a real floating-point"):
        pgfast.gae(xs.asarray(r), bad, xs.asarray(nv), 0.99, 0.95)


def test_wrong_shape_names_the_argument():
    r, v, nv, term, trunc = buffer()
    with pytest.raises(ValueError, match="^next_values: expected shape"):
        pgfast.gae(xs.asarray(r), xs.asarray(v), xs.asarray(nv[:-1]), 0.99, 0.95)
    with pytest.raises(ValueError, match="^truncated: expected shape"):
        pgfast.gae(xs.asarray(r), xs.asarray(v), xs.asarray(nv), 0.99, 0.95,
                   truncated=xs.asarray(trunc[1:]))


def test_device_other_than_cpu_is_refused():
    r, v, nv, term, trunc = buffer()
    with pytest.raises(TypeError, match=r"^rewards: expected an array on the CPU, got one "
                                        r"on DLPack device \(2, 0\)"):
        pgfast.reward_to_go(DLPackOnly(r, device=(2, 0)), 0.9)


# --------------------------------------------------------------------------- policies, gradients

POLICIES = {
    "mlp-softmax": lambda: pgfast.MLPSoftmax(3, 4, hidden=(5,)),
    "mlp-gaussian": lambda: pgfast.MLPGaussian(3, 2, hidden=(5,), log_std=-0.2),
}


def policy_case(name, dtype, n=6):
    policy = POLICIES[name]()
    rng = np.random.default_rng(3)
    theta = (0.5 * rng.standard_normal(policy.n_params)).astype(dtype)
    obs = rng.standard_normal((n, 3)).astype(dtype)
    if policy.discrete:
        actions = rng.integers(0, policy.n_actions, n)
    else:
        actions = rng.standard_normal((n, 2)).astype(dtype)
    return policy, theta, obs, actions


POLICY_CALLS = {
    "sample": lambda p, th, o, a: p.sample(th, o, np.random.default_rng(7)),
    "mode": lambda p, th, o, a: p.mode(th, o),
    "log_prob": lambda p, th, o, a: p.log_prob(th, o, a),
    "grad_log_prob": lambda p, th, o, a: p.grad_log_prob(th, o, a),
    "grad_log_prob_weighted": lambda p, th, o, a: p.grad_log_prob(th, o, a, weights=o[:, 0]),
    "kl": lambda p, th, o, a: p.kl(th, 0.9 * th, o),
    "kl_grad": lambda p, th, o, a: p.kl_grad(th, 0.9 * th, o),
    "entropy": lambda p, th, o, a: p.entropy(th, o),
    "entropy_grad": lambda p, th, o, a: p.entropy_grad(th, o),
    "fisher_vector_product": lambda p, th, o, a: p.fisher_vector_product(th, o, th),
    "fisher_operator": lambda p, th, o, a: p.fisher_operator(th, o)(th),
    "fisher": lambda p, th, o, a: p.fisher(th, o),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", sorted(POLICY_CALLS))
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_strict_in_strict_out(name, call, dtype):
    policy, theta, obs, actions = policy_case(name, dtype)
    want = POLICY_CALLS[call](policy, theta, obs, actions)
    got = POLICY_CALLS[call](policy, *(xs.asarray(a) for a in (theta, obs, actions)))
    want, got = (want, got) if isinstance(want, tuple) else ((want,), (got,))
    for w, g in zip(want, got):
        g = strict_to_numpy(g)
        assert g.dtype == (dtype if w.dtype.kind == "f" else w.dtype)
        np.testing.assert_array_equal(g, w.astype(g.dtype))


def test_value_function_strict_in_strict_out():
    value = pgfast.MLPValue(3, hidden=(4,))
    rng = np.random.default_rng(0)
    phi = value.init(rng).astype(np.float32)
    obs = rng.standard_normal((5, 3)).astype(np.float32)
    targets = rng.standard_normal(5).astype(np.float32)
    v = value.value(xs.asarray(phi), xs.asarray(obs))
    assert v.dtype == xs.float32
    np.testing.assert_array_equal(strict_to_numpy(v), value.value(phi, obs).astype(np.float32))
    loss, grad = value.loss_and_grad(xs.asarray(phi), xs.asarray(obs), xs.asarray(targets))
    want_loss, want_grad = value.loss_and_grad(phi, obs, targets)
    assert loss == want_loss and grad.dtype == xs.float32
    np.testing.assert_array_equal(strict_to_numpy(grad), want_grad.astype(np.float32))


@pytest.mark.parametrize("mode", ["trajectory", "reward_to_go", "baseline"])
def test_gradients_strict_in_strict_out(mode):
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((30, 2, 4)).astype(np.float32)
    r, _, _, term, trunc = buffer(T=30, B=2)
    want = pgfast.likelihood_ratio_gradient(scores, r, 0.9, term, trunc, mode=mode,
                                            return_per_trajectory=True)
    got = pgfast.likelihood_ratio_gradient(xs.asarray(scores), xs.asarray(r), 0.9,
                                           xs.asarray(term), xs.asarray(trunc), mode=mode,
                                           return_per_trajectory=True)
    for w, g in zip(want, got):
        assert g.dtype == xs.float32
        np.testing.assert_array_equal(strict_to_numpy(g), w)
    b = pgfast.optimal_baseline(xs.asarray(scores), xs.asarray(r), 0.9, xs.asarray(term))
    np.testing.assert_array_equal(strict_to_numpy(b),
                                  pgfast.optimal_baseline(scores, r, 0.9, term))
    a = rng.standard_normal((8, 3))
    y = rng.standard_normal(8)
    np.testing.assert_array_equal(
        strict_to_numpy(pgfast.regression_gradient(xs.asarray(a), xs.asarray(y))),
        pgfast.regression_gradient(a, y))


def test_policy_mixed_libraries_name_the_argument():
    policy, theta, obs, actions = policy_case("mlp-softmax", np.float64)
    with pytest.raises(TypeError, match="^obs: expected a array_api_strict array like theta"):
        policy.log_prob(xs.asarray(theta), obs, actions)
    with pytest.raises(TypeError, match="^theta: expected a real floating-point"):
        policy.entropy(xs.asarray(theta.astype(np.int64)), xs.asarray(obs))


def test_rollout_takes_theta_from_any_library():
    env = pgfast.make_vec("CartPole-v1", 2)
    policy = pgfast.LinearSoftmax(4, 2)
    theta = policy.init(np.random.default_rng(0))
    want = pgfast.rollout(env, policy, theta, 20, np.random.default_rng(1))
    got = pgfast.rollout(env, policy, xs.asarray(theta), 20, np.random.default_rng(1))
    np.testing.assert_array_equal(got.actions, want.actions)


def read_only(*arrays):
    """DLPack-only read-only views of copies of the arrays (as JAX exports them)."""
    views = []
    for a in arrays:
        a = np.array(a)
        a.flags.writeable = False
        views.append(DLPackOnly(a))
    return views


def test_read_only_views_reach_the_kernels():
    """Read-only DLPack exports (JAX's) go to the const memoryviews as they are; a
    DLPack-only object has no namespace to answer in, so the results are NumPy."""
    for call in RETURNS_CALLS.values():
        want, got = call(*buffer()), call(*read_only(*buffer()))
        for w, g in zip(*((want, got) if isinstance(want, tuple) else ((want,), (got,)))):
            assert type(g) is np.ndarray
            np.testing.assert_array_equal(g, w.astype(g.dtype))
    for name in POLICIES:   # read-only NumPy: what the DLPack view of one is
        case = policy_case(name, np.float64)
        frozen = [np.array(a) for a in case[1:]]
        for a in frozen:
            a.flags.writeable = False
        for call in POLICY_CALLS.values():
            want, got = call(*case), call(case[0], *frozen)
            for w, g in zip(*((want, got) if isinstance(want, tuple) else ((want,), (got,)))):
                np.testing.assert_array_equal(g, w)


# --------------------------------------------------------------------------- frameworks

def test_torch_tensors():
    torch = pytest.importorskip("torch", reason="PyTorch not installed")
    r, v, nv, term, trunc = buffer()
    tr = [torch.from_numpy(a) for a in (r, v, nv, term, trunc)]
    tr[1].requires_grad_(True)   # read through detach(); the result has no graph
    got = pgfast.gae(*tr[:3], 0.99, 0.95, *tr[3:])
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    assert not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), pgfast.gae(r, v, nv, 0.99, 0.95, term, trunc))
    policy, theta, obs, actions = policy_case("mlp-softmax", np.float32)
    a, logp = policy.sample(torch.from_numpy(theta), torch.from_numpy(obs),
                            np.random.default_rng(0))
    assert a.dtype == torch.int64 and logp.dtype == torch.float32
    lp = policy.log_prob(torch.from_numpy(theta), torch.from_numpy(obs), a)
    np.testing.assert_array_equal(lp.numpy(), logp.numpy())
    gaussian, theta, obs, actions = policy_case("mlp-gaussian", np.float64)
    out = torch.empty(gaussian.n_params, dtype=torch.float64)
    t = [torch.from_numpy(a) for a in (theta, obs, actions, obs[:, 0].copy())]
    assert gaussian.grad_log_prob(*t[:3], weights=t[3], out=out) is out
    np.testing.assert_array_equal(
        out.numpy(), gaussian.grad_log_prob(theta, obs, actions, weights=obs[:, 0]))
    with pytest.raises(TypeError, match="^rewards: expected a CPU tensor, got one on meta"):
        pgfast.gae(tr[0].to("meta"), *tr[1:3], 0.99, 0.95)
    with pytest.raises(TypeError, match="^rewards: expected a real floating-point torch"):
        pgfast.gae(tr[0].to(torch.int32), *tr[1:3], 0.99, 0.95)
    with pytest.raises(TypeError, match="^values: expected a real floating-point torch"):
        pgfast.gae(tr[0], tr[1].to(torch.complex64), tr[2], 0.99, 0.95)


def test_jax_arrays():
    jnp = pytest.importorskip("jax.numpy", reason="JAX not installed")
    r, v, nv, term, trunc = buffer()
    j = [jnp.asarray(a) for a in (r, v, nv, term, trunc)]
    got = pgfast.gae(*j[:3], 0.99, 0.95, *j[3:])
    assert got.dtype == jnp.float32 and type(got).__module__.startswith("jax")
    np.testing.assert_array_equal(np.asarray(got), pgfast.gae(r, v, nv, 0.99, 0.95, term, trunc))


def test_pgfast_imports_no_framework(tmp_path):
    """NumPy calls import neither a framework nor array-api-compat."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, pgfast, pgfast.integrations.cleanrl\n"
            "pgfast.gae(np.ones(4), np.ones(4), np.ones(4), 0.9, 0.9)\n"
            "print(sorted(m for m in ('torch', 'jax', 'stable_baselines3', 'array_api_compat')"
            " if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
