"""Policies and value functions against plain NumPy references and finite differences."""
import json

import numpy as np
import pytest

import pgfast
from pgfast.reference import entropy as ref_entropy
from pgfast.reference import fisher as ref_fisher
from pgfast.reference import kl as ref_kl
from pgfast.reference import log_prob as ref_log_prob
from pgfast.reference import log_softmax as ref_log_softmax
from pgfast.reference import outputs as ref_outputs
from pgfast import policies as pol

LOG_2PI = np.log(2 * np.pi)

# Small hidden sizes keep finite differences cheap; (32, 16) and obs_dim 20 put a
# layer above the kernel's BLAS threshold so both code paths are checked.
POLICIES = {
    "linear-softmax": lambda: pgfast.LinearSoftmax(3, 4),
    "linear-softmax-2": lambda: pgfast.LinearSoftmax(4, 2),
    "mlp-softmax": lambda: pgfast.MLPSoftmax(3, 3, hidden=(5, 4)),
    "mlp-softmax-blas": lambda: pgfast.MLPSoftmax(20, 3, hidden=(16,)),
    "linear-gaussian": lambda: pgfast.LinearGaussian(3, 2, log_std=-0.3),
    "linear-gaussian-fixed": lambda: pgfast.LinearGaussian(3, 2, log_std=[-0.5, 0.2],
                                                           learn_std=False),
    "mlp-gaussian": lambda: pgfast.MLPGaussian(3, 2, hidden=(5,)),
    "mlp-gaussian-blas": lambda: pgfast.MLPGaussian(4, 1, hidden=(32, 16), log_std=0.4),
}


@pytest.fixture(params=sorted(POLICIES))
def policy(request):
    return POLICIES[request.param]()


def random_theta(policy, rng, scale=0.5):
    """Random parameters large enough that the output layer matters."""
    return scale * rng.standard_normal(policy.n_params)


def random_batch(policy, rng, n=7):
    obs = rng.standard_normal((n, policy.obs_dim))
    if policy.discrete:
        actions = rng.integers(0, policy.n_actions, n)
    else:
        actions = rng.standard_normal((n, policy.act_dim))
    return obs, actions


# ---------------------------------------------------------------------------
# Finite differences (the NumPy references are pgfast.reference)
# ---------------------------------------------------------------------------

def central_diff(f, theta, h=1e-6):
    """∂f/∂θ_j by central differences; f returns an array (stacked on the last axis)."""
    cols = []
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        cols.append((np.asarray(f(theta + e)) - np.asarray(f(theta - e))) / (2 * h))
    return np.stack(cols, axis=-1)


# ---------------------------------------------------------------------------
# Values against the references
# ---------------------------------------------------------------------------

def test_log_prob_matches_reference(policy):
    rng = np.random.default_rng(0)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng)
    np.testing.assert_allclose(policy.log_prob(theta, obs, actions),
                               ref_log_prob(policy, theta, obs, actions), rtol=1e-12, atol=1e-12)


def test_mode_matches_reference(policy):
    rng = np.random.default_rng(1)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng)
    z = ref_outputs(policy, theta, obs)
    mode = policy.mode(theta, obs)
    if policy.discrete:
        assert mode.dtype == np.int64
        np.testing.assert_array_equal(mode, z.argmax(axis=1))
    else:
        np.testing.assert_allclose(mode, z, rtol=1e-12, atol=1e-12)


def test_kl_and_entropy_match_reference(policy):
    rng = np.random.default_rng(2)
    t_old, t_new = random_theta(policy, rng), random_theta(policy, rng)
    obs, _ = random_batch(policy, rng)
    kl = policy.kl(t_old, t_new, obs)
    np.testing.assert_allclose(kl, ref_kl(policy, t_old, t_new, obs), rtol=1e-10, atol=1e-12)
    assert np.all(kl >= 0)
    assert kl.max() > 0
    np.testing.assert_array_equal(policy.kl(t_old, t_old, obs), 0.0)
    np.testing.assert_allclose(policy.entropy(t_old, obs), ref_entropy(policy, t_old, obs),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# Gradients against central differences
# ---------------------------------------------------------------------------

def test_grad_log_prob_finite_differences(policy):
    rng = np.random.default_rng(3)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng)
    rows = policy.grad_log_prob(theta, obs, actions)
    assert rows.shape == (len(obs), policy.n_params)
    fd = central_diff(lambda t: policy.log_prob(t, obs, actions), theta)
    np.testing.assert_allclose(rows, fd, rtol=1e-6, atol=1e-7)


