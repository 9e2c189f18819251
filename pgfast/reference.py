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
    """Discounted reward-to-go, one step at a time.

    The reference of :func:`pgfast.reward_to_go`: G_t = r_t + γ G_{t+1} within an
    episode; G_t = r_t after a terminal step; at a truncation or the buffer's last
    step G_t = r_t + γ V(s_{t+1}) with ``next_values``, else r_t.

    Parameters
    ----------
    rewards : array_like, shape (T,) or (T, B)
        r_t, time-major.
    gamma : float
        The discount γ.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end; None: nowhere.
    next_values : array_like, shape of rewards, optional
        V(s_{t+1}), read at truncations and at the last step.

    Returns
    -------
    ndarray
        G, float64, the shape of rewards.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> rewards = np.array([1.0, 2.0, 3.0, 4.0])
    >>> terminated = np.array([False, True, False, False])
    >>> reference.reward_to_go(rewards, 0.5, terminated)
    array([2., 2., 5., 4.])
    >>> bool(np.allclose(reference.reward_to_go(rewards, 0.5, terminated),
    ...                  pgfast.reward_to_go(rewards, 0.5, terminated)))
    True
    """
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
    """Generalized advantage estimation, one step at a time.

    The reference of :func:`pgfast.gae`:
    δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t);
    A_t = δ_t + γλ A_{t+1} within an episode, A_t = δ_t at its last step.

    Parameters
    ----------
    rewards, values, next_values : array_like, shape (T,) or (T, B)
        r_t, V(s_t) and V(s_{t+1}).
    gamma, lam : float
        The discount γ and GAE's λ.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end; None: nowhere.

    Returns
    -------
    ndarray
        The advantages A_t, float64, the shape of rewards.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> rng = np.random.default_rng(0)
    >>> rewards, values, next_values = rng.normal(size=(3, 5, 2))
    >>> terminated = rng.random((5, 2)) < 0.3
    >>> ours = reference.gae(rewards, values, next_values, 0.99, 0.95, terminated)
    >>> ours.shape
    (5, 2)
    >>> bool(np.allclose(ours, pgfast.gae(rewards, values, next_values, 0.99, 0.95,
    ...                                   terminated)))
    True
    """
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
    """The weights γ^(k−1), k the 1-based step index within its episode.

    The reference of :func:`pgfast.discount_powers`.

    Parameters
    ----------
    terminated, truncated : array_like of bool, shape (T,) or (T, B)
        Where episodes end; ``truncated`` may be None.
    gamma : float
        The discount γ.

    Returns
    -------
    ndarray
        float64, the shape of terminated.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> terminated = np.array([False, False, True, False])
    >>> reference.discount_powers(terminated, None, 0.9)
    array([1.  , 0.9 , 0.81, 1.  ])
    >>> bool(np.allclose(reference.discount_powers(terminated, None, 0.9),
    ...                  pgfast.discount_powers(terminated, None, 0.9)))
    True
    """
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
    """Returns and lengths of the episodes that end in the buffer.

    The reference of :func:`pgfast.episode_stats`: episodes in the order they end
    (by step, then column); one still running at the last step is not listed.

    Parameters
    ----------
    rewards : array_like, shape (T,) or (T, B)
        r_t, time-major.
    terminated, truncated : array_like of bool, shape of rewards
        Where episodes end; ``truncated`` may be None.

    Returns
    -------
    returns : ndarray, shape (E,)
        float64, the sum of each episode's rewards.
    lengths : ndarray, shape (E,)
        int64, each episode's number of steps.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> rewards = np.ones((4, 2))
    >>> terminated = np.array([[False, False], [True, False], [False, False], [False, True]])
    >>> reference.episode_stats(rewards, terminated)
    (array([2., 4.]), array([2, 4]))
    >>> pgfast.episode_stats(rewards, terminated)
    (array([2., 4.]), array([2, 4]))
    """
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
    """Split a buffer into its episodes: the scores and rewards of each.

    Episodes are ordered by the step they end at, then by column; the episode still
    running at the last step is one as well.

    Parameters
    ----------
    grad_log_probs : array_like, shape (T, P) or (T, B, P)
        Per-step scores ∇θ log π(a_t | s_t), time-major.
    rewards : array_like, shape (T,) or (T, B)
        r_t.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end; None: nowhere.

    Returns
    -------
    list of tuple of ndarray
        ``(scores, rewards)`` of each episode, shapes (L, P) and (L,), float64.

    Examples
    --------
    >>> import numpy as np
    >>> from pgfast import reference
    >>> scores = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> rewards = np.array([1.0, 2.0, 3.0])
    >>> terminated = np.array([False, True, False])
    >>> [r for _, r in reference.episodes(scores, rewards, terminated)]
    [array([1., 2.]), array([3.])]
    """
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
    """The book's per-parameter baseline for reward-to-go, one trajectory at a time.

    b_i = mean over τ of Σ_k ℓ_{k,i}² G_k / Σ_k ℓ_{k,i}², ℓ_k = s_k γ^(k−1) and
    G_k = r_togo(k); a trajectory with no ratio for i (all ℓ_{k,i} zero) is left
    out, and b_i = 0 if none has one. The reference of :func:`pgfast.optimal_baseline`.

    Parameters
    ----------
    grad_log_probs : array_like, shape (T, P) or (T, B, P)
        Per-step scores ∇θ log π(a_t | s_t), time-major.
    rewards : array_like, shape (T,) or (T, B)
        r_t.
    gamma : float
        The discount γ.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end; None: nowhere.

    Returns
    -------
    ndarray, shape (P,)
        The baseline b, float64.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> scores = np.array([[1.0, 0.0], [1.0, 2.0]])
    >>> rewards = np.array([1.0, 3.0])      # G = (4, 3) with γ = 1
    >>> reference.optimal_baseline(scores, rewards, 1.0)
    array([3.5, 3. ])
    >>> bool(np.allclose(reference.optimal_baseline(scores, rewards, 1.0),
    ...                  pgfast.optimal_baseline(scores, rewards, 1.0)))
    True
    """
    return _baseline(episodes(grad_log_probs, rewards, terminated, truncated), gamma)


