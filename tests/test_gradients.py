"""pgfast.regression_gradient, likelihood_ratio_gradient, optimal_baseline against
plain NumPy/Python references (loops over episodes, numpy.linalg.pinv)."""
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pgfast
from pgfast.reference import likelihood_ratio_terms as ref_terms
from pgfast.reference import optimal_baseline as ref_baseline
from pgfast.reference import regression_gradient as ref_pinv_solve

MODES = ("trajectory", "reward_to_go", "baseline")


def random_buffer(rng, T, B, P, p_term=0.15, p_trunc=0.1, dtype=np.float64):
    shape = (T,) if B is None else (T, B)
    scores = rng.standard_normal(shape + (P,)).astype(dtype)
    rewards = rng.standard_normal(shape).astype(dtype)
    term = rng.random(shape) < p_term
    trunc = rng.random(shape) < p_trunc
    return scores, rewards, term, trunc


# --------------------------------------------------------------------------- regression

def assert_solution_close(x, a, y, rcond=1e-15):
    """Close to the pinv solution within the problem's own conditioning."""
    ref = ref_pinv_solve(a, y, rcond)
    s = np.linalg.svd(a, compute_uv=False)
    kept = s[s > rcond * s[0]] if s.size and s[0] > 0 else np.array([1.0])
    cond = kept[0] / kept[-1]
    scale = max(np.linalg.norm(ref), np.linalg.norm(y) / kept[0], 1e-300)
    np.testing.assert_allclose(x, ref, rtol=0, atol=1e-12 * cond * scale)


@pytest.mark.parametrize("m, n", [(16, 8), (8, 16), (6, 6), (1, 4), (4, 1), (1, 1), (40, 3)])
def test_regression_random_matches_pinv_and_lstsq(m, n):
    rng = np.random.default_rng(m * 100 + n)
    for _ in range(20):
        a = rng.standard_normal((m, n))
        y = rng.standard_normal(m)
        x = pgfast.regression_gradient(a, y)
        assert x.shape == (n,) and x.dtype == np.float64
        assert_solution_close(x, a, y)
        lstsq = np.linalg.lstsq(a, y, rcond=1e-15)[0]
        np.testing.assert_allclose(x, lstsq, atol=1e-9 * max(1.0, np.linalg.norm(lstsq)))


@pytest.mark.parametrize("m, n, r", [(16, 8, 3), (8, 16, 2), (10, 10, 9), (5, 7, 1), (12, 4, 0)])
def test_regression_rank_deficient_is_minimum_norm(m, n, r):
    rng = np.random.default_rng(m + 7 * n + r)
    for _ in range(10):
        a = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
        y = rng.standard_normal(m)
        x = pgfast.regression_gradient(a, y)
        ref = ref_pinv_solve(a, y)
        np.testing.assert_allclose(x, ref, atol=1e-9 * max(1.0, np.linalg.norm(ref)))
        # Minimum norm: no component in the null space of a.
        if r < n:
            null = np.linalg.svd(a)[2][r:]
            np.testing.assert_allclose(null @ x, 0.0, atol=1e-9 * max(1.0, np.linalg.norm(x)))


def test_regression_duplicate_and_zero_columns():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((16, 8))
    a[:, 3] = a[:, 1]
    a[:, 5] = 0.0
    y = rng.standard_normal(16)
    x = pgfast.regression_gradient(a, y)
    np.testing.assert_allclose(x, ref_pinv_solve(a, y), atol=1e-12)
    assert x[5] == 0.0
    assert np.isclose(x[1], x[3])


def test_regression_all_zero_matrix_gives_zero():
    np.testing.assert_array_equal(pgfast.regression_gradient(np.zeros((5, 3)), np.ones(5)), 0.0)


@pytest.mark.parametrize("rcond", [0.0, 1e-12, 1e-4, 0.3, 2.0])
def test_regression_rcond_cutoff_like_pinv(rcond):
    rng = np.random.default_rng(11)
    u = np.linalg.qr(rng.standard_normal((12, 12)))[0][:, :6]
    v = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    s = np.array([1.0, 0.5, 0.1, 1e-3, 1e-6, 1e-9])
    a = (u * s) @ v.T
    y = rng.standard_normal(12)
    x = pgfast.regression_gradient(a, y, rcond=rcond)
    if rcond >= 1.0:
        np.testing.assert_array_equal(x, 0.0)
        np.testing.assert_array_equal(ref_pinv_solve(a, y, rcond), 0.0)
    else:
        assert_solution_close(x, a, y, rcond)


