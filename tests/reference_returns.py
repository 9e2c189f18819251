"""Plain NumPy/Python references for the returns kernels: slow, obvious, per step."""
import numpy as np


def _columns(x):
    x = np.asarray(x, dtype=np.float64)
    return x if x.ndim == 2 else x[:, None]


def reward_to_go(rewards, gamma, terminated, truncated, next_values=None):
    r, term, trunc = _columns(rewards), _columns(terminated), _columns(truncated)
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


def gae(rewards, values, next_values, gamma, lam, terminated, truncated):
    r, v, nv = _columns(rewards), _columns(values), _columns(next_values)
    term, trunc = _columns(terminated), _columns(truncated)
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
    term, trunc = _columns(terminated), _columns(truncated)
    T, B = term.shape
    out = np.zeros((T, B))
    for b in range(B):
        k = 0
        for t in range(T):
            out[t, b] = gamma ** k
            k = 0 if (term[t, b] or trunc[t, b]) else k + 1
    return out.reshape(np.shape(terminated))


def episode_stats(rewards, terminated, truncated):
    r, term, trunc = _columns(rewards), _columns(terminated), _columns(truncated)
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