def likelihood_ratio_terms(grad_log_probs, rewards, gamma, terminated=None, truncated=None,
                           mode="trajectory"):
    """The per-trajectory terms g_τ of the book's likelihood-ratio estimators.

    One episode at a time, with s_k the score of step k (1-based), r_togo(k) =
    Σ_{l≥k} γ^(l−k) r_l and R(τ) = Σ_k γ^(k−1) r_k: g_τ = (Σ_k s_k) R(τ)
    (``"trajectory"``), Σ_k s_k γ^(k−1) r_togo(k) (``"reward_to_go"``), or
    Σ_k s_k γ^(k−1) (r_togo(k) − b) with b of :func:`optimal_baseline`
    (``"baseline"``).

    Parameters
    ----------
    grad_log_probs : array_like, shape (T, P) or (T, B, P)
        Per-step scores ∇θ log π(a_t | s_t), time-major.
    rewards : array_like, shape (T,) or (T, B)
        r_t.
    gamma : float
        The discount γ.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end; None: nowhere.
    mode : {"trajectory", "reward_to_go", "baseline"}
        The estimator.

    Returns
    -------
    ndarray, shape (N, P)
        g_τ of the N episodes, in the order of :func:`episodes`; float64.

    Examples
    --------
    The per-trajectory terms that :func:`pgfast.likelihood_ratio_gradient` returns
    with ``return_per_trajectory=True``:

    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> scores = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> rewards = np.array([1.0, 2.0, 3.0])
    >>> terminated = np.array([False, True, False])
    >>> reference.likelihood_ratio_terms(scores, rewards, 1.0, terminated)
    array([[3., 3.],
           [3., 3.]])
    >>> _, terms = pgfast.likelihood_ratio_gradient(scores, rewards, 1.0, terminated,
    ...                                             return_per_trajectory=True)
    >>> bool(np.allclose(terms, reference.likelihood_ratio_terms(scores, rewards, 1.0,
    ...                                                          terminated)))
    True
    """
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
    """The mean of :func:`likelihood_ratio_terms` over trajectories.

    The reference of :func:`pgfast.likelihood_ratio_gradient`.

    Parameters
    ----------
    grad_log_probs : array_like, shape (T, P) or (T, B, P)
        Per-step scores ∇θ log π(a_t | s_t), time-major.
    rewards : array_like, shape (T,) or (T, B)
        r_t.
    gamma : float
        The discount γ.
    terminated, truncated : array_like of bool, shape of rewards, optional
        Where episodes end; None: nowhere.
    mode : {"trajectory", "reward_to_go", "baseline"}
        The estimator.

    Returns
    -------
    ndarray, shape (P,)
        The gradient estimate, float64.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> rng = np.random.default_rng(0)
    >>> scores, rewards = rng.normal(size=(20, 3, 4)), rng.normal(size=(20, 3))
    >>> terminated = rng.random((20, 3)) < 0.2
    >>> ours = reference.likelihood_ratio_gradient(scores, rewards, 0.9, terminated,
    ...                                            mode="baseline")
    >>> bool(np.allclose(ours, pgfast.likelihood_ratio_gradient(
    ...     scores, rewards, 0.9, terminated, mode="baseline")))
    True
    """
    return likelihood_ratio_terms(grad_log_probs, rewards, gamma, terminated, truncated,
                                  mode).mean(axis=0)


