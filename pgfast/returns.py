"""Returns and advantages over time-major buffers (Cython kernels in ``src/_returns.pyx``).

Layout: ``(T,)`` for one stream or ``(T, B)`` for B parallel environments, as a
Gymnasium vector env produces them. ``terminated[t]`` means the episode ended in
a terminal state after step t (no bootstrap); ``truncated[t]`` means a time limit
cut it after step t (bootstrap with the value of the next state).

Every function takes NumPy arrays (or lists), or CPU arrays of another library
(PyTorch, JAX, ...), and returns arrays of the library it was given; the
documented dtypes are those of NumPy results.
"""
from __future__ import annotations

import numpy as np

from . import _returns
from numpy.typing import ArrayLike

from ._validation import (ArrayResult, as_array, as_flags, as_float_array,
                          check_finite_from, check_finite_result, check_unit_interval,
                          check_work_memory, float_dtype, _SMALL_ALLOCATION)
from ._arrays import arrays_in_out

__all__ = ["reward_to_go", "gae", "discount_powers", "episode_stats"]


def _as_2d(x, name, dtype, finite=False):
    """(the array viewed as (T, B), its own shape). Unless `finite`, finiteness
    is left to the kernels, which check their output (see _raise_not_finite)."""
    arr = as_float_array(x, name, dtype=dtype, ndim=(1, 2), finite=finite)
    return (arr if arr.ndim == 2 else arr[:, None]), arr.shape


def _as_like(x, name, dtype, shape, shape2d):
    """x as a C-contiguous `dtype` array of rewards' `shape`, viewed as `shape2d`."""
    if type(x) is np.ndarray and x.shape == shape and x.dtype == dtype \
            and x.flags.c_contiguous:
        return x if shape == shape2d else x.reshape(shape2d)   # the common case
    # An array's shape is checked before its copy, so every copy is of rewards' size
    # (which _check_memory counts).
    arr = x if isinstance(x, np.ndarray) else as_float_array(x, name, dtype=dtype, finite=False)
    if arr.shape != shape:
        raise ValueError(f"{name}: expected shape {shape} (that of rewards), got {arr.shape}")
    return as_float_array(arr, name, dtype=dtype, finite=False).reshape(shape2d)


def _common_case(floats, flags, out) -> tuple[np.ndarray, ...] | None:
    """The usual call checked in one pass: float64 (T, B) ndarrays in C order, bool
    flags of their shape and a writeable `out` of it. The floats, the flags as the
    kernels' uint8 views and `out`; None when the general checks must run."""
    first = floats[0]
    if type(first) is not np.ndarray or first.ndim != 2:
        return None
    shape = first.shape
    for x in floats:
        if type(x) is not np.ndarray or x.dtype is not _F64 or x.shape != shape \
                or not x.flags.c_contiguous:
            return None
    for x in flags:
        if type(x) is not np.ndarray or x.dtype is not _BOOL or x.shape != shape \
                or not x.flags.c_contiguous:
            return None
    if type(out) is not np.ndarray or out.dtype is not _F64 or out.shape != shape:
        return None
    f = out.flags
    if not (f.c_contiguous and f.writeable):
        return None
    return (*floats, *(x.view(_UINT8) for x in flags), out)


def _check_memory(what, shape_of, result_itemsize, *inputs):
    """Refuse before any copy a call that memory cannot hold: the inputs' contiguous
    copies (a broadcast view of 2**31 rows copies every row), the result and the two
    one-byte flag arrays, all of the size of `shape_of` (rewards, or terminated)."""
    n = shape_of.size if isinstance(shape_of, np.ndarray) else 0   # a list is held already
    if n * (8 * len(inputs) + result_itemsize + 2) < _SMALL_ALLOCATION:
        return   # even were every input copied (the common case: the call is small)
    check_work_memory(what, n * (result_itemsize + 2), inputs)


_BOOL, _F64, _UINT8 = np.dtype(np.bool_), np.dtype(np.float64), np.dtype(np.uint8)


