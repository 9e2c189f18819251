"""Policy kernels against vectorised NumPy implementations of the same math.

Run: OPENBLAS_NUM_THREADS=1 pytest benchmarks/bench_policies.py --benchmark-only
(pgfast calls scipy's OpenBLAS, NumPy its own; with both thread pools spinning on
a small machine the timings swing by 5x, so compare single-threaded BLAS.)
Targets (issue 3): LinearSoftmax weighted score sum ≥ 20x NumPy;
MLPGaussian(64, 64) per-sample scores and Fisher-vector products ≥ 3x NumPy.
Issue 28: the weighted score sum ≥ 20x PyTorch autograd of the surrogate
Σ w log π (torch on one thread, as pgfast), also as the likelihood-ratio
estimate from a (2048, 64) buffer of trajectories; every check ≤ 5 % of its
call: the "checks only" cases run the call with its kernel stubbed out
(what the checks, conversions and decorators cost alone).
The MLP groups also time pgfast with num_threads=2 (row blocks over both cores;
BLAS stays single-threaded inside each block).
"""
import numpy as np
import pytest

import pgfast
from pgfast.problem import Trajectories


class NoKernel:
    """Stands in for a policy's kernel and computes nothing (zeros where a result
    is read): a call through it costs its checks, conversions and decorators alone."""

    def __init__(self, kernel):
        self._kernel = kernel

    def __getattr__(self, name):   # sizes and the like
        return getattr(self._kernel, name)

    def index_score_sum(self, theta, obs, actions, weights, grad):
        grad[:] = 0.0
        return True

    def grad_log_prob_into(self, *args):
        return True   # the answer of a kernel that bounded every row it wrote

    def fvp_into(self, theta, obs, v, out, cache=None, num_threads=1):
        out[:] = 0.0