def regression_gradient(dtheta, du, rcond=1e-15):
    """The least-squares gradient ΔΘ⁺ ΔU by :func:`numpy.linalg.pinv`.

    The reference of :func:`pgfast.regression_gradient`, for one problem or a batch.

    Parameters
    ----------
    dtheta : array_like, shape (m, n) or (K, m, n)
        The parameter perturbations ΔΘ, one per row.
    du : array_like, shape (m,) or (K, m)
        The utility differences ΔU.
    rcond : float
        Singular values at most rcond times the largest are taken as zero.

    Returns
    -------
    ndarray, shape (n,) or (K, n)
        The gradient estimate, float64.

    Raises
    ------
    numpy.linalg.LinAlgError
        The SVD does not converge.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> rng = np.random.default_rng(0)
    >>> dtheta = rng.normal(size=(8, 3))
    >>> du = dtheta @ np.array([1.0, -2.0, 0.5])
    >>> reference.regression_gradient(dtheta, du).round(6)
    array([ 1. , -2. ,  0.5])
    >>> bool(np.allclose(reference.regression_gradient(dtheta, du),
    ...                  pgfast.regression_gradient(dtheta, du)))
    True
    """
    dtheta = np.asarray(dtheta, dtype=np.float64)
    du = np.asarray(du, dtype=np.float64)
    if dtheta.ndim == 3:
        return np.stack([np.linalg.pinv(a, rcond=rcond) @ y for a, y in zip(dtheta, du)])
    return np.linalg.pinv(dtheta, rcond=rcond) @ du


# --------------------------------------------------------------------------- policies

def outputs(policy, theta, obs):
    """The network output (logits, mean or value) from θ's named pieces.

    h_{l+1} = tanh(h_l W_l + b_l) between layers, a linear last layer.

    Parameters
    ----------
    policy : pgfast policy or value function
        Its ``unpack`` names θ's pieces, its ``hidden`` gives the layers.
    theta : array_like, shape (P,)
        The parameters.
    obs : array_like, shape (N, obs_dim) or (obs_dim,)
        Observations, one per row.

    Returns
    -------
    ndarray, shape (N, out)
        The last layer's output, float64.

    Examples
    --------
    A Gaussian policy's mean is its most likely action:

    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> policy = pgfast.MLPGaussian(3, 2, hidden=(4,))
    >>> theta = policy.init(np.random.default_rng(0))
    >>> obs = np.random.default_rng(1).normal(size=(5, 3))
    >>> reference.outputs(policy, theta, obs).shape
    (5, 2)
    >>> bool(np.allclose(reference.outputs(policy, theta, obs), policy.mode(theta, obs)))
    True
    """
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
    """Log-softmax over the last axis, shifted by the maximum (stable).

    log p_c = z_c − max z − log Σ_j exp(z_j − max z).

    Parameters
    ----------
    z : ndarray
        Logits; the last axis holds the classes.

    Returns
    -------
    ndarray
        log p, the shape of z.

    Examples
    --------
    >>> import numpy as np
    >>> from pgfast import reference
    >>> np.exp(reference.log_softmax(np.log([1.0, 2.0, 1.0])))
    array([0.25, 0.5 , 0.25])
    >>> reference.log_softmax(np.array([1000.0, 1000.0]))   # no overflow
    array([-0.69314718, -0.69314718])
    """
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def log_prob(policy, theta, obs, actions):
    """Log-probabilities log π_θ(a_i | s_i), from the network output.

    Softmax: log_softmax(z_i)[a_i]; Gaussian: Σ_j −½ u_j² − log σ_j − ½ log 2π with
    u = (a_i − μ_i) / σ. The reference of the policies' ``log_prob``.

    Parameters
    ----------
    policy : pgfast policy
        A softmax or Gaussian policy.
    theta : array_like, shape (P,)
        The parameters.
    obs : array_like, shape (N, obs_dim)
        Observations, one per row.
    actions : array_like, shape (N,) or (N, act_dim)
        Action indices (softmax) or actions (Gaussian).

    Returns
    -------
    ndarray, shape (N,)
        log π_θ(a_i | s_i), float64.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> policy = pgfast.MLPSoftmax(3, 4, hidden=(5,))
    >>> theta = policy.init(np.random.default_rng(0))
    >>> obs = np.random.default_rng(1).normal(size=(6, 3))
    >>> actions = np.array([0, 1, 2, 3, 0, 1])
    >>> bool(np.allclose(reference.log_prob(policy, theta, obs, actions),
    ...                  policy.log_prob(theta, obs, actions)))
    True
    """
    z = outputs(policy, theta, obs)
    if policy.discrete:
        return log_softmax(z)[np.arange(len(z)), np.asarray(actions)]
    ls = _log_std(policy, theta)
    u = (np.asarray(actions, dtype=np.float64).reshape(z.shape) - z) / np.exp(ls)
    return np.sum(-0.5 * u**2 - ls - 0.5 * LOG_2PI, axis=1)