def _raise_not_finite(out, **inputs):
    """The kernel saw a non-finite output: name the input that caused it (a non-finite
    one, else every input, the largest in magnitude first)."""
    for name, arr in inputs.items():
        if arr is not None and not np.isfinite(arr).all():
            raise ValueError(f"{name}: expected finite values, found NaN or infinity")
    check_finite_from(out, "the result", **inputs)


def _check_out(out, shape, dtype) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(
            f"out: expected a writeable C-contiguous {dtype} array of shape {shape}, "
            f"got {out.dtype} {out.shape}"
        )
    return out


def _flags_2d(terminated, truncated, shape2d, shape):
    term = as_flags(terminated, "terminated", shape)
    trunc = as_flags(truncated, "truncated", shape)
    if shape2d != shape:   # 1-D buffers as one column
        term, trunc = term.reshape(shape2d), trunc.reshape(shape2d)
    return term, trunc


@arrays_in_out("rewards", "next_values", other=("terminated", "truncated"), out="out")
def reward_to_go(rewards: ArrayLike, gamma: float, terminated: ArrayLike | None = None,
                 truncated: ArrayLike | None = None, next_values: ArrayLike | None = None,
                 out: ArrayLike | None = None) -> ArrayResult:
    """Discounted reward-to-go, restarting at every episode end.

    G_t = r_t + γ (1 − done_t) G_{t+1}, with done_t = terminated_t or truncated_t,
    computed backwards in one pass (kernel ``src/_returns.pyx``).

    Parameters
    ----------
    rewards : array_like, shape (T,) or (T, B)
        r_t, time-major: one stream, or B environments side by side.
    gamma : float in [0, 1]
        The discount γ.
    terminated, truncated : array_like of bool, same shape as rewards, optional
        An episode ends after step t in a terminal state (``terminated[t]``, nothing
        to bootstrap) or at a time limit (``truncated[t]``). None: no episode ends.
    next_values : array_like, same shape as rewards, optional
        V(s_{t+1}) for every t: the value of the true next state, also at the final
        step of a truncated episode and at the last step of the buffer. When given,
        truncated and unfinished episodes bootstrap, G_t = r_t + γ V(s_{t+1}).
        When omitted the sum simply ends: the book's finite-horizon
        r_togo(k) = Σ_{l=k..d} γ^(l−k) r_l.
    out : ndarray, optional
        Written in place when given (same shape, the result dtype).

    Returns
    -------
    ndarray
        G, the shape of rewards; float32 if every float input is float32, else float64.

    Raises
    ------
    ValueError
        A shape that does not match rewards, γ outside [0, 1], non-finite inputs (or
        a result that overflows), or an unusable ``out``.
    TypeError
        Non-numeric input, flags that are not booleans, or ``out`` not an ndarray.

    See Also
    --------
    gae : advantages with a value baseline.
    discount_powers : the weights γ^(k−1) that make R(τ, k) = γ^(k−1) G_k.

    Examples
    --------
    Two episodes in one stream, the first ending after step 1:

    >>> import numpy as np
    >>> import pgfast
    >>> rewards = np.array([1.0, 2.0, 3.0, 4.0])
    >>> terminated = np.array([False, True, False, False])
    >>> pgfast.reward_to_go(rewards, 0.5, terminated)
    array([2., 2., 5., 4.])

    The episode still running at the last step bootstraps from ``next_values``:

    >>> pgfast.reward_to_go(rewards, 0.5, terminated, next_values=np.full(4, 8.0))
    array([2., 2., 7., 8.])
    """
    gamma = check_unit_interval(gamma, "gamma")
    if next_values is not None:
        ready = _common_case((rewards, next_values), (terminated, truncated), out)
        if ready is not None:
            r, nv, term, trunc, result = ready
            if not _returns.reward_to_go(r, term, trunc, nv, gamma, result):
                _raise_not_finite(result, rewards=r, next_values=nv)
            return result
    dtype = float_dtype(rewards, next_values)
    _check_memory("computing the reward-to-go", rewards, dtype.itemsize,
                  ("rewards", rewards, dtype), ("next_values", next_values, dtype))
    r, shape = _as_2d(rewards, "rewards", dtype)
    term, trunc = _flags_2d(terminated, truncated, r.shape, shape)
    if next_values is None:
        nv = np.empty((0, r.shape[1]), dtype=dtype)
    else:
        nv = _as_like(next_values, "next_values", dtype, shape, r.shape)
    out = _check_out(out, shape, dtype)
    if not _returns.reward_to_go(r, term, trunc, nv, gamma, out.reshape(r.shape)):
        _raise_not_finite(out, rewards=r, **({} if next_values is None else {"next_values": nv}))
    return out