def test_weighted_grad_equals_weights_at_rows(policy):
    rng = np.random.default_rng(4)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng, n=33)
    w = rng.standard_normal(33)
    rows = policy.grad_log_prob(theta, obs, actions)
    np.testing.assert_allclose(policy.grad_log_prob(theta, obs, actions, weights=w), w @ rows,
                               rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("obs_dim", [1, 2, 3, 4, 5, 6])
def test_one_pass_binary_softmax_sum_matches_rows(obs_dim):
    """The one-pass LinearSoftmax(·, 2) weighted sum (over several row blocks) and
    per-sample rows, with logits large enough to reach both tails of the sigmoid;
    every width the kernel specialises and two it does not."""
    policy = pgfast.LinearSoftmax(obs_dim, 2)
    rng = np.random.default_rng(20)
    theta = 40.0 * rng.standard_normal(policy.n_params)
    obs, actions = random_batch(policy, rng, n=700)
    w = rng.standard_normal(700)
    rows = policy.grad_log_prob(theta, obs, actions)
    p1 = np.exp(ref_log_softmax(ref_outputs(policy, theta, obs))[:, 1])
    d = w * (actions - p1)
    want = np.concatenate([np.stack([-obs.T @ d, obs.T @ d], axis=1).ravel(),
                           [-d.sum(), d.sum()]])
    got = policy.grad_log_prob(theta, obs, actions, weights=w)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got, w @ rows, rtol=1e-12, atol=1e-12)
    d1 = actions - p1   # the one-pass rows as well: [x (−d1), x d1, −d1, d1] per sample
    want_rows = np.concatenate([np.stack([-obs * d1[:, None], obs * d1[:, None]], axis=2)
                                .reshape(len(obs), -1), -d1[:, None], d1[:, None]], axis=1)
    np.testing.assert_allclose(rows, want_rows, rtol=1e-12, atol=1e-12)


def test_score_sum_same_bits_whatever_the_action_dtype():
    """int64 indices take the one-pass kernel as they are, other dtypes and strided
    views are converted first: the same sum, bit for bit."""
    policy = pgfast.LinearSoftmax(4, 2)
    rng = np.random.default_rng(21)
    theta = 3.0 * rng.standard_normal(policy.n_params)
    obs, actions = random_batch(policy, rng, n=1001)
    w = rng.standard_normal(1001)
    got = policy.grad_log_prob(theta, obs, actions, weights=w)
    for other in (actions.astype(np.float64), actions.astype(np.int32), actions.tolist(),
                  np.repeat(actions, 2)[::2]):
        np.testing.assert_array_equal(policy.grad_log_prob(theta, obs, other, weights=w), got)