def test_regression_ill_conditioned_full_rank():
    rng = np.random.default_rng(12)
    for exponent in (4, 8, 11, 13):
        u = np.linalg.qr(rng.standard_normal((16, 16)))[0][:, :8]
        v = np.linalg.qr(rng.standard_normal((8, 8)))[0]
        a = (u * np.logspace(0, -exponent, 8)) @ v.T
        y = a @ rng.standard_normal(8)
        assert_solution_close(pgfast.regression_gradient(a, y), a, y)


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_regression_extreme_scales(scale):
    rng = np.random.default_rng(13)
    a = rng.standard_normal((16, 8)) * scale
    y = rng.standard_normal(16)
    x = pgfast.regression_gradient(a, y)
    ref = ref_pinv_solve(a, y)
    np.testing.assert_allclose(x, ref, rtol=1e-9)


def test_regression_batch_equals_loop_and_pinv():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((50, 16, 8))
    a[::7] = rng.standard_normal((8, 16, 3)) @ rng.standard_normal((8, 3, 8))  # mixed ranks
    y = rng.standard_normal((50, 16))
    x = pgfast.regression_gradient(a, y)
    assert x.shape == (50, 8)
    for k in range(50):
        np.testing.assert_array_equal(x[k], pgfast.regression_gradient(a[k], y[k]))
    ref = (np.linalg.pinv(a) @ y[..., None])[..., 0]
    np.testing.assert_allclose(x, ref, atol=1e-9)


def test_regression_dtypes_and_layouts():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((16, 8))
    y = rng.standard_normal(16)
    x32 = pgfast.regression_gradient(a.astype(np.float32), y.astype(np.float32))
    assert x32.dtype == np.float32   # float32 in, float32 out; computed in float64
    np.testing.assert_array_equal(
        x32, pgfast.regression_gradient(a.astype(np.float32).astype(np.float64),
                                        y.astype(np.float32).astype(np.float64)
                                        ).astype(np.float32))
    fortran = np.asfortranarray(a)
    strided_y = np.repeat(y, 2)[::2]
    ro = a.copy()
    ro.flags.writeable = False
    base = pgfast.regression_gradient(a, y)
    np.testing.assert_array_equal(pgfast.regression_gradient(fortran, strided_y), base)
    np.testing.assert_array_equal(pgfast.regression_gradient(ro, y), base)
    np.testing.assert_array_equal(pgfast.regression_gradient(a.tolist(), y.tolist()), base)
    ints = pgfast.regression_gradient(np.eye(3, dtype=np.int64), np.array([1, 2, 3]))
    np.testing.assert_allclose(ints, [1.0, 2.0, 3.0])


def test_regression_empty_inputs():
    assert pgfast.regression_gradient(np.zeros((0, 4)), np.zeros(0)).tolist() == [0.0] * 4
    assert pgfast.regression_gradient(np.zeros((3, 0)), np.zeros(3)).shape == (0,)
    assert pgfast.regression_gradient(np.zeros((0, 5, 2)), np.zeros((0, 5))).shape == (0, 2)


@pytest.mark.parametrize("dtheta, du, rcond, err, match", [
    (np.ones(3), np.ones(3), None, ValueError, "dtheta"),
    (np.ones((2, 2, 2, 2)), np.ones((2, 2, 2)), None, ValueError, "dtheta"),
    (np.ones((4, 2)), np.ones(3), None, ValueError, "du"),
    (np.ones((4, 2)), np.ones((4, 1)), None, ValueError, "du"),
    (np.ones((5, 4, 2)), np.ones((4, 5)), None, ValueError, "du"),
    (np.full((4, 2), np.nan), np.ones(4), None, ValueError, "dtheta"),
    (np.ones((4, 2)), np.array([1, np.inf, 0, 0]), None, ValueError, "du"),
    (np.array([["a", "b"]]), np.ones(1), None, TypeError, "dtheta"),
    (np.ones((4, 2)) * 1j, np.ones(4), None, TypeError, "dtheta"),
    (np.ones((4, 2)), np.ones(4), -1e-3, ValueError, "rcond"),
    (np.ones((4, 2)), np.ones(4), float("nan"), ValueError, "rcond"),
    (np.ones((4, 2)), np.ones(4), "1e-3", TypeError, "rcond"),
    (np.ones((4, 2)), np.ones(4), True, TypeError, "rcond"),
])
def test_regression_bad_input(dtheta, du, rcond, err, match):
    with pytest.raises(err, match=match):
        pgfast.regression_gradient(dtheta, du, rcond=rcond)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 12), st.integers(0, 2**32 - 1))