def kl(policy, theta_old, theta_new, obs):
    """KL(π_old(· | s_i) ‖ π_new(· | s_i)) for each observation.

    Softmax: Σ_c p_c (log p_c − log q_c); Gaussian: Σ_j log(σ'_j / σ_j) +
    (σ_j² + (μ_j − μ'_j)²) / (2 σ'_j²) − ½; p, μ, σ of π_old and q, μ', σ' of
    π_new. The reference of the policies' ``kl``.

    Parameters
    ----------
    policy : pgfast policy
        A softmax or Gaussian policy.
    theta_old, theta_new : array_like, shape (P,)
        The parameters of π_old and π_new.
    obs : array_like, shape (N, obs_dim)
        Observations, one per row.

    Returns
    -------
    ndarray, shape (N,)
        The divergences, float64.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> policy = pgfast.LinearGaussian(3, 2)
    >>> rng = np.random.default_rng(0)
    >>> old, new = policy.init(rng), 0.1 * rng.normal(size=policy.n_params)
    >>> obs = rng.normal(size=(4, 3))
    >>> bool(np.allclose(reference.kl(policy, old, new, obs), policy.kl(old, new, obs)))
    True
    """
    zo, zn = outputs(policy, theta_old, obs), outputs(policy, theta_new, obs)
    if policy.discrete:
        lo, ln = log_softmax(zo), log_softmax(zn)
        return np.sum(np.exp(lo) * (lo - ln), axis=1)
    so, sn = _log_std(policy, theta_old), _log_std(policy, theta_new)
    return np.sum(sn - so + (np.exp(2 * so) + (zo - zn) ** 2) / (2 * np.exp(2 * sn)) - 0.5,
                  axis=1)


def entropy(policy, theta, obs):
    """The entropy H(π_θ(· | s_i)) for each observation.

    Softmax: −Σ_c p_c log p_c; Gaussian: Σ_j log σ_j + ½ (1 + log 2π), the same
    for every observation. The reference of the policies' ``entropy``.

    Parameters
    ----------
    policy : pgfast policy
        A softmax or Gaussian policy.
    theta : array_like, shape (P,)
        The parameters.
    obs : array_like, shape (N, obs_dim)
        Observations, one per row.

    Returns
    -------
    ndarray, shape (N,)
        The entropies, float64.

    Examples
    --------
    Uniform logits give the largest entropy, log of the number of actions:

    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> policy = pgfast.LinearSoftmax(2, 4)
    >>> theta = np.zeros(policy.n_params)
    >>> reference.entropy(policy, theta, np.ones((3, 2))) / np.log(4)
    array([1., 1., 1.])
    >>> bool(np.allclose(reference.entropy(policy, theta, np.ones((3, 2))),
    ...                  policy.entropy(theta, np.ones((3, 2)))))
    True
    """
    z = outputs(policy, theta, obs)
    if policy.discrete:
        lp = log_softmax(z)
        return -np.sum(np.exp(lp) * lp, axis=1)
    return np.full(len(z), np.sum(_log_std(policy, theta) + 0.5 * (1 + LOG_2PI)))


def fisher(policy, theta, obs, h=1e-6):
    """The Fisher information matrix, from Jacobians by central differences.

    F = (1/N) Σ_i J_iᵀ M_i J_i (+ 2 I on a learned log_std), J_i the Jacobian of the
    network output in θ by central differences of step h, M_i = diag(p) − p pᵀ
    (softmax) or diag(1/σ²) (Gaussian). The reference of the policies' ``fisher``.

    Parameters
    ----------
    policy : pgfast policy
        A softmax or Gaussian policy.
    theta : array_like, shape (P,)
        The parameters.
    obs : array_like, shape (N, obs_dim) or (obs_dim,)
        Observations, one per row.
    h : float
        The finite-difference step.

    Returns
    -------
    ndarray, shape (P, P)
        F, float64.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast import reference
    >>> policy = pgfast.MLPGaussian(2, 1, hidden=(3,))
    >>> theta = policy.init(np.random.default_rng(0))
    >>> obs = np.random.default_rng(1).normal(size=(5, 2))
    >>> F = reference.fisher(policy, theta, obs)
    >>> F.shape                  # P = (2 + 1) 3 + (3 + 1) 1 + 1 (log_std)
    (14, 14)
    >>> bool(np.allclose(F, policy.fisher(theta, obs), atol=1e-6))
    True
    """
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