@pytest.mark.parametrize("make", [lambda: pgfast.LinearSoftmax(4, 2),
                                  lambda: pgfast.LinearSoftmax(3, 4),
                                  lambda: pgfast.MLPSoftmax(4, 2, hidden=(5,)),
                                  lambda: pgfast.LinearGaussian(4, 2)],
                         ids=["one-pass", "linear-4-actions", "mlp", "gaussian"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_score_sum_names_a_non_finite_input(make, bad):
    """The one-pass sum reads obs and weights once and names a NaN or infinity from
    its result; a zero weight on the bad row (inf * 0) is caught as well. Finite
    inputs whose sum overflows (linear policies) are blamed on their magnitude."""
    policy = make()
    rng = np.random.default_rng(22)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng, n=300)
    w = rng.standard_normal(300)
    for row in (0, 137, 299):
        for zero_weight in (False, True):
            o, ww = obs.copy(), w.copy()
            o[row, row % policy.obs_dim] = bad
            ww[row] = 0.0 if zero_weight else ww[row]
            with pytest.raises(ValueError, match="obs: expected finite values"):
                policy.grad_log_prob(theta, o, actions, weights=ww)
        ww = w.copy()
        ww[row] = bad
        with pytest.raises(ValueError, match="weights: expected finite values"):
            policy.grad_log_prob(theta, obs, actions, weights=ww)
    if not policy.hidden:   # (tanh layers saturate rather than overflow)
        with pytest.raises(ValueError, match="theta: Σ w ∇log π is not finite"):
            policy.grad_log_prob(theta, 1e300 * obs, actions, weights=1e300 * w)


@pytest.mark.parametrize("bad", [2, -1, 1 << 40, -(1 << 62)])
def test_score_sum_names_a_bad_int_action(bad):
    """The one-pass kernel's check of int64 actions (an OR of the indices) refuses
    every index but 0 and 1, and the error names it."""
    policy = pgfast.LinearSoftmax(4, 2)
    rng = np.random.default_rng(23)
    obs, actions = random_batch(policy, rng, n=77)
    actions[76] = bad
    with pytest.raises(ValueError, match=rf"actions: expected integers in \[0, 2\) .* got {bad}"):
        policy.grad_log_prob(np.zeros(policy.n_params), obs, actions, weights=np.ones(77))


@pytest.mark.parametrize("num_threads", [1, 2])
def test_rows_that_overflow_are_refused(num_threads):
    """The per-sample rows are not read again when the kernel bounded them as it
    wrote them; rows that overflow (finite inputs, products beyond float64) still
    raise, from either bound: a hidden δ times a large input, or 1/σ² itself."""
    policy = pgfast.MLPSoftmax(3, 2, hidden=(4,))
    params = policy.unpack(policy.init(np.random.default_rng(0)))
    params["W0"] *= 1e-11   # tanh stays unsaturated for inputs of 1e10
    params["W1"][:] = [1e300, -1e300]   # δ of the hidden layer ≈ 1e300
    obs = np.full((5, 3), 1e10)
    theta = policy.pack(params)
    with pytest.raises(ValueError, match="^theta, obs, actions: ∇log π is not finite"):
        policy.grad_log_prob(theta, obs, [0, 1, 0, 1, 1], num_threads=num_threads)
    params["W1"][:] = 1.0   # the same inputs, bounded rows: returned unread
    rows = policy.grad_log_prob(policy.pack(params), obs, [0, 1, 0, 1, 1],
                                num_threads=num_threads)
    assert np.isfinite(rows).all()
    gaussian = pgfast.LinearGaussian(3, 1)
    theta = gaussian.pack({"W0": np.zeros((3, 1)), "b0": np.zeros(1), "log_std": [-400.0]})
    with pytest.raises(ValueError, match="^theta, obs, actions: ∇log π is not finite"):
        gaussian.grad_log_prob(theta, np.ones((4, 3)), np.ones((4, 1)), num_threads=num_threads)


def test_grad_log_prob_rows_whatever_the_thread_count(policy):
    rng = np.random.default_rng(25)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng, n=301)
    one = policy.grad_log_prob(theta, obs, actions)
    np.testing.assert_array_equal(policy.grad_log_prob(theta, obs, actions, num_threads=2), one)
    with pytest.raises(ValueError, match="num_threads"):
        policy.grad_log_prob(theta, obs, actions, num_threads=0)


def test_grad_log_prob_out(policy):
    rng = np.random.default_rng(24)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng)
    buf = np.full((len(obs), policy.n_params), np.nan)
    got = policy.grad_log_prob(theta, obs, actions, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, policy.grad_log_prob(theta, obs, actions))
    g = np.full(policy.n_params, np.nan)
    w = rng.standard_normal(len(obs))
    policy.grad_log_prob(theta, obs, actions, weights=w, out=g)
    np.testing.assert_array_equal(g, policy.grad_log_prob(theta, obs, actions, weights=w))
    with pytest.raises(ValueError, match="out: expected"):
        policy.grad_log_prob(theta, obs, actions, out=np.empty((len(obs), 1)))
    with pytest.raises(ValueError, match="out: expected"):
        policy.grad_log_prob(theta, obs, actions, out=np.empty((policy.n_params, len(obs))).T)