def test_regression_property_matches_pinv(m, n, r, seed):
    rng = np.random.default_rng(seed)
    r = min(r, m, n)
    a = rng.standard_normal((m, r)) @ rng.standard_normal((r, n)) if r < min(m, n) \
        else rng.standard_normal((m, n))
    y = rng.standard_normal(m)
    x = pgfast.regression_gradient(a, y)
    assert np.all(np.isfinite(x))
    assert_solution_close(x, a, y)


# --------------------------------------------------------------------------- likelihood ratio

LAYOUTS = {
    "none": lambda rng, shape: (None, None),
    "terminated": lambda rng, shape: (rng.random(shape) < 0.2, None),
    "truncated": lambda rng, shape: (None, rng.random(shape) < 0.2),
    "both": lambda rng, shape: (rng.random(shape) < 0.15, rng.random(shape) < 0.15),
    "every_step": lambda rng, shape: (np.ones(shape, bool), None),
    "ends_at_last": lambda rng, shape: (
        np.zeros(shape, bool), np.broadcast_to(np.arange(shape[0]) == shape[0] - 1,
                                               shape[::-1]).T.copy()),
    "both_flags_same_step": lambda rng, shape: ((m := rng.random(shape) < 0.2), m.copy()),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("B", [None, 1, 5])
@pytest.mark.parametrize("gamma", [0.0, 0.7, 1.0])
def test_lr_matches_reference_grid(mode, layout, B, gamma):
    rng = np.random.default_rng(zlib.crc32(repr((mode, layout, B, gamma)).encode()))
    T, P = 13, 3
    shape = (T,) if B is None else (T, B)
    scores = rng.standard_normal(shape + (P,))
    rewards = rng.standard_normal(shape)
    term, trunc = LAYOUTS[layout](rng, shape)
    ref = ref_terms(scores, rewards, gamma, term, trunc, mode)
    grad, per = pgfast.likelihood_ratio_gradient(scores, rewards, gamma, term, trunc, mode=mode,
                                                 return_per_trajectory=True)
    assert grad.shape == (P,) and per.shape == ref.shape
    np.testing.assert_allclose(per, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grad, ref.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        pgfast.likelihood_ratio_gradient(scores, rewards, gamma, term, trunc, mode=mode),
        ref.mean(axis=0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_lr_float32_and_layouts(mode):
    rng = np.random.default_rng(21)
    scores, rewards, term, trunc = random_buffer(rng, 20, 4, 3)
    ref = ref_terms(scores, rewards, 0.9, term, trunc, mode).mean(axis=0)
    g32 = pgfast.likelihood_ratio_gradient(scores.astype(np.float32), rewards.astype(np.float32),
                                           0.9, term, trunc, mode=mode)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, ref, rtol=1e-4, atol=1e-5)
    mixed = pgfast.likelihood_ratio_gradient(scores.astype(np.float32), rewards, 0.9, term,
                                             trunc, mode=mode)
    assert mixed.dtype == np.float64
    np.testing.assert_allclose(mixed, ref, rtol=1e-5, atol=1e-6)
    # Strided, Fortran-ordered, read-only, integer flags and nested lists all give the same.
    wide = np.zeros((20, 8, 3))
    wide[:, ::2] = scores
    ro = rewards.copy()
    ro.flags.writeable = False
    g = pgfast.likelihood_ratio_gradient(wide[:, ::2], ro, 0.9, term.astype(np.int8),
                                         np.asfortranarray(trunc), mode=mode)
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-12)
    g_list = pgfast.likelihood_ratio_gradient(scores.tolist(), rewards.tolist(), 0.9,
                                              term.tolist(), trunc.tolist(), mode=mode)
    np.testing.assert_allclose(g_list, ref, rtol=1e-12, atol=1e-12)


def test_lr_one_step_episodes_all_modes_agree_without_baseline():
    rng = np.random.default_rng(22)
    scores, rewards, _, _ = random_buffer(rng, 9, 3, 4)
    done = np.ones((9, 3), bool)
    a = pgfast.likelihood_ratio_gradient(scores, rewards, 0.5, done, mode="trajectory")
    b = pgfast.likelihood_ratio_gradient(scores, rewards, 0.5, done, mode="reward_to_go")
    np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(a, np.einsum("tbp,tb->p", scores, rewards) / 27, rtol=1e-12)


def test_lr_reward_to_go_equals_baseline_with_zero_ratios():
    """Rewards zero everywhere but one step: b collapses and modes are checked by hand."""
    scores = np.array([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
    rewards = np.array([0.0, 0.0, 3.0])
    gamma = 0.5
    # G = [0.75, 1.5, 3], ℓ = s · [1, .5, .25] = [1, 1, -.25] for parameter 0.
    b0 = (1 * 0.75 + 1 * 1.5 + 0.0625 * 3) / (1 + 1 + 0.0625)
    expected0 = 1 * (0.75 - b0) + 1 * (1.5 - b0) - 0.25 * (3 - b0)
    np.testing.assert_allclose(pgfast.optimal_baseline(scores, rewards, gamma), [b0, 0.0])
    g = pgfast.likelihood_ratio_gradient(scores, rewards, gamma, mode="baseline")
    np.testing.assert_allclose(g, [expected0, 0.0])
    rtg = pgfast.likelihood_ratio_gradient(scores, rewards, gamma, mode="reward_to_go")
    np.testing.assert_allclose(rtg, [0.75 + 2 * 0.5 * 1.5 - 0.25 * 3, 0.0])
    traj = pgfast.likelihood_ratio_gradient(scores, rewards, gamma, mode="trajectory")
    np.testing.assert_allclose(traj, [2.0 * 0.75, 0.0])


def test_baseline_zero_score_guard():
    """A parameter whose score is zero in one trajectory: that trajectory is left
    out of its baseline mean (no NaN), and a parameter never scored gets b = 0."""
    scores = np.zeros((4, 2, 3))
    scores[:, 0, 0] = [1.0, 2.0, 0.5, -1.0]     # parameter 0 scored in column 0 only
    scores[:, :, 1] = 1.0                        # parameter 1 everywhere
    rewards = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, 0.0], [1.0, 1.0]])
    b = pgfast.optimal_baseline(scores, rewards, 1.0)
    ref = ref_baseline(scores, rewards, 1.0)
    np.testing.assert_allclose(b, ref)
    assert b[2] == 0.0 and np.all(np.isfinite(b))
    g = pgfast.likelihood_ratio_gradient(scores, rewards, 1.0, mode="baseline")
    np.testing.assert_allclose(g, ref_terms(scores, rewards, 1.0, mode="baseline").mean(0))
    assert g[2] == 0.0