@pytest.fixture(scope="module")
def torch_one_thread():
    """PyTorch for the autograd references, on one thread as pgfast's calls."""
    torch = pytest.importorskip("torch", reason="PyTorch not installed (the autograd "
                                                "reference; pip install torch)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


def torch_softmax_weighted_grad(torch, theta, obs, actions, w, obs_dim, n_actions):
    """Σ_i w_i ∇θ log π(a_i | s_i) as autograd gives it: the gradient of the
    surrogate Σ_i w_i log π(a_i | s_i), θ laid out as pgfast's."""
    theta = theta.detach().clone().requires_grad_(True)
    k = obs_dim * n_actions
    logits = obs @ theta[:k].view(obs_dim, n_actions) + theta[k:]
    logp = torch.log_softmax(logits, dim=1).gather(1, actions[:, None])[:, 0]
    return torch.autograd.grad((w * logp).sum(), theta)[0]

# ---------------------------------------------------------------------------
# LinearSoftmax: Σ_i w_i ∇ log π(a_i | s_i), N = 131072, obs_dim 4, 2 actions
# ---------------------------------------------------------------------------

N_LINEAR = 131072


def numpy_softmax_weighted_grad(W, b, obs, actions, w):
    z = obs @ W + b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    d = -p
    d[np.arange(len(obs)), actions] += 1.0
    d *= w[:, None]
    return np.concatenate([(obs.T @ d).ravel(), d.sum(axis=0)])


@pytest.fixture(scope="module")
def linear_softmax_case():
    rng = np.random.default_rng(0)
    policy = pgfast.LinearSoftmax(4, 2)
    theta = rng.standard_normal(policy.n_params)
    obs = rng.standard_normal((N_LINEAR, 4))
    actions = rng.integers(0, 2, N_LINEAR)
    w = rng.standard_normal(N_LINEAR)
    return policy, theta, obs, actions, w


@pytest.mark.benchmark(group="linear-softmax-weighted-grad-N131072")
def test_pgfast_linear_softmax_weighted_grad(benchmark, linear_softmax_case):
    policy, theta, obs, actions, w = linear_softmax_case
    got = benchmark(policy.grad_log_prob, theta, obs, actions, weights=w)
    p = policy.unpack(theta)
    np.testing.assert_allclose(got, numpy_softmax_weighted_grad(p["W0"], p["b0"], obs,
                                                                actions, w), rtol=1e-9)


@pytest.mark.benchmark(group="linear-softmax-weighted-grad-N131072")
def test_numpy_linear_softmax_weighted_grad(benchmark, linear_softmax_case):
    policy, theta, obs, actions, w = linear_softmax_case
    p = policy.unpack(theta)
    benchmark(numpy_softmax_weighted_grad, p["W0"], p["b0"], obs, actions, w)


@pytest.mark.benchmark(group="linear-softmax-weighted-grad-N131072")
def test_torch_autograd_linear_softmax_weighted_grad(benchmark, linear_softmax_case,
                                                     torch_one_thread):
    torch = torch_one_thread
    policy, theta, obs, actions, w = linear_softmax_case
    args = [torch.from_numpy(a) for a in (theta, obs, actions, w)]
    got = benchmark(torch_softmax_weighted_grad, torch, *args, 4, 2)
    np.testing.assert_allclose(got.numpy(), policy.grad_log_prob(theta, obs, actions, weights=w),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.benchmark(group="linear-softmax-weighted-grad-N131072")
def test_checks_only_linear_softmax_weighted_grad(benchmark, linear_softmax_case, monkeypatch):
    policy, theta, obs, actions, w = linear_softmax_case
    monkeypatch.setattr(policy, "kernel", NoKernel(policy.kernel))
    benchmark(policy.grad_log_prob, theta, obs, actions, weights=w)


# The likelihood-ratio estimate ∇U ≈ mean over τ of (Σ_k ∇log π(a_k | s_k)) R(τ) from a
# buffer of m = 64 trajectories of d = 2048 steps (N = 131072 rows), after the rollout:
# what LikelihoodRatioGradient.gradient does with the trajectories it drew.

LR_D, LR_M, LR_GAMMA = 2048, 64, 0.99


@pytest.fixture(scope="module")
def lr_buffer():
    rng = np.random.default_rng(2)
    policy = pgfast.LinearSoftmax(4, 2)
    theta = rng.standard_normal(policy.n_params)
    lengths = rng.integers(LR_D // 4, LR_D + 1, LR_M)   # episodes end at varied depths
    alive = np.arange(LR_D)[:, None] < lengths[None, :]
    obs = rng.standard_normal((LR_D, LR_M, 4)) * alive[..., None]
    actions = rng.integers(0, 2, (LR_D, LR_M)) * alive
    rewards = rng.random((LR_D, LR_M)) * alive
    traj = Trajectories(obs, actions, rewards, alive, np.zeros((LR_D, LR_M), bool),
                        np.zeros((LR_D, LR_M)), [])
    problem = pgfast.Problem("CartPole-v1", gamma=LR_GAMMA)
    return pgfast.LikelihoodRatioGradient(problem, policy, m=LR_M), theta, traj


def torch_lr_estimate(torch, theta, obs, actions, rewards, alive, gamma):
    """The same estimate with PyTorch: R(τ) by a matrix product, then autograd of
    Σ_k w_k log π(a_k | s_k) with w_k = R(τ) / m on the live steps."""
    d, m = rewards.shape
    returns = (gamma ** torch.arange(d, dtype=torch.float64)) @ rewards
    w = (alive * (returns / m)).reshape(-1)
    return torch_softmax_weighted_grad(torch, theta, obs.reshape(d * m, -1),
                                       actions.reshape(-1), w, 4, 2)


@pytest.mark.benchmark(group=f"likelihood-ratio-estimate-({LR_D}, {LR_M})-LinearSoftmax(4, 2)")
def test_pgfast_lr_estimate(benchmark, lr_buffer):
    estimator, theta, traj = lr_buffer
    benchmark(estimator._from_trajectories, theta, traj)   # .gradient() without the rollout


@pytest.mark.benchmark(group=f"likelihood-ratio-estimate-({LR_D}, {LR_M})-LinearSoftmax(4, 2)")
def test_torch_autograd_lr_estimate(benchmark, lr_buffer, torch_one_thread):
    torch = torch_one_thread
    estimator, theta, traj = lr_buffer
    args = [torch.from_numpy(a) for a in (theta, traj.observations, traj.actions,
                                          traj.rewards, traj.alive)]
    got = benchmark(torch_lr_estimate, torch, *args, LR_GAMMA)
    np.testing.assert_allclose(got.numpy(), estimator._from_trajectories(theta, traj),
                               rtol=1e-9, atol=1e-9)


@pytest.mark.benchmark(group=f"likelihood-ratio-estimate-({LR_D}, {LR_M})-LinearSoftmax(4, 2)")
def test_all_but_the_kernel_lr_estimate(benchmark, lr_buffer, monkeypatch):
    """The estimate with the policy's kernel stubbed out: its checks and its
    weights R(τ) / m, everything but the score sum."""
    estimator, theta, traj = lr_buffer
    monkeypatch.setattr(estimator.policy, "kernel", NoKernel(estimator.policy.kernel))
    benchmark(estimator._from_trajectories, theta, traj)


# ---------------------------------------------------------------------------
# MLPGaussian(64, 64), obs_dim 11, act_dim 3 (Hopper's sizes), N = 8192
# ---------------------------------------------------------------------------

N_MLP = 8192


def numpy_forward(p, obs):
    h1 = np.tanh(obs @ p["W0"] + p["b0"])
    h2 = np.tanh(h1 @ p["W1"] + p["b1"])
    return h1, h2, h2 @ p["W2"] + p["b2"]


def numpy_mlp_gaussian_grad_rows(p, obs, actions):
    h1, h2, mu = numpy_forward(p, obs)
    ivar = np.exp(-2.0 * p["log_std"])
    u = actions - mu
    d3 = u * ivar
    d2 = (d3 @ p["W2"].T) * (1.0 - h2**2)
    d1 = (d2 @ p["W1"].T) * (1.0 - h1**2)
    n = len(obs)
    return np.concatenate([
        (obs[:, :, None] * d1[:, None, :]).reshape(n, -1), d1,
        (h1[:, :, None] * d2[:, None, :]).reshape(n, -1), d2,
        (h2[:, :, None] * d3[:, None, :]).reshape(n, -1), d3,
        u * u * ivar - 1.0,
    ], axis=1)


def numpy_mlp_gaussian_fvp(p, obs, v, cache=None):
    """(1/N) Σ_i J_iᵀ diag(1/σ²) J_i v_μ (+ 2 v_logσ): forward-mode then reverse-mode.
    cache: (h1, h2) from numpy_forward, to skip the forward pass."""
    h1, h2 = numpy_forward(p, obs)[:2] if cache is None else cache
    t1 = (obs @ v["W0"] + v["b0"]) * (1.0 - h1**2)
    t2 = (h1 @ v["W1"] + v["b1"] + t1 @ p["W1"]) * (1.0 - h2**2)
    m = (h2 @ v["W2"] + v["b2"] + t2 @ p["W2"]) * (np.exp(-2.0 * p["log_std"]) / len(obs))
    d2 = (m @ p["W2"].T) * (1.0 - h2**2)
    d1 = (d2 @ p["W1"].T) * (1.0 - h1**2)
    return np.concatenate([(obs.T @ d1).ravel(), d1.sum(0), (h1.T @ d2).ravel(), d2.sum(0),
                           (h2.T @ m).ravel(), m.sum(0), 2.0 * v["log_std"]])


@pytest.fixture(scope="module")
def mlp_gaussian_case():
    rng = np.random.default_rng(1)
    policy = pgfast.MLPGaussian(11, 3, hidden=(64, 64), log_std=-0.5)
    theta = policy.init(rng) + 0.05 * rng.standard_normal(policy.n_params)
    obs = rng.standard_normal((N_MLP, 11))
    actions = rng.standard_normal((N_MLP, 3))
    v = rng.standard_normal(policy.n_params)
    return policy, theta, obs, actions, v


@pytest.mark.benchmark(group="mlp-gaussian-64x64-per-sample-grad-N8192")
@pytest.mark.parametrize("num_threads", [1, 2])
def test_pgfast_mlp_gaussian_grad_rows(benchmark, mlp_gaussian_case, num_threads):
    policy, theta, obs, actions, _ = mlp_gaussian_case
    got = benchmark(policy.grad_log_prob, theta, obs, actions, num_threads=num_threads)
    want = numpy_mlp_gaussian_grad_rows(policy.unpack(theta), obs, actions)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-per-sample-grad-N8192")
def test_pgfast_mlp_gaussian_grad_rows_reused_out(benchmark, mlp_gaussian_case):
    policy, theta, obs, actions, _ = mlp_gaussian_case
    out = np.empty((len(obs), policy.n_params))
    benchmark(policy.grad_log_prob, theta, obs, actions, out=out)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-per-sample-grad-N8192")
def test_checks_only_mlp_gaussian_grad_rows(benchmark, mlp_gaussian_case, monkeypatch):
    policy, theta, obs, actions, _ = mlp_gaussian_case
    out = np.zeros((len(obs), policy.n_params))   # what the stub leaves: finite
    monkeypatch.setattr(policy, "kernel", NoKernel(policy.kernel))
    benchmark(policy.grad_log_prob, theta, obs, actions, out=out)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-per-sample-grad-N8192")
def test_numpy_mlp_gaussian_grad_rows(benchmark, mlp_gaussian_case):
    policy, theta, obs, actions, _ = mlp_gaussian_case
    benchmark(numpy_mlp_gaussian_grad_rows, policy.unpack(theta), obs, actions)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-fvp-N8192")
@pytest.mark.parametrize("num_threads", [1, 2])
def test_pgfast_mlp_gaussian_fvp(benchmark, mlp_gaussian_case, num_threads):
    policy, theta, obs, _, v = mlp_gaussian_case
    got = benchmark(policy.fisher_vector_product, theta, obs, v, num_threads=num_threads)
    want = numpy_mlp_gaussian_fvp(policy.unpack(theta), obs, policy.unpack(v))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-fvp-N8192")
def test_checks_only_mlp_gaussian_fvp(benchmark, mlp_gaussian_case, monkeypatch):
    policy, theta, obs, _, v = mlp_gaussian_case
    monkeypatch.setattr(policy, "kernel", NoKernel(policy.kernel))
    benchmark(policy.fisher_vector_product, theta, obs, v)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-fvp-N8192")
def test_numpy_mlp_gaussian_fvp(benchmark, mlp_gaussian_case):
    policy, theta, obs, _, v = mlp_gaussian_case
    benchmark(numpy_mlp_gaussian_fvp, policy.unpack(theta), obs, policy.unpack(v))


# Conjugate gradient's use: ten products with one θ and one batch. The pgfast
# operator shares its forward pass; so does the second NumPy reference.

def pgfast_ten_fvps(policy, theta, obs, vs, num_threads=1):
    fvp = policy.fisher_operator(theta, obs, num_threads)
    return [fvp(v) for v in vs]


def numpy_ten_fvps(p, obs, vs, share_forward):
    cache = numpy_forward(p, obs)[:2] if share_forward else None
    return [numpy_mlp_gaussian_fvp(p, obs, v, cache) for v in vs]


@pytest.mark.benchmark(group="mlp-gaussian-64x64-10-fvps-N8192")
@pytest.mark.parametrize("num_threads", [1, 2])
def test_pgfast_mlp_gaussian_fisher_operator(benchmark, mlp_gaussian_case, num_threads):
    policy, theta, obs, _, v = mlp_gaussian_case
    vs = [v * (k + 1) for k in range(10)]
    got = benchmark(pgfast_ten_fvps, policy, theta, obs, vs, num_threads)
    want = numpy_ten_fvps(policy.unpack(theta), obs, [policy.unpack(u) for u in vs], True)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.benchmark(group="mlp-gaussian-64x64-10-fvps-N8192")
@pytest.mark.parametrize("share_forward", [False, True])
def test_numpy_mlp_gaussian_ten_fvps(benchmark, mlp_gaussian_case, share_forward):
    policy, theta, obs, _, v = mlp_gaussian_case
    vs = [policy.unpack(v * (k + 1)) for k in range(10)]
    benchmark(numpy_ten_fvps, policy.unpack(theta), obs, vs, share_forward)