def test_kl_grad_finite_differences(policy):
    rng = np.random.default_rng(5)
    t_old, t_new = random_theta(policy, rng), random_theta(policy, rng)
    obs, _ = random_batch(policy, rng)
    grad = policy.kl_grad(t_old, t_new, obs)
    fd = central_diff(lambda t: ref_kl(policy, t_old, t, obs).mean(), t_new)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    at_old = policy.kl_grad(t_old, t_old, obs)
    np.testing.assert_allclose(at_old, 0.0, atol=1e-14)


def test_entropy_grad_finite_differences(policy):
    rng = np.random.default_rng(22)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng)
    fd = central_diff(lambda t: ref_entropy(policy, t, obs).mean(), theta)
    np.testing.assert_allclose(policy.entropy_grad(theta, obs), fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# Fisher information
# ---------------------------------------------------------------------------

def test_fisher_matches_reference_and_fvp(policy):
    rng = np.random.default_rng(6)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng, n=9)
    F = policy.fisher(theta, obs)
    np.testing.assert_allclose(F, F.T, atol=1e-13)
    assert np.linalg.eigvalsh(F).min() > -1e-10
    np.testing.assert_allclose(F, ref_fisher(policy, theta, obs), rtol=1e-6, atol=1e-8)
    for _ in range(3):
        v = rng.standard_normal(policy.n_params)
        np.testing.assert_allclose(policy.fisher_vector_product(theta, obs, v), F @ v,
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("num_threads", [2, 3])
def test_fisher_products_over_threads_equal_one_thread(policy, num_threads):
    """Row blocks fixed by the batch, summed in order: the product is the one-thread
    one bit for bit, through fisher_vector_product and the shared-forward operator."""
    rng = np.random.default_rng(26)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng, n=301)   # three blocks of at most 128 rows
    op = policy.fisher_operator(theta, obs, num_threads=num_threads)
    for _ in range(2):
        v = rng.standard_normal(policy.n_params)
        want = policy.fisher_vector_product(theta, obs, v)
        np.testing.assert_array_equal(
            policy.fisher_vector_product(theta, obs, v, num_threads=num_threads), want)
        np.testing.assert_array_equal(op(v), want)
    # more threads than rows: the extra threads have no block
    few = obs[:2]
    v = rng.standard_normal(policy.n_params)
    np.testing.assert_array_equal(policy.fisher_vector_product(theta, few, v, num_threads=4),
                                  policy.fisher_vector_product(theta, few, v))
    with pytest.raises(ValueError, match="num_threads"):
        policy.fisher_vector_product(theta, obs, v, num_threads=0)


def test_fisher_operator_equals_fvp(policy):
    rng = np.random.default_rng(23)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng, n=300)
    op = policy.fisher_operator(theta, obs)
    theta_copy = theta.copy()
    theta += 1.0  # the operator holds its own copy
    for _ in range(2):
        v = rng.standard_normal(policy.n_params)
        np.testing.assert_allclose(op(v), policy.fisher_vector_product(theta_copy, obs, v),
                                   rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="v: expected"):
        op(np.ones(policy.n_params + 1))


def test_fisher_is_kl_hessian(policy):
    """F = ∇²_{θ'} mean KL(π_θ ‖ π_θ') at θ' = θ: the KL gradient's directional derivative."""
    rng = np.random.default_rng(7)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng)
    v = rng.standard_normal(policy.n_params)
    h = 1e-5
    hv = (policy.kl_grad(theta, theta + h * v, obs)
          - policy.kl_grad(theta, theta - h * v, obs)) / (2 * h)
    np.testing.assert_allclose(policy.fisher_vector_product(theta, obs, v), hv,
                               rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------

def test_sample_log_probs_and_reproducibility(policy):
    rng = np.random.default_rng(8)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng, n=50)
    a1, lp1 = policy.sample(theta, obs, np.random.default_rng(42))
    a2, lp2 = policy.sample(theta, obs, np.random.default_rng(42))
    a3, _ = policy.sample(theta, obs, np.random.default_rng(43))
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(lp1, lp2)
    assert not np.array_equal(a1, a3)
    if policy.discrete:
        assert a1.dtype == np.int64 and a1.shape == (50,)
    else:
        assert a1.dtype == np.float64 and a1.shape == (50, policy.act_dim)
    np.testing.assert_allclose(lp1, policy.log_prob(theta, obs, a1), rtol=1e-10, atol=1e-10)