@pytest.mark.parametrize("B", [None, 3])
def test_optimal_baseline_matches_reference(B):
    rng = np.random.default_rng(23)
    scores, rewards, term, trunc = random_buffer(rng, 25, B, 4)
    b = pgfast.optimal_baseline(scores, rewards, 0.95, term, trunc)
    ref = ref_baseline(scores, rewards, 0.95, term, trunc)
    np.testing.assert_allclose(b, ref, rtol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_lr_zero_parameters(mode):
    g, per = pgfast.likelihood_ratio_gradient(np.zeros((5, 2, 0)), np.ones((5, 2)), 0.9,
                                              mode=mode, return_per_trajectory=True)
    assert g.shape == (0,) and per.shape == (2, 0)
    assert pgfast.optimal_baseline(np.zeros((5, 0)), np.ones(5), 0.9).shape == (0,)


@settings(max_examples=80, deadline=None)
@given(
    T=st.integers(1, 12), B=st.one_of(st.none(), st.integers(1, 4)), P=st.integers(1, 3),
    gamma=st.sampled_from([0.0, 0.3, 0.9, 1.0]), mode=st.sampled_from(MODES),
    p_done=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1),
)
def test_lr_property_matches_reference(T, B, P, gamma, mode, p_done, seed):
    rng = np.random.default_rng(seed)
    scores, rewards, term, trunc = random_buffer(rng, T, B, P, p_done / 2, p_done / 2)
    grad, per = pgfast.likelihood_ratio_gradient(scores, rewards, gamma, term, trunc, mode=mode,
                                                 return_per_trajectory=True)
    ref = ref_terms(scores, rewards, gamma, term, trunc, mode)
    np.testing.assert_allclose(per, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grad, ref.mean(axis=0), rtol=1e-10, atol=1e-10)
    # The sum over trajectories does not depend on how columns are ordered.
    if B is not None:
        order = rng.permutation(B)
        perm = pgfast.likelihood_ratio_gradient(scores[:, order], rewards[:, order], gamma,
                                                term[:, order], trunc[:, order], mode=mode)
        np.testing.assert_allclose(perm, grad, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(grad_log_probs=np.ones(5)), ValueError, "grad_log_probs"),
    (dict(grad_log_probs=np.ones((5, 2, 2, 2))), ValueError, "grad_log_probs"),
    (dict(grad_log_probs=np.ones((4, 2))), ValueError, "grad_log_probs"),
    (dict(grad_log_probs=np.ones((5, 3, 2))), ValueError, "grad_log_probs"),
    (dict(rewards=np.ones((5, 1, 1))), ValueError, "rewards"),
    (dict(grad_log_probs=np.ones((0, 2)), rewards=np.ones(0)), ValueError, "rewards"),
    (dict(grad_log_probs=np.ones((3, 0, 2)), rewards=np.ones((3, 0))), ValueError, "rewards"),
    (dict(rewards=np.array([1, 2, np.nan, 4, 5])), ValueError, "rewards"),
    (dict(grad_log_probs=np.full((5, 2), np.inf)), ValueError, "grad_log_probs"),
    (dict(grad_log_probs=np.array([["x", "y"]] * 5)), TypeError, "grad_log_probs"),
    (dict(gamma=1.5), ValueError, "gamma"),
    (dict(gamma="0.9"), TypeError, "gamma"),
    (dict(terminated=np.ones(4, bool)), ValueError, "terminated"),
    (dict(truncated=np.full(5, 2)), ValueError, "truncated"),
    (dict(mode="gae"), ValueError, "mode"),
])
def test_lr_bad_input(kwargs, err, match):
    args = dict(grad_log_probs=np.ones((5, 2)), rewards=np.ones(5), gamma=0.9)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        pgfast.likelihood_ratio_gradient(**args)
    if "mode" not in kwargs:
        with pytest.raises(err, match=match):
            pgfast.optimal_baseline(**args)


