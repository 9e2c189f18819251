"""Plain NumPy/Python references for pgfast's kernels: slow, obvious, one step at a time.

pgfast's own tests compare every kernel with these, and its benchmarks time them
in the same group; use them the same way to check or benchmark your own code
(``pytest-benchmark``: one function for pgfast, one for the reference). They loop
in Python, compute in float64 and follow the formulas in the docstrings of the
functions they mirror (same names, same arguments): no compiled code, no
shared helpers with the kernels.

Layout as in :mod:`pgfast.returns` and :mod:`pgfast.gradients`: time-major
``(T,)`` or ``(T, B)`` buffers; an episode ends after a step flagged
``terminated`` or ``truncated``, and the buffer's last step ends every episode.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "reward_to_go", "gae", "discount_powers", "episode_stats",
    "episodes", "likelihood_ratio_terms", "likelihood_ratio_gradient", "optimal_baseline",
    "regression_gradient",
    "outputs", "log_softmax", "log_prob", "kl", "entropy", "fisher",
]

LOG_2PI = np.log(2 * np.pi)


def _columns(x, like=None):
    """x as float64 (T, B); None (no flags) as zeros shaped like `like`."""
    if x is None:
        return np.zeros_like(_columns(like))
    x = np.asarray(x, dtype=np.float64)
    return x if x.ndim == 2 else x[:, None]


# --------------------------------------------------------------------------- returns

def reward_to_go(rewards, gamma, terminated=None, truncated=None, next_values=None):
    """G_t = r_t + γ G_{t+1} within an episode; at a truncation or the buffer's end
    G_t = r_t + γ V(s_{t+1}) with next_values, else r_t. float64, shape of rewards."""
    r = _columns(rewards)
    term, trunc = _columns(terminated, r), _columns(truncated, r)
    nv = None if next_values is None else _columns(next_values)
    T, B = r.shape
    out = np.zeros((T, B))
    for b in range(B):
        following = 0.0
        for t in reversed(range(T)):
            if term[t, b]:
                g = r[t, b]
            elif trunc[t, b] or t == T - 1:
                g = r[t, b] + (gamma * nv[t, b] if nv is not None else 0.0)
            else:
                g = r[t, b] + gamma * following
            out[t, b] = following = g
    return out.reshape(np.shape(rewards))


def gae(rewards, values, next_values, gamma, lam, terminated=None, truncated=None):
    """δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t); A_t = δ_t + γλ A_{t+1}
    within an episode. float64, shape of rewards."""
    r, v, nv = _columns(rewards), _columns(values), _columns(next_values)
    term, trunc = _columns(terminated, r), _columns(truncated, r)
    T, B = r.shape
    out = np.zeros((T, B))
    for b in range(B):
        following = 0.0
        for t in reversed(range(T)):
            delta = r[t, b] + gamma * (1 - term[t, b]) * nv[t, b] - v[t, b]
            ends = term[t, b] or trunc[t, b] or t == T - 1
            out[t, b] = following = delta + (0.0 if ends else gamma * lam * following)
    return out.reshape(np.shape(rewards))


def discount_powers(terminated, truncated, gamma):
    """γ^(k−1), k the 1-based step index within its episode. float64."""
    term = _columns(terminated)
    trunc = _columns(truncated, term)
    T, B = term.shape
    out = np.zeros((T, B))
    for b in range(B):
        k = 0
        for t in range(T):
            out[t, b] = gamma ** k
            k = 0 if (term[t, b] or trunc[t, b]) else k + 1
    return out.reshape(np.shape(terminated))


def episode_stats(rewards, terminated, truncated=None):
    """(returns, lengths) of the episodes that end in the buffer, in the order they
    end (by step, then column)."""
    r = _columns(rewards)
    term, trunc = _columns(terminated, r), _columns(truncated, r)
    T, B = r.shape
    running, count = np.zeros(B), np.zeros(B, dtype=np.int64)
    returns, lengths = [], []
    for t in range(T):
        for b in range(B):
            running[b] += r[t, b]
            count[b] += 1
            if term[t, b] or trunc[t, b]:
                returns.append(running[b])
                lengths.append(count[b])
                running[b], count[b] = 0.0, 0
    return np.array(returns, dtype=np.float64), np.array(lengths, dtype=np.int64)


# --------------------------------------------------------------------------- gradients

def episodes(grad_log_probs, rewards, terminated=None, truncated=None):
    """[(scores (L, P), rewards (L,))] of every episode, ordered by end step, then column;
    the episode still running at the last step is one as well."""
    s = np.asarray(grad_log_probs, dtype=np.float64)
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim == 1:
        s, r = s[:, None, :], r[:, None]
    term, trunc = _columns(terminated, r), _columns(truncated, r)
    T, B = r.shape
    ends = []
    for b in range(B):
        start = 0
        for t in range(T):
            if term[t, b] or trunc[t, b] or t == T - 1:
                ends.append((t, b, start))
                start = t + 1
    ends.sort()
    return [(s[start:t + 1, b], r[start:t + 1, b]) for t, b, start in ends]


def _togo(r, gamma):
    """r_togo(k) = Σ_{l≥k} γ^(l−k) r_l over one episode, as the book writes it."""
    L = len(r)
    return np.array([sum(gamma ** (l - k) * r[l] for l in range(k, L)) for k in range(L)])


def _baseline(eps, gamma):
    P = eps[0][0].shape[1]
    ratios = [[] for _ in range(P)]
    for s, r in eps:
        ell = s * (gamma ** np.arange(len(r)))[:, None]
        g = _togo(r, gamma)
        for i in range(P):
            den = np.sum(ell[:, i] ** 2)
            if den > 0:
                ratios[i].append(np.sum(ell[:, i] ** 2 * g) / den)
    return np.array([np.mean(x) if x else 0.0 for x in ratios])


def optimal_baseline(grad_log_probs, rewards, gamma, terminated=None, truncated=None):
    """b_i = mean over τ of Σ_k ℓ_{k,i}² G_k / Σ_k ℓ_{k,i}², ℓ_k = s_k γ^(k−1)
    (trajectories with no ratio for i left out; 0 if none has one)."""
    return _baseline(episodes(grad_log_probs, rewards, terminated, truncated), gamma)


def likelihood_ratio_terms(grad_log_probs, rewards, gamma, terminated=None, truncated=None,
                           mode="trajectory"):
    """Per-trajectory terms g_τ of the book's estimators, (N, P), one episode at a time:
    (Σ_k s_k) R(τ), Σ_k s_k γ^(k−1) r_togo(k), or Σ_k s_k γ^(k−1) (r_togo(k) − b)."""
    eps = episodes(grad_log_probs, rewards, terminated, truncated)
    b = _baseline(eps, gamma) if mode == "baseline" else None
    terms = []
    for s, r in eps:
        disc = gamma ** np.arange(len(r))
        g = _togo(r, gamma)
        if mode == "trajectory":
            terms.append(s.sum(axis=0) * np.sum(disc * r))
        elif mode == "reward_to_go":
            terms.append(sum(s[k] * disc[k] * g[k] for k in range(len(r))))
        else:
            terms.append(sum(s[k] * disc[k] * (g[k] - b) for k in range(len(r))))
    return np.array(terms)


def likelihood_ratio_gradient(grad_log_probs, rewards, gamma, terminated=None, truncated=None,
                              mode="trajectory"):
    """The mean of :func:`likelihood_ratio_terms` over trajectories, (P,)."""
    return likelihood_ratio_terms(grad_log_probs, rewards, gamma, terminated, truncated,
                                  mode).mean(axis=0)


def regression_gradient(dtheta, du, rcond=1e-15):
    """ΔΘ⁺ ΔU by numpy.linalg.pinv, one problem (m, n) or a batch (K, m, n)."""
    dtheta = np.asarray(dtheta, dtype=np.float64)
    du = np.asarray(du, dtype=np.float64)
    if dtheta.ndim == 3:
        return np.stack([np.linalg.pinv(a, rcond=rcond) @ y for a, y in zip(dtheta, du)])
    return np.linalg.pinv(dtheta, rcond=rcond) @ du


# --------------------------------------------------------------------------- policies

def outputs(policy, theta, obs):
    """The network output (logits, mean or value) from θ's named pieces, tanh between
    layers: h_{l+1} = tanh(h_l W_l + b_l), linear last layer. (N, out)."""
    p = policy.unpack(theta)
    h = np.atleast_2d(np.asarray(obs, dtype=np.float64))
    n_layers = len(policy.hidden) + 1
    for l in range(n_layers):
        h = h @ p[f"W{l}"] + p[f"b{l}"]
        if l < n_layers - 1:
            h = np.tanh(h)
    return h


def _log_std(policy, theta):
    if policy.learn_std:
        return policy.unpack(theta)["log_std"]
    return np.broadcast_to(np.asarray(policy.config()["log_std"], dtype=np.float64),
                           (policy.act_dim,))


def log_softmax(z):
    """log softmax over the last axis, shifted by the max (stable)."""
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def log_prob(policy, theta, obs, actions):
    """log π_θ(a_i | s_i), (N,)."""
    z = outputs(policy, theta, obs)
    if policy.discrete:
        return log_softmax(z)[np.arange(len(z)), np.asarray(actions)]
    ls = _log_std(policy, theta)
    u = (np.asarray(actions, dtype=np.float64).reshape(z.shape) - z) / np.exp(ls)
    return np.sum(-0.5 * u**2 - ls - 0.5 * LOG_2PI, axis=1)


def kl(policy, theta_old, theta_new, obs):
    """KL(π_old(· | s_i) ‖ π_new(· | s_i)), (N,)."""
    zo, zn = outputs(policy, theta_old, obs), outputs(policy, theta_new, obs)
    if policy.discrete:
        lo, ln = log_softmax(zo), log_softmax(zn)
        return np.sum(np.exp(lo) * (lo - ln), axis=1)
    so, sn = _log_std(policy, theta_old), _log_std(policy, theta_new)
    return np.sum(sn - so + (np.exp(2 * so) + (zo - zn) ** 2) / (2 * np.exp(2 * sn)) - 0.5,
                  axis=1)


def entropy(policy, theta, obs):
    """H(π_θ(· | s_i)), (N,)."""
    z = outputs(policy, theta, obs)
    if policy.discrete:
        lp = log_softmax(z)
        return -np.sum(np.exp(lp) * lp, axis=1)
    return np.full(len(z), np.sum(_log_std(policy, theta) + 0.5 * (1 + LOG_2PI)))


def fisher(policy, theta, obs, h=1e-6):
    """The Fisher matrix (1/N) Σ_i J_iᵀ M_i J_i (+ 2 I on a learned log_std), (P, P):
    J_i the Jacobian of the network output by central differences of step h,
    M_i = diag(p) − p pᵀ (softmax) or diag(1/σ²) (Gaussian)."""
    theta = np.asarray(theta, dtype=np.float64)
    obs = np.atleast_2d(np.asarray(obs, dtype=np.float64))
    n, P = len(obs), theta.size
    z = outputs(policy, theta, obs)
    J = np.empty(z.shape + (P,))
    for j in range(P):
        e = np.zeros(P)
        e[j] = h
        J[:, :, j] = (outputs(policy, theta + e, obs) - outputs(policy, theta - e, obs)) / (2 * h)
    if policy.discrete:
        p = np.exp(log_softmax(z))
        M = np.einsum("ij,jk->ijk", p, np.eye(z.shape[1])) - p[:, :, None] * p[:, None, :]
    else:
        M = np.broadcast_to(np.diag(np.exp(-2 * _log_std(policy, theta))), (n,) + (z.shape[1],) * 2)
    F = np.einsum("iap,iab,ibq->pq", J, M, J) / n
    if not policy.discrete and policy.learn_std:
        k = P - policy.act_dim
        F[k:, k:] += 2 * np.eye(policy.act_dim)
    return F