@arrays_in_out("rewards", "values", "next_values", other=("terminated", "truncated"), out="out")
def gae(rewards: ArrayLike, values: ArrayLike, next_values: ArrayLike, gamma: float, lam: float,
        terminated: ArrayLike | None = None, truncated: ArrayLike | None = None,
        out: ArrayLike | None = None) -> ArrayResult:
    """Generalized advantage estimation (Schulman et al. 2016).

    δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t),
    A_t = δ_t + γλ (1 − done_t) A_{t+1}.

    λ = 1 gives ``reward_to_go(rewards, gamma, ..., next_values) - values``;
    λ = 0 gives the TD error δ_t.

    Parameters
    ----------
    rewards, values, next_values : array_like, shape (T,) or (T, B)
        ``values[t]`` is V(s_t); ``next_values[t]`` is V(s_{t+1}) of the true next
        state (the final observation at a truncation).
    gamma, lam : float in [0, 1]
        The discount γ and GAE's λ.
    terminated, truncated : array_like of bool, same shape, optional
        Episode ends, as in :func:`reward_to_go`; a terminal state takes
        V(s_{t+1}) = 0, a truncation keeps ``next_values[t]``.
    out : ndarray, optional
        Written in place when given (same shape, the result dtype).

    Returns
    -------
    ndarray
        The advantages A_t, the shape of rewards (float32 if every float input is
        float32, else float64).

    Raises
    ------
    ValueError
        Shapes that differ from rewards', γ or λ outside [0, 1], non-finite inputs,
        or an unusable ``out``.
    TypeError
        Non-numeric input, flags that are not booleans, or ``out`` not an ndarray.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> rewards = np.array([1.0, 1.0, 1.0])
    >>> values = np.array([0.5, 0.5, 0.5])
    >>> next_values = np.array([0.5, 0.5, 0.0])
    >>> terminated = np.array([False, False, True])
    >>> pgfast.gae(rewards, values, next_values, 1.0, 0.0, terminated)   # λ = 0: δ_t
    array([1. , 1. , 0.5])
    >>> pgfast.gae(rewards, values, next_values, 1.0, 1.0, terminated)   # λ = 1: G_t − V
    array([2.5, 1.5, 0.5])
    """
    gamma = check_unit_interval(gamma, "gamma")
    lam = check_unit_interval(lam, "lam")
    ready = _common_case((rewards, values, next_values), (terminated, truncated), out)
    if ready is not None:
        r, v, nv, term, trunc, result = ready
        if not _returns.gae(r, v, nv, term, trunc, gamma, lam, result):
            _raise_not_finite(result, rewards=r, values=v, next_values=nv)
        return result
    dtype = float_dtype(rewards, values, next_values)
    _check_memory("computing the advantages", rewards, dtype.itemsize,
                  ("rewards", rewards, dtype), ("values", values, dtype),
                  ("next_values", next_values, dtype))
    r, shape = _as_2d(rewards, "rewards", dtype)
    v = _as_like(values, "values", dtype, shape, r.shape)
    nv = _as_like(next_values, "next_values", dtype, shape, r.shape)
    term, trunc = _flags_2d(terminated, truncated, r.shape, shape)
    out = _check_out(out, shape, dtype)
    if not _returns.gae(r, v, nv, term, trunc, gamma, lam, out.reshape(r.shape)):
        _raise_not_finite(out, rewards=r, values=v, next_values=nv)
    return out