def test_sampling_row_by_row_equals_batch(policy):
    """The rollout loop calls the kernel one env slot (n = 1) at a time: the draws
    must not depend on how the batch is split."""
    rng = np.random.default_rng(21)
    theta = random_theta(policy, rng)
    obs, _ = random_batch(policy, rng, n=6)
    batch, lp_batch = policy.sample(theta, obs, np.random.default_rng(3))
    gen = np.random.default_rng(3)
    singles = [policy.sample(theta, o, gen) for o in obs]
    np.testing.assert_array_equal(np.concatenate([a for a, _ in singles]), batch)
    np.testing.assert_array_equal(np.concatenate([lp for _, lp in singles]), lp_batch)
    np.testing.assert_array_equal(np.concatenate([policy.mode(theta, o) for o in obs]),
                                  policy.mode(theta, obs))


def test_softmax_sampling_frequencies():
    policy = pgfast.LinearSoftmax(2, 4)
    theta = policy.pack({"W0": np.zeros((2, 4)), "b0": np.log([0.1, 0.2, 0.3, 0.4])})
    n = 40_000
    actions, _ = policy.sample(theta, np.zeros((n, 2)), np.random.default_rng(9))
    freq = np.bincount(actions, minlength=4) / n
    p = np.array([0.1, 0.2, 0.3, 0.4])
    # 5 standard errors: fails for a wrong distribution, not by chance
    np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / n))


def test_gaussian_sampling_moments():
    policy = pgfast.LinearGaussian(1, 2, log_std=[np.log(0.5), np.log(2.0)])
    theta = policy.pack({"W0": np.array([[1.0, -1.0]]), "b0": np.array([0.5, 3.0]),
                         "log_std": np.log([0.5, 2.0])})
    n = 40_000
    actions, _ = policy.sample(theta, np.full((n, 1), 2.0), np.random.default_rng(10))
    mean, std = np.array([2.5, 1.0]), np.array([0.5, 2.0])
    np.testing.assert_array_less(np.abs(actions.mean(0) - mean), 5 * std / np.sqrt(n))
    np.testing.assert_array_less(np.abs(actions.std(0) / std - 1), 5 / np.sqrt(2 * n))
    assert abs(np.corrcoef(actions.T)[0, 1]) < 5 / np.sqrt(n)


# ---------------------------------------------------------------------------
# Numerical stability
# ---------------------------------------------------------------------------

def test_softmax_stable_for_huge_logits():
    policy = pgfast.LinearSoftmax(1, 3)
    theta = policy.pack({"W0": np.array([[1e3, -1e3, 0.0]]), "b0": np.zeros(3)})
    obs = np.array([[1.0], [-1.0]])
    lp = policy.log_prob(theta, obs, [0, 0])
    np.testing.assert_allclose(lp, [0.0, -2e3], rtol=1e-12)
    g = policy.grad_log_prob(theta, obs, [1, 2])
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[0], [-1.0, 1.0, 0.0, -1.0, 1.0, 0.0], atol=1e-300)
    assert np.all(np.isfinite(policy.kl(theta, -theta, obs)))
    assert np.all(np.isfinite(policy.entropy(theta, obs)))
    assert np.all(np.isfinite(policy.fisher_vector_product(theta, obs, np.ones(6))))
    actions, logp = policy.sample(theta, obs, np.random.default_rng(11))
    np.testing.assert_array_equal(actions, [0, 1])
    np.testing.assert_array_equal(logp, [0.0, 0.0])


