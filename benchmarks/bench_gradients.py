"""pgfast's gradient array functions next to straightforward NumPy, same group.

    pytest benchmarks/bench_gradients.py --benchmark-only -q

The "checks only" cases run the call with its kernels stubbed out: what the
checks, conversions and decorators cost alone (target: at most 5 % of the call).
"""
import types

import numpy as np
import pytest

import pgfast
import pgfast.gradients

# --------------------------------------------------------------------------- regression


def numpy_regression(dtheta, du):
    return (np.linalg.pinv(dtheta) @ du[..., None])[..., 0]


@pytest.fixture(params=[(1000, 16, 8), (200, 64, 32)], ids=lambda s: "x".join(map(str, s)))
def regression_batch(request):
    K, m, n = request.param
    rng = np.random.default_rng(0)
    dtheta = rng.standard_normal((K, m, n))
    du = rng.standard_normal((K, m))
    np.testing.assert_allclose(pgfast.regression_gradient(dtheta, du),
                               numpy_regression(dtheta, du), atol=1e-9)
    return dtheta, du


def _group(request, name):
    """One group per kernel and case, so each table shows pgfast next to NumPy."""
    return f"{name}[{request.node.callspec.id}]"


def test_regression_pgfast(benchmark, regression_batch, request):
    benchmark.group = _group(request, "regression_gradient")
    benchmark(pgfast.regression_gradient, *regression_batch)


def test_regression_checks_only(benchmark, regression_batch, request, monkeypatch):
    benchmark.group = _group(request, "regression_gradient")
    # pinv_solve's "no failure" answer, nothing solved (out stays zero)
    monkeypatch.setattr(pgfast.gradients, "_linalg",
                        types.SimpleNamespace(pinv_solve=lambda *args: -1))
    benchmark(pgfast.regression_gradient, *regression_batch)


def test_regression_numpy_pinv(benchmark, regression_batch, request):
    benchmark.group = _group(request, "regression_gradient")
    benchmark(numpy_regression, *regression_batch)


# --------------------------------------------------------------------------- likelihood ratio


def numpy_likelihood_ratio(scores, rewards, gamma, terminated, truncated, mode):
    """The book's estimators in plain NumPy: time loops vectorised over columns,
    per-episode sums with np.add.at."""
    T, B, P = scores.shape
    done = terminated | truncated
    togo = np.empty((T, B))
    following = np.zeros(B)
    for t in range(T - 1, -1, -1):
        ends = done[t] | (t == T - 1)
        following = rewards[t] + gamma * np.where(ends, 0.0, following)
        togo[t] = following
    powers = np.empty((T, B))
    starts = np.zeros((T, B), bool)
    starts[0] = True
    starts[1:] = done[:-1]
    current = np.ones(B)
    for t in range(T):
        current = np.where(starts[t], 1.0, current * gamma)
        powers[t] = current
    # Episode index of every step: numbered column by column.
    ends = done.copy()
    ends[-1] = True
    per_column = ends.sum(axis=0)
    offsets = np.concatenate(([0], np.cumsum(per_column)[:-1]))
    ids = (np.cumsum(starts, axis=0) - 1 + offsets).ravel()
    n_traj = per_column.sum()
    flat_scores = scores.reshape(-1, P)

    def per_episode(x):
        out = np.zeros((n_traj,) + x.shape[1:])
        np.add.at(out, ids, x)
        return out

    if mode == "trajectory":
        ret = np.zeros(n_traj)
        ret[ids[starts.ravel()]] = togo.ravel()[starts.ravel()]
        terms = per_episode(flat_scores) * ret[:, None]
    elif mode == "reward_to_go":
        terms = per_episode(flat_scores * (powers * togo).reshape(-1, 1))
    else:
        ell = flat_scores * powers.reshape(-1, 1)
        g = togo.reshape(-1, 1)
        num = per_episode(ell ** 2 * g)
        den = per_episode(ell ** 2)
        ratio = np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)
        valid = den > 0
        b = np.where(valid.any(0), np.nansum(ratio, 0) / np.maximum(valid.sum(0), 1), 0.0)
        terms = per_episode(ell * (g - b))
    return terms.mean(axis=0)


@pytest.fixture(params=["trajectory", "reward_to_go", "baseline"])
def score_buffer(request):
    T, B, P = 500, 64, 10
    rng = np.random.default_rng(1)
    scores = rng.standard_normal((T, B, P))
    rewards = rng.standard_normal((T, B))
    terminated = rng.random((T, B)) < 0.01
    truncated = rng.random((T, B)) < 0.005
    args = (scores, rewards, 0.99, terminated, truncated, request.param)
    np.testing.assert_allclose(
        pgfast.likelihood_ratio_gradient(*args[:5], mode=request.param),
        numpy_likelihood_ratio(*args), rtol=1e-9, atol=1e-12)
    return args


def test_lr_pgfast(benchmark, score_buffer, request):
    benchmark.group = _group(request, "likelihood_ratio_gradient")
    scores, rewards, gamma, term, trunc, mode = score_buffer
    benchmark(pgfast.likelihood_ratio_gradient, scores, rewards, gamma, term, trunc, mode=mode)


def test_lr_checks_only(benchmark, score_buffer, request, monkeypatch):
    """The call with its returns and score kernels stubbed out (one trajectory
    counted, so the mean is defined)."""
    benchmark.group = _group(request, "likelihood_ratio_gradient")
    monkeypatch.setattr(pgfast.gradients, "_returns", types.SimpleNamespace(
        reward_to_go=lambda *args: True, discount_powers=lambda *args: None,
        count_episode_ends=lambda *args: 0))
    monkeypatch.setattr(pgfast.gradients, "_scores", types.SimpleNamespace(
        weighted_score_sums=_zero_total, baseline_sums=_zero_totals))
    scores, rewards, gamma, term, trunc, mode = score_buffer
    benchmark(pgfast.likelihood_ratio_gradient, scores, rewards, gamma, term, trunc, mode=mode)


def _zero_total(scores, togo, powers, term, trunc, whole, per_trajectory, total):
    total[:] = 0.0
    return 1


def _zero_totals(scores, togo, powers, term, trunc, weighted, plain, weighted_total,
                 plain_total, ratio_sum, ratio_count):
    for a in (weighted_total, plain_total, ratio_sum, ratio_count):
        a[:] = 0
    return 1


def test_lr_numpy(benchmark, score_buffer, request):
    benchmark.group = _group(request, "likelihood_ratio_gradient")
    benchmark(numpy_likelihood_ratio, *score_buffer)