@arrays_in_out(other=("terminated", "truncated"))
def discount_powers(terminated: ArrayLike | None, truncated: ArrayLike | None,
                    gamma: float) -> ArrayResult:
    """The book's weighting γ^(k−1), k the 1-based step index within its episode.

    Multiply by ``reward_to_go(...)`` to get R(τ, k) = γ^(k−1) r_togo(k).

    Parameters
    ----------
    terminated, truncated : array_like of bool, shape (T,) or (T, B)
        Where episodes end; ``truncated`` may be None (no time limits).
    gamma : float in [0, 1]
        The discount γ.

    Returns
    -------
    ndarray
        float64, the shape of terminated. An episode already under way at the first
        step is counted from there (k = 1).

    Raises
    ------
    ValueError
        γ outside [0, 1], flags that are not 1-D or 2-D, or shapes that differ.
    TypeError
        ``terminated`` is None or not boolean.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> terminated = np.array([False, False, True, False])
    >>> pgfast.discount_powers(terminated, None, 0.9)
    array([1.  , 0.9 , 0.81, 1.  ])
    """
    gamma = check_unit_interval(gamma, "gamma")
    if terminated is None:
        raise TypeError("terminated: expected an array of bool, got None")
    _check_memory("computing the discount powers", terminated, 8,
                  ("terminated", terminated, _BOOL))
    shape = as_array(terminated, "terminated").shape
    if len(shape) not in (1, 2):
        raise ValueError(f"terminated: expected a 1-D or 2-D array, got shape {shape}")
    shape2d = shape if len(shape) == 2 else (shape[0], 1)
    term, trunc = _flags_2d(terminated, truncated, shape2d, shape)
    out = np.empty(shape, dtype=np.float64)
    _returns.discount_powers(term, trunc, gamma, out.reshape(shape2d))
    return out


@arrays_in_out("rewards", other=("terminated", "truncated"))
def episode_stats(rewards: ArrayLike, terminated: ArrayLike | None,
                  truncated: ArrayLike | None = None) -> tuple[ArrayResult, ArrayResult]:
    """Undiscounted returns and lengths of the episodes that end in the buffer.

    Episodes are listed in the order they end (by step, then by env index).
    An episode already under way at the buffer's first step is counted from there;
    one still running at the last step is not listed.

    Parameters
    ----------
    rewards : array_like, shape (T,) or (T, B)
        r_t, time-major; must be finite.
    terminated, truncated : array_like of bool, same shape as rewards
        Where episodes end; ``truncated`` may be None (no time limits).

    Returns
    -------
    returns : ndarray, shape (E,)
        float64, the sum of each episode's rewards.
    lengths : ndarray, shape (E,)
        int64, each episode's number of steps.

    Raises
    ------
    ValueError
        Non-finite rewards, or flags whose shape differs from rewards'.
    TypeError
        ``terminated`` is None, or input that is not numeric or boolean.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> rewards = np.ones((4, 2))
    >>> terminated = np.array([[False, False], [True, False], [False, False], [False, True]])
    >>> pgfast.episode_stats(rewards, terminated)
    (array([2., 4.]), array([2, 4]))
    """
    dtype = float_dtype(rewards)
    _check_memory("computing the episode statistics", rewards, 0, ("rewards", rewards, dtype))
    r, shape = _as_2d(rewards, "rewards", dtype, finite=True)
    if terminated is None:
        raise TypeError("terminated: expected an array of bool, got None")
    term, trunc = _flags_2d(terminated, truncated, r.shape, shape)
    n = _returns.count_episode_ends(term, trunc)
    returns = np.empty(n, dtype=np.float64)
    lengths = np.empty(n, dtype=np.int64)
    _returns.episode_stats(r, term, trunc, returns, lengths)
    return check_finite_result(returns, "rewards", "an episode's return"), lengths