def test_gaussian_stable_for_tiny_std():
    policy = pgfast.LinearGaussian(1, 1, log_std=-20.0)
    theta = policy.pack({"W0": np.array([[1.0]]), "b0": np.array([0.0]),
                         "log_std": np.array([-20.0])})
    obs = np.array([[1.0]])
    far = np.array([[11.0]])  # 10 away from the mean: 2e9 standard deviations
    lp = policy.log_prob(theta, obs, far)
    u = 10.0 * np.exp(20.0)
    assert lp[0] == pytest.approx(-0.5 * u**2 + 20.0 - 0.5 * LOG_2PI, rel=1e-12)
    assert np.all(np.isfinite(policy.grad_log_prob(theta, obs, far)))
    actions, logp = policy.sample(theta, obs, np.random.default_rng(12))
    assert abs(actions[0, 0] - 1.0) < 1e-7 and np.isfinite(logp[0])
    theta2 = theta.copy()
    theta2[-1] = 0.0
    assert np.all(np.isfinite(policy.kl(theta, theta2, obs)))
    assert np.all(np.isfinite(policy.kl_grad(theta2, theta, obs)))
    assert np.all(np.isfinite(policy.fisher_vector_product(theta, obs, np.ones(3))))


# ---------------------------------------------------------------------------
# Shapes, layout, initialisation, configuration
# ---------------------------------------------------------------------------

def test_pack_unpack_roundtrip_and_layout():
    policy = pgfast.MLPGaussian(3, 2, hidden=(4,), log_std=-1.0)
    theta = np.arange(policy.n_params, dtype=float)
    params = policy.unpack(theta)
    assert list(params) == ["W0", "b0", "W1", "b1", "log_std"]
    assert params["W0"].shape == (3, 4) and params["W1"].shape == (4, 2)
    np.testing.assert_array_equal(params["W0"].ravel(), np.arange(12))
    np.testing.assert_array_equal(policy.pack(params), theta)
    assert policy.n_params == 3 * 4 + 4 + 4 * 2 + 2 + 2
    assert pgfast.LinearGaussian(3, 2, learn_std=False).n_params == 8


def test_init_orthogonal_and_log_std():
    policy = pgfast.MLPGaussian(5, 2, hidden=(8, 8), log_std=-0.5)
    params = policy.unpack(policy.init(np.random.default_rng(13)))
    np.testing.assert_allclose(params["W1"].T @ params["W1"], 2 * np.eye(8), atol=1e-12)
    np.testing.assert_allclose(params["W0"] @ params["W0"].T, 2 * np.eye(5), atol=1e-12)
    np.testing.assert_allclose(params["W2"].T @ params["W2"], 1e-4 * np.eye(2), atol=1e-15)
    np.testing.assert_array_equal(params["b0"], 0.0)
    np.testing.assert_array_equal(params["log_std"], -0.5)
    np.testing.assert_array_equal(policy.init(np.random.default_rng(13)),
                                  policy.init(np.random.default_rng(13)))


def test_single_observation_and_float32(policy):
    rng = np.random.default_rng(14)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng, n=1)
    lp = policy.log_prob(theta, obs[0].astype(np.float32), actions)
    np.testing.assert_allclose(
        lp, ref_log_prob(policy, theta, obs.astype(np.float32).astype(float), actions),
        rtol=1e-12)
    a, logp = policy.sample(theta, obs[0], np.random.default_rng(0))
    assert logp.shape == (1,) and len(a) == 1


def test_config_roundtrip(policy):
    cfg = policy.config()
    rebuilt = pol.from_config(json.loads(json.dumps(cfg)))
    assert type(rebuilt) is type(policy)
    assert rebuilt.config() == cfg
    rng = np.random.default_rng(15)
    theta = random_theta(policy, rng)
    obs, actions = random_batch(policy, rng)
    np.testing.assert_array_equal(rebuilt.log_prob(theta, obs, actions),
                                  policy.log_prob(theta, obs, actions))


def test_policy_for_spaces():
    from gymnasium import spaces

    box = spaces.Box(-1.0, 1.0, (4,))
    assert isinstance(pgfast.policy_for(box, spaces.Discrete(3)), pgfast.LinearSoftmax)
    mlp = pgfast.policy_for(box, spaces.Box(-1.0, 1.0, (2,)), hidden=(8,), log_std=-1.0)
    assert isinstance(mlp, pgfast.MLPGaussian)
    assert (mlp.obs_dim, mlp.act_dim, mlp.hidden) == (4, 2, (8,))
    with pytest.raises(TypeError, match="action_space"):
        pgfast.policy_for(box, spaces.MultiDiscrete([2, 2]))