@pytest.mark.parametrize("mode", ["trajectory", "reward_to_go", "baseline"])
@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_lr_names_a_non_finite_input_wherever_it_is(mode, gamma, bad):
    """Scores and rewards are read once, by the kernels, and a NaN or infinity is
    named from the gradient it spoils: anywhere in the buffer, beside zero scores
    and zero rewards (inf * 0), at episode starts and ends, with γ = 0 and 1."""
    rng = np.random.default_rng(30)
    T, B, P = 9, 3, 2
    term = np.zeros((T, B), bool)
    term[3, 1] = term[6, 0] = True
    for t, b in [(0, 0), (3, 1), (4, 1), (8, 2), (5, 0)]:
        for zero in (False, True):
            scores = rng.standard_normal((T, B, P))
            rewards = rng.standard_normal((T, B))
            if zero:
                scores[t, b] = 0.0
                rewards[t, b] = 0.0
            s_bad, r_bad = scores.copy(), rewards.copy()
            s_bad[t, b, 1] = bad
            r_bad[t, b] = bad
            with pytest.raises(ValueError, match="grad_log_probs: expected finite values"):
                pgfast.likelihood_ratio_gradient(s_bad, rewards, gamma, term, mode=mode)
            with pytest.raises(ValueError, match="rewards: expected finite values"):
                pgfast.likelihood_ratio_gradient(scores, r_bad, gamma, term, mode=mode)
    with pytest.raises(ValueError, match="rewards: expected finite values"):
        pgfast.likelihood_ratio_gradient(np.ones((3, 0)), [1.0, bad, 2.0], gamma, mode=mode)


def test_kernels_are_compiled():
    from pgfast import _linalg, _scores
    for module in (_linalg, _scores):
        assert not module.__file__.endswith(".py"), module.__file__


def test_regression_both_kernel_routes_are_exercised():
    """Well-conditioned problems take the QR route, rank-deficient and
    ill-conditioned ones the SVD (dgelsd) route; both agree with pinv."""
    from pgfast import _linalg
    rng = np.random.default_rng(31)
    a = rng.standard_normal((4, 16, 8))
    a[1] = rng.standard_normal((16, 2)) @ rng.standard_normal((2, 8))
    a[2] = (np.linalg.qr(rng.standard_normal((16, 8)))[0] * np.logspace(0, -14, 8)) @ np.eye(8)
    y = rng.standard_normal((4, 16))
    out = np.empty((4, 8))
    route = np.empty(4, dtype=np.int8)
    assert _linalg.pinv_solve(a, y, 1e-15, out, route) == -1
    assert route.tolist() == [1, 0, 0, 1]
    for k in range(4):
        assert_solution_close(out[k], a[k], y[k])