def test_kernel_contract_attributes():
    k = pgfast.MLPSoftmax(4, 3, hidden=(8,)).kernel
    assert isinstance(k, pgfast._policies.PolicyKernel)
    assert (k.obs_dim, k.act_dim, k.n_actions, k.n_params, k.work_size) == (4, 1, 3, 67, 11)
    g = pgfast.LinearGaussian(4, 2).kernel
    assert (g.obs_dim, g.act_dim, g.n_actions, g.n_params, g.work_size) == (4, 2, 0, 12, 2)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------

def test_finite_check_survives_an_overflowing_sum():
    """Inputs are cleared by one sum first; finite values whose sum overflows still
    pass, and a NaN or infinity among them is still refused."""
    policy = pgfast.LinearSoftmax(3, 2)
    theta = np.zeros(policy.n_params)
    big = np.full((4, 3), 1e308)
    np.testing.assert_allclose(policy.log_prob(theta, big, [0, 1, 0, 1]), np.log(0.5))
    for bad in (np.nan, np.inf, -np.inf):
        big[2, 1] = bad
        with pytest.raises(ValueError, match="obs: expected finite values"):
            policy.log_prob(theta, big, [0, 1, 0, 1])


def test_bad_inputs_raise_named_errors():
    policy = pgfast.LinearSoftmax(3, 2)
    theta = np.zeros(policy.n_params)
    obs = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"theta: expected .* length 8 .* got length 7"):
        policy.log_prob(theta[:-1], obs, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"obs: expected .* width 3 .* \(4, 2\)"):
        policy.log_prob(theta, np.zeros((4, 2)), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"actions: expected integers in \[0, 2\) .* got 2"):
        policy.log_prob(theta, obs, [0, 1, 2, 1])
    with pytest.raises(ValueError, match="actions: expected integers"):
        policy.log_prob(theta, obs, [0, -1, 0, 1])
    with pytest.raises(ValueError, match="actions: expected integers"):
        policy.log_prob(theta, obs, [0, 0.5, 0, 1])
    with pytest.raises(ValueError, match=r"actions: expected shape \(4,\)"):
        policy.log_prob(theta, obs, [0, 1])
    bad = obs.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="obs: expected finite"):
        policy.sample(theta, bad, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"weights: expected shape \(4,\)"):
        policy.grad_log_prob(theta, obs, [0, 1, 0, 1], weights=np.ones(3))
    with pytest.raises(TypeError, match="rng"):
        policy.sample(theta, obs, 0.5)
    with pytest.raises(ValueError, match="theta_new"):
        policy.kl(theta, theta[:5], obs)
    with pytest.raises(ValueError, match="v: expected"):
        policy.fisher_vector_product(theta, obs, np.ones(3))
    gauss = pgfast.LinearGaussian(3, 2)
    with pytest.raises(ValueError, match=r"actions: expected shape \(4, 2\)"):
        gauss.log_prob(np.zeros(gauss.n_params), obs, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="actions: expected finite"):
        gauss.log_prob(np.zeros(gauss.n_params), obs, np.full((4, 2), np.inf))
    with pytest.raises(ValueError, match="obs_dim"):
        pgfast.LinearSoftmax(0, 2)
    with pytest.raises(ValueError, match="log_std"):
        pgfast.LinearGaussian(3, 2, log_std=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="hidden"):
        pgfast.MLPSoftmax(3, 2, hidden=())


def test_empty_batch():
    policy = pgfast.MLPGaussian(3, 2, hidden=(4,))
    theta = policy.init(np.random.default_rng(0))
    obs = np.zeros((0, 3))
    assert policy.log_prob(theta, obs, np.zeros((0, 2))).shape == (0,)
    assert policy.grad_log_prob(theta, obs, np.zeros((0, 2))).shape == (0, policy.n_params)
    np.testing.assert_array_equal(
        policy.grad_log_prob(theta, obs, np.zeros((0, 2)), weights=np.zeros(0)), 0.0)
    actions, logp = policy.sample(theta, obs, np.random.default_rng(0))
    assert actions.shape == (0, 2) and logp.shape == (0,)


# ---------------------------------------------------------------------------
# Value functions
# ---------------------------------------------------------------------------

VALUES = {
    "linear": lambda: pgfast.LinearValue(3),
    "mlp": lambda: pgfast.MLPValue(3, hidden=(6, 5)),
    "mlp-blas": lambda: pgfast.MLPValue(20, hidden=(16,)),
}


@pytest.fixture(params=sorted(VALUES))
def value_fn(request):
    return VALUES[request.param]()


def test_value_matches_reference(value_fn):
    rng = np.random.default_rng(16)
    phi = rng.standard_normal(value_fn.n_params)
    obs = rng.standard_normal((11, value_fn.obs_dim))
    np.testing.assert_allclose(value_fn.value(phi, obs), ref_outputs(value_fn, phi, obs)[:, 0],
                               rtol=1e-12, atol=1e-12)


def test_value_loss_grad_finite_differences(value_fn):
    rng = np.random.default_rng(17)
    phi = 0.5 * rng.standard_normal(value_fn.n_params)
    obs = rng.standard_normal((11, value_fn.obs_dim))
    y = rng.standard_normal(11)

    def loss(p):
        return np.mean(0.5 * (ref_outputs(value_fn, p, obs)[:, 0] - y) ** 2)

    got, grad = value_fn.loss_and_grad(phi, obs, y)
    assert got == pytest.approx(loss(phi), rel=1e-12)
    np.testing.assert_allclose(grad, central_diff(loss, phi), rtol=1e-6, atol=1e-8)


def test_value_init_config_and_errors(value_fn):
    phi = value_fn.init(np.random.default_rng(18))
    assert phi.shape == (value_fn.n_params,)
    rebuilt = pol.from_config(json.loads(json.dumps(value_fn.config())))
    obs = np.random.default_rng(19).standard_normal((5, value_fn.obs_dim))
    np.testing.assert_array_equal(rebuilt.value(phi, obs), value_fn.value(phi, obs))
    with pytest.raises(ValueError, match=r"targets: expected shape \(5,\)"):
        value_fn.loss_and_grad(phi, obs, np.zeros(4))
    with pytest.raises(ValueError, match="phi: expected"):
        value_fn.value(phi[1:], obs)


def test_rollout_tanh_is_accurate():
    """The kernel's own tanh (the per-row sample/mode path) against numpy's, through
    a one-unit network whose mean is tanh(x)."""
    policy = pgfast.MLPGaussian(1, 1, hidden=(1,))
    theta = policy.pack({"W0": [[1.0]], "b0": [0.0], "W1": [[1.0]], "b1": [0.0],
                         "log_std": [0.0]})
    x = np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-300, 25, 2000),
                        -np.geomspace(1e-300, 25, 2000), [0.0, 0.3465, 0.3466, 22.0, 1e300]])
    got = policy.mode(theta, x[:, None])[:, 0]
    np.testing.assert_allclose(got, np.tanh(x), rtol=4 * np.finfo(float).eps, atol=0)
    assert np.all(np.abs(got) <= 1.0)


def test_results_do_not_depend_on_blas_threads(tmp_path):
    """The same MLP products (Fisher matrix, Fisher-vector products over two OpenMP
    row blocks, scores, value fit) bit for bit with 1 and 2 BLAS threads: pgfast runs
    its matrix products on one BLAS thread."""
    import subprocess
    import sys

    script = (
        "import hashlib, numpy as np, pgfast\n"
        "rng = np.random.default_rng(0)\n"
        "pol = pgfast.MLPSoftmax(8, 3, hidden=(64, 64))\n"
        "th = pol.init(rng) + 0.1 * rng.standard_normal(pol.n_params)\n"
        "obs = rng.standard_normal((3000, 8)); act = rng.integers(0, 3, 3000)\n"
        "h = hashlib.sha256()\n"
        "for a in (pol.fisher(th, obs[:500]), pol.fisher_vector_product(th, obs, th, num_threads=2),\n"
        "          pol.fisher_operator(th, obs, num_threads=2)(th), pol.grad_log_prob(th, obs, act)):\n"
        "    h.update(a.tobytes())\n"
        "print(h.hexdigest())\n")
    digests = set()
    for threads in ("1", "2"):
        env = dict(__import__("os").environ, OPENBLAS_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                             capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1
