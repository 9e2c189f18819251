"""Policies π(θ, s) and value functions V(φ, s) (Cython kernels: ``src/_net.pyx``, the
network; ``src/_policies.pyx``, the policy contract; ``src/_softmax.pyx`` and
``src/_gaussian.pyx``, the heads).

A policy object describes an architecture and holds no parameters: θ is a flat
float64 array the caller owns. The kernels compute in float64; when every float
argument of a call is float32, the results come back as float32. Every method is batched over N observations
(an (N, obs_dim) array; a single 1-D observation is a batch of one).

Parameter layout (``unpack`` names the pieces), W of shape (in, out) applied as
``x @ W + b``::

    θ = [W0, b0, W1, b1, ..., W_{L-1}, b_{L-1}, log_std]

with tanh between layers and a linear output layer; ``log_std`` (Gaussian policies
with ``learn_std=True``) is a state-independent vector of act_dim entries.

Each policy exposes its C-level kernel as ``policy.kernel`` (a
``pgfast._policies.PolicyKernel``, see ``_policies.pxd``) for compiled rollout loops.
"""
from __future__ import annotations

import inspect
import numbers

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import _gaussian, _net, _softmax
from ._threads import blas_limited, one_blas_thread
from ._validation import (ArrayResult, RngLike, as_array, as_float_array, check_allocation,
                          check_bool, check_finite, check_finite_from, check_positive_int,
                          check_rng)
from ._arrays import arrays_in_out

__all__ = [
    "LinearSoftmax",
    "LinearGaussian",
    "MLPSoftmax",
    "MLPGaussian",
    "LinearValue",
    "MLPValue",
    "policy_for",
    "from_config",
]

_FISHER_CHUNK = 1 << 22  # doubles of per-sample Jacobian rows held at once by fisher()


def _check_hidden(hidden, name="hidden"):
    if isinstance(hidden, numbers.Integral):
        hidden = (hidden,)
    try:
        sizes = tuple(hidden)
    except TypeError as exc:
        raise TypeError(f"{name}: expected a sequence of layer widths, got "
                        f"{type(hidden).__name__}") from exc
    return tuple(check_positive_int(h, f"{name}[{i}]") for i, h in enumerate(sizes))


def _check_out(out, shape):
    if out is None:
        return np.empty(shape)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous \
            or not out.flags.writeable:
        raise ValueError(f"out: expected a writeable C-contiguous float64 array of shape "
                         f"{shape}, got {out.dtype} {out.shape}")
    return out


def _orthogonal(rng, n_in, n_out, gain):
    """A (n_in, n_out) matrix with orthonormal rows or columns, times gain."""
    a = rng.standard_normal((max(n_in, n_out), min(n_in, n_out)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))  # a uniformly distributed orthogonal matrix
    if n_in < n_out:
        q = q.T
    return gain * q


class _Network:
    """Shared parts of policies and value functions: a tanh MLP of `sizes`."""

    _net: _net.Net
    _n_extra: int

    def _config_args(self) -> dict:
        raise NotImplementedError   # each concrete class names its constructor arguments

    def __init__(self, obs_dim, hidden, out_dim, out_name="out_dim"):
        self.obs_dim = check_positive_int(obs_dim, "obs_dim")
        self.hidden = _check_hidden(hidden)
        self._sizes = (self.obs_dim, *self.hidden, out_dim)
        # Python's integers are exact: a network that cannot be held is refused here,
        # before the kernel's 64-bit sizes could overflow, naming its largest size.
        n_params = sum((a + 1) * b for a, b in zip(self._sizes, self._sizes[1:]))
        widths = {"hidden": max(self.hidden, default=0), "obs_dim": self.obs_dim,
                  out_name: out_dim}   # a tie names the hidden layers, as before
        check_allocation(8 * n_params, max(widths, key=widths.get),
                         f"a network of {n_params} parameters")

    def config(self) -> dict:
        """JSON-serialisable description (class name and constructor arguments);
        ``from_config(obj.config())`` rebuilds the object."""
        return {"class": type(self).__name__, **self._config_args()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config_args().items())
        return f"{type(self).__name__}({args})"

    @property
    def n_params(self) -> int:
        """Length P of the flat parameter vector."""
        return self._net.n_params + self._n_extra

    # parameters ------------------------------------------------------------

    def _shapes(self):
        shapes = []
        for l in range(len(self._sizes) - 1):
            shapes.append((f"W{l}", (self._sizes[l], self._sizes[l + 1])))
            shapes.append((f"b{l}", (self._sizes[l + 1],)))
        return shapes

    def unpack(self, theta: ArrayLike) -> dict[str, np.ndarray]:
        """The named pieces of θ: ``"W0"`` (in, out), ``"b0"``, ..., ``"log_std"``.

        The arrays are copies; ``pack(unpack(theta))`` equals theta.
        """
        theta = self._check_theta(theta)
        out, i = {}, 0
        for name, shape in self._shapes():
            size = int(np.prod(shape))
            out[name] = theta[i:i + size].reshape(shape).copy()
            i += size
        if self._n_extra:
            out["log_std"] = theta[i:].copy()
        return out

    def pack(self, params: dict[str, ArrayLike]) -> np.ndarray:
        """The flat θ from a dict of named arrays (the inverse of ``unpack``)."""
        if not isinstance(params, dict):
            raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}")
        shapes = self._shapes()
        if self._n_extra:
            shapes.append(("log_std", (self._n_extra,)))
        expected = {name for name, _ in shapes}
        if set(params) != expected:
            raise ValueError(f"params: expected the keys {sorted(expected)}, "
                             f"got {sorted(params)}")
        pieces = []
        for name, shape in shapes:
            arr = as_float_array(params[name], f"params[{name!r}]")
            if arr.shape != shape:
                raise ValueError(f"params[{name!r}]: expected shape {shape}, got {arr.shape}")
            pieces.append(arr.ravel())
        return np.concatenate(pieces)

    def _init_layers(self, rng, out_gain):
        rng = check_rng(rng)
        params = {}
        n_layers = len(self._sizes) - 1
        for l in range(n_layers):
            gain = out_gain if l == n_layers - 1 else np.sqrt(2.0)
            params[f"W{l}"] = _orthogonal(rng, self._sizes[l], self._sizes[l + 1], gain)
            params[f"b{l}"] = np.zeros(self._sizes[l + 1])
        return params

    # input checks ------------------------------------------------------------

    def _check_theta(self, theta: ArrayLike, name: str = "theta") -> np.ndarray:
        theta = as_float_array(theta, name, ndim=1)
        if theta.shape[0] != self.n_params:
            raise ValueError(f"{name}: expected a 1-D array of length {self.n_params} "
                             f"(n_params), got length {theta.shape[0]}")
        return theta

    def _check_obs(self, obs: ArrayLike, name: str = "obs", finite: bool = True) -> np.ndarray:
        obs = as_float_array(obs, name, ndim=(1, 2), finite=finite)
        if obs.ndim == 1:
            obs = obs[None, :]
        if obs.shape[1] != self.obs_dim:
            raise ValueError(f"{name}: expected observations of width {self.obs_dim} "
                             f"(obs_dim), got shape {obs.shape}")
        return obs

    def _check_rows(self, x: ArrayLike, name: str, n: int, finite: bool = True) -> np.ndarray:
        x = as_float_array(x, name, ndim=1, finite=finite)
        if x.shape[0] != n:
            raise ValueError(f"{name}: expected shape ({n},) (one per observation), "
                             f"got {x.shape}")
        return x


class _Policy(_Network):
    """Common methods of the softmax and Gaussian policies."""

    discrete: bool
    _log_std: np.ndarray   # Gaussian policies

    # Defined by the softmax and Gaussian policies: actions as returned to the user,
    # actions checked into the kernel's (N, act_dim) float64 layout, and the
    # factors of the Fisher metric at obs.
    def _actions_out(self, a: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _check_actions(self, actions, n: int) -> np.ndarray:
        raise NotImplementedError

    def _metric_factors(self, theta: np.ndarray, obs: np.ndarray):
        raise NotImplementedError

    def _build(self, kernel):
        self.kernel = kernel
        self._net = kernel.net
        self._n_extra = kernel.n_extra

    def init(self, rng: RngLike = None) -> np.ndarray:
        """Initial θ: orthogonal weights (gain √2 for hidden layers, 0.01 for the
        output layer), zero biases, log_std at the constructor's value. `rng` is a
        Generator, an int seed or None for a fresh seed (``numpy.random.default_rng``)."""
        params = self._init_layers(rng, 0.01)
        if self._n_extra:
            params["log_std"] = np.array(self._log_std, dtype=np.float64)
        return self.pack(params)

    @arrays_in_out("theta", "obs")
    @blas_limited()
    def sample(self, theta: ArrayLike, obs: ArrayLike,
               rng: RngLike = None) -> tuple[ArrayResult, ArrayResult]:
        """Draw a ~ π_θ(· | s) for every observation, from `rng` (a Generator, an
        int seed or None for a fresh seed, as ``numpy.random.default_rng``).

        Returns
        -------
        actions : ndarray, int64 (N,) for softmax policies, float64 (N, act_dim) for Gaussian
        log_probs : float64 ndarray (N,), log π_θ(a | s) of the drawn actions
        """
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        rng = check_rng(rng)
        n = obs.shape[0]
        actions = np.empty((n, self.kernel.act_dim))
        logp = np.empty(n)
        if n:
            self.kernel.sample_into(theta, obs, rng, actions, logp)
        check_finite_from(actions, "a sampled action", theta=theta, obs=obs)
        check_finite_from(logp, "log π of the sampled actions", theta=theta, obs=obs)
        return self._actions_out(actions), logp

    @blas_limited()
    def _sample_each(self, thetas, obs, generators):
        """:meth:`sample` with row i drawn from ``generators[i]`` under ``thetas[i]``
        (``thetas`` (N, P), or (1, P) for one θ; checked by the caller): what N calls
        ``sample(θ_i, obs[i], generators[i])`` return, in one kernel call."""
        obs = self._check_obs(obs)
        actions = np.empty((obs.shape[0], self.kernel.act_dim))
        logp = np.empty(obs.shape[0])
        self.kernel.sample_rows_into(thetas, obs, generators, actions, logp)
        check_finite_from(logp, "log π of the sampled actions", theta=thetas, obs=obs)
        return self._actions_out(actions), logp

    @arrays_in_out("theta", "obs")
    @blas_limited()
    def mode(self, theta: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """The most likely action (argmax of the logits / the mean), same types as sample."""
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        actions = np.empty((obs.shape[0], self.kernel.act_dim))
        if obs.shape[0]:
            self.kernel.mode_into(theta, obs, actions)
        return self._actions_out(check_finite_from(actions, "the mode", theta=theta, obs=obs))

    @arrays_in_out("theta", "obs", other=("actions",))
    @blas_limited()
    def log_prob(self, theta: ArrayLike, obs: ArrayLike, actions: ArrayLike) -> ArrayResult:
        """log π_θ(a_i | s_i), shape (N,)."""
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        actions = self._check_actions(actions, obs.shape[0])
        logp = np.empty(obs.shape[0])
        if obs.shape[0]:
            self.kernel.log_prob_into(theta, obs, actions, logp)
        return check_finite_from(logp, "log π(a | s)", theta=theta, obs=obs, actions=actions)

    @arrays_in_out("theta", "obs", "weights", other=("actions",), out="out")
    @blas_limited()
    def grad_log_prob(self, theta: ArrayLike, obs: ArrayLike, actions: ArrayLike,
                      weights: ArrayLike | None = None, out: ArrayLike | None = None,
                      num_threads: int = 1) -> ArrayResult:
        """Score function ∇_θ log π_θ(a_i | s_i).

        Parameters
        ----------
        weights : array_like (N,), optional
            When given, return the weighted sum instead of the rows.
        out : ndarray, optional
            Written in place when given: float64, C-contiguous, of the result's shape
            (reusing an (N, P) buffer saves the page faults of a fresh allocation).
        num_threads : int, default 1
            Threads that write the (N, P) rows (OpenMP), which is memory-bound for
            large N; the result does not depend on it. Unused with `weights`.

        Returns
        -------
        ndarray
            (N, P) per-sample gradients when `weights` is None; otherwise (P,) the
            weighted sum Σ_i w_i ∇_θ log π_θ(a_i | s_i), computed without forming the
            (N, P) matrix. ∇π = π ∇log π gives the gradient of the probability.
        """
        theta = self._check_theta(theta)
        num_threads = check_positive_int(num_threads, "num_threads")
        if weights is not None:
            return self._score_sum(theta, obs, actions, weights, out)
        obs = self._check_obs(obs)
        n = obs.shape[0]
        actions = self._check_actions(actions, n)
        rows = _check_out(out, (n, self.n_params))
        if n and self.kernel.grad_log_prob_into(theta, obs, actions, None, np.empty(1), rows,
                                                num_threads):
            return rows   # bounded as the kernel wrote them: no pass over the (N, P) rows
        return check_finite_from(rows, "∇log π", theta=theta, obs=obs, actions=actions)

    def _score_sum(self, theta, obs, actions, weights, out):
        """grad_log_prob with weights: Σ_i w_i ∇θ log π_θ(a_i | s_i), θ checked."""
        obs = self._check_obs(obs, finite=False)
        n = obs.shape[0]
        weights = self._check_rows(weights, "weights", n, finite=False)
        grad = _check_out(out, (self.n_params,))
        if n == 0:
            grad[:] = 0.0
            return grad
        if self._fused_score_sum(theta, obs, actions, weights, grad):
            # Every value of obs and weights meets that sum in a product, so a NaN
            # or infinity among them shows in its P values: the N rows are read
            # once, by the kernel, and scanned again only to name the culprit.
            if not np.isfinite(grad).all():
                check_finite(obs, "obs")
                check_finite(weights, "weights")
                check_finite_from(grad, "Σ w ∇log π", theta=theta, obs=obs, actions=actions,
                                  weights=weights)   # finite inputs overflowed
            return grad
        check_finite(obs, "obs")
        check_finite(weights, "weights")
        self.kernel.grad_log_prob_into(theta, obs, self._check_actions(actions, n), weights,
                                       grad, np.empty((1, 1)))
        return check_finite_from(grad, "Σ w ∇log π", theta=theta, obs=obs, actions=actions,
                                 weights=weights)

    def _fused_score_sum(self, theta, obs, actions, weights, grad) -> bool:
        """grad ← the weighted score sum in one kernel pass that also checks the
        actions, where the policy has one; False otherwise (nothing checked)."""
        return False

    @arrays_in_out("theta_old", "theta_new", "obs")
    @blas_limited()
    def kl(self, theta_old: ArrayLike, theta_new: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """KL(π_old(· | s_i) ‖ π_new(· | s_i)) per observation, shape (N,).

        Softmax: Σ_a p_a (log p_a − log q_a). Gaussian: Σ_k log(σ'_k/σ_k)
        + (σ_k² + (μ_k − μ'_k)²) / (2σ'_k²) − ½.
        """
        theta_old = self._check_theta(theta_old, "theta_old")
        theta_new = self._check_theta(theta_new, "theta_new")
        obs = self._check_obs(obs)
        kl = np.empty(obs.shape[0])
        if obs.shape[0]:
            self.kernel.kl_into(theta_old, theta_new, obs, kl, None)
        return check_finite_from(kl, "the KL divergence", theta_new=theta_new,
                                 theta_old=theta_old, obs=obs)

    @arrays_in_out("theta_old", "theta_new", "obs")
    @blas_limited()
    def kl_grad(self, theta_old: ArrayLike, theta_new: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """Gradient with respect to theta_new of the MEAN KL over the observations,

        ∇_{θ_new} (1/N) Σ_i KL(π_old(· | s_i) ‖ π_new(· | s_i)), shape (P,)

        (zero at theta_new = theta_old; its directional derivative there is F v).
        """
        theta_old = self._check_theta(theta_old, "theta_old")
        theta_new = self._check_theta(theta_new, "theta_new")
        obs = self._check_obs(obs)
        n = obs.shape[0]
        if n == 0:
            raise ValueError("obs: expected at least one observation, got 0")
        grad = np.zeros(self.n_params)
        self.kernel.kl_into(theta_old, theta_new, obs, np.empty(n), grad)
        return check_finite_from(grad, "the KL gradient", theta_new=theta_new,
                                 theta_old=theta_old, obs=obs)

    @arrays_in_out("theta", "obs")
    @blas_limited()
    def entropy(self, theta: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """Entropy of π_θ(· | s_i), shape (N,): −Σ_a p_a log p_a, or
        Σ_k log σ_k + ½ (1 + log 2π) for the Gaussian."""
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        ent = np.empty(obs.shape[0])
        if obs.shape[0]:
            self.kernel.entropy_into(theta, obs, ent)
        return check_finite_from(ent, "the entropy", theta=theta, obs=obs)

    @arrays_in_out("theta", "obs")
    @blas_limited()
    def entropy_grad(self, theta: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """Gradient of the MEAN entropy over the observations, ∇_θ (1/N) Σ_i H(π_θ(· | s_i)),
        shape (P,) (for an entropy bonus). Softmax: ∂H/∂z_k = −p_k (z_k − Σ_j p_j z_j);
        Gaussian: ∂H/∂log σ_k = 1, nothing else."""
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        if obs.shape[0] == 0:
            raise ValueError("obs: expected at least one observation, got 0")
        grad = np.empty(self.n_params)
        self.kernel.entropy_grad_into(theta, obs, grad)
        return check_finite_from(grad, "the entropy gradient", theta=theta, obs=obs)

    @arrays_in_out("theta", "obs", "v")
    @blas_limited()
    def fisher_vector_product(self, theta: ArrayLike, obs: ArrayLike, v: ArrayLike,
                              num_threads: int = 1) -> ArrayResult:
        """F v for the Fisher information of the action distribution averaged over obs.

        F = (1/N) Σ_i E_{a ~ π_θ(·|s_i)}[∇ log π ∇ log πᵀ] = (1/N) Σ_i J_iᵀ M_i J_i
        (+ 2 I on log_std), with J_i the Jacobian of the network output at s_i and
        M_i = diag(p) − p pᵀ (softmax) or diag(1/σ²) (Gaussian). Computed with one
        forward-mode and one reverse-mode pass: no (P, P) matrix.

        The rows are summed in blocks fixed by N alone (at least 128 rows, at most
        64 blocks), each on its own, and the sums added in block order; num_threads
        OpenMP threads share the blocks, so the product is the same bit for bit for
        any count. The matrix products inside then run concurrently, so give BLAS one
        thread (``OPENBLAS_NUM_THREADS=1``) to keep the two from competing.
        """
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        v = self._check_theta(v, "v")
        num_threads = self._check_threads(num_threads, obs.shape[0])
        out = np.empty(self.n_params)
        self.kernel.fvp_into(theta, obs, v, out, None, num_threads)
        return check_finite_from(out, "the Fisher-vector product", theta=theta, obs=obs, v=v)

    @staticmethod
    def _check_threads(num_threads, n):
        """num_threads validated, for a batch of at least one row."""
        num_threads = check_positive_int(num_threads, "num_threads")
        if n == 0:
            raise ValueError("obs: expected at least one observation, got 0")
        return num_threads

    @arrays_in_out("theta", "obs")
    @blas_limited()
    def fisher_operator(self, theta: ArrayLike, obs: ArrayLike,
                        num_threads: int = 1) -> Callable[[ArrayLike], ArrayResult]:
        """v ↦ F v for a fixed θ and batch, sharing one forward pass between calls.

        Conjugate gradient (TRPO, natural gradient) applies F ten or more times per
        update; each call then costs one forward-mode and one reverse-mode pass and
        no tanh. Equal to ``fisher_vector_product(theta, obs, v, num_threads)``; theta
        and obs are copied, so later changes to the caller's arrays do not affect it.

        Returns
        -------
        callable
            ``fvp(v) -> ndarray (P,)``.
        """
        at = self._check_theta(theta).copy()
        states = self._check_obs(obs).copy()
        n = states.shape[0]
        num_threads = self._check_threads(num_threads, n)
        cache = np.empty(n * (self._net.sum_hidden + self._net.out_dim))
        self.kernel.forward_into(at, states, cache, num_threads)

        @arrays_in_out("v")
        def fvp(v: ArrayLike) -> ArrayResult:
            out = np.empty(self.n_params)
            v = self._check_theta(v, "v")
            with one_blas_thread():   # called later, outside fisher_operator's limit
                self.kernel.fvp_into(at, states, v, out, cache, num_threads)
            return check_finite_from(out, "the Fisher-vector product", theta=at, obs=states,
                                     v=v)

        return fvp

    @arrays_in_out("theta", "obs")
    @blas_limited(always=True)
    def fisher(self, theta: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """The dense (P, P) Fisher matrix of ``fisher_vector_product`` (for small P).

        Built as (1/N) Σ_i Σ_c g_{ic} g_{ic}ᵀ from the factorisation M_i = Σ_c m_c m_cᵀ
        (m_c = √p_c (e_c − p) for softmax, e_c / σ_c for Gaussian), g_{ic} = J_iᵀ m_c.
        """
        theta = self._check_theta(theta)
        obs = self._check_obs(obs)
        n, P = obs.shape[0], self.n_params
        if n == 0:
            raise ValueError("obs: expected at least one observation, got 0")
        F = np.zeros((P, P))
        chunk = max(1, _FISHER_CHUNK // P)
        for start in range(0, n, chunk):
            part = obs[start:start + chunk]
            for dz in self._metric_factors(theta, part):
                rows = np.zeros((part.shape[0], P))
                self.kernel.vjp_rows_into(theta, part, dz, rows)
                F += rows.T @ rows
        F /= n
        return check_finite_from(F, "the Fisher matrix", theta=theta, obs=obs)



# The type every policy has (LinearSoftmax, MLPGaussian, ...), for annotations.
Policy = _Policy


class _SoftmaxPolicy(_Policy):
    discrete = True

    def __init__(self, obs_dim, n_actions, hidden):
        n_actions = check_positive_int(n_actions, "n_actions")
        super().__init__(obs_dim, hidden, n_actions, "n_actions")
        self.n_actions = n_actions
        self.act_dim = 1
        self._build(_softmax.SoftmaxKernel(self.obs_dim, n_actions, self.hidden))

    def _actions_out(self, a):
        return a[:, 0].astype(np.int64)

    def _check_actions(self, actions, n):
        arr = as_array(actions, "actions")
        if arr.ndim == 0:
            arr = arr[None]
        if arr.shape != (n,):
            raise ValueError(f"actions: expected shape ({n},) (one index per observation), "
                             f"got {arr.shape}")
        if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
            # min and max: two cheap reductions instead of a mask for large batches
            ok = n == 0 or (arr.min() >= 0 and arr.max() < self.n_actions)
        elif np.issubdtype(arr.dtype, np.floating):
            ok = bool(np.all((arr >= 0) & (arr < self.n_actions) & (arr == np.floor(arr))))
        else:
            raise TypeError(f"actions: expected integer action indices, got dtype {arr.dtype}")
        if not ok:
            bad = arr[~((arr >= 0) & (arr < self.n_actions) & (arr == np.floor(arr)))][0]
            raise ValueError(f"actions: expected integers in [0, {self.n_actions}) "
                             f"(n_actions), got {bad.item()!r}")
        return np.ascontiguousarray(arr, dtype=np.float64).reshape(n, 1)

    def _fused_score_sum(self, theta, obs, actions, weights, grad):
        # int64 indices (what rollouts record) go to the linear two-action kernel as
        # they are: no copy to doubles; it ORs them together to check they are 0 or 1
        # (False otherwise, and _check_actions then names the bad one).
        return (type(actions) is np.ndarray and actions.dtype == np.int64
                and actions.shape == (obs.shape[0],) and actions.flags.c_contiguous
                and self.kernel.index_score_sum(theta, obs, actions, weights, grad))

    def _metric_factors(self, theta, obs):
        z = np.empty((obs.shape[0], self.n_actions))
        self.kernel.outputs_into(theta, obs, z)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        for c in range(self.n_actions):
            dz = -p * np.sqrt(p[:, c:c + 1])
            dz[:, c] += np.sqrt(p[:, c])
            yield np.ascontiguousarray(dz)

    def _config_args(self):
        args = {"obs_dim": self.obs_dim, "n_actions": self.n_actions}
        if self.hidden:
            args["hidden"] = list(self.hidden)
        return args


class _GaussianPolicy(_Policy):
    discrete = False

    def __init__(self, obs_dim, act_dim, hidden, log_std, learn_std):
        act_dim = check_positive_int(act_dim, "act_dim")
        super().__init__(obs_dim, hidden, act_dim, "act_dim")
        ls = as_float_array(log_std, "log_std", ndim=(0, 1))
        if ls.size != 1 and ls.shape != (act_dim,):  # ascontiguousarray makes 0-D 1-D
            raise ValueError(f"log_std: expected a number or shape ({act_dim},) (act_dim), "
                             f"got {ls.shape}")
        self._log_std = np.broadcast_to(ls.ravel(), (act_dim,)).astype(np.float64)
        self.learn_std = check_bool(learn_std, "learn_std")
        self.act_dim = act_dim
        self.n_actions = 0
        self._build(_gaussian.GaussianKernel(self.obs_dim, act_dim, self.hidden,
                                             self._log_std, self.learn_std))

    def _actions_out(self, a):
        return a

    def _check_actions(self, actions, n):
        a = as_float_array(actions, "actions", ndim=(0, 1, 2))
        d = self.act_dim
        # a 1-D array is N scalar actions (act_dim 1) or one action (N = 1)
        if (a.ndim == 0 and n == d == 1) or (a.ndim == 1 and a.size == n * d
                                             and (d == 1 or n == 1)):
            a = a.reshape(n, d)
        if a.shape != (n, d):
            raise ValueError(f"actions: expected shape ({n}, {d}) (N, act_dim), got {a.shape}")
        return a

    def _metric_factors(self, theta, obs):
        ls = self.unpack(theta)["log_std"] if self.learn_std else self._log_std
        for c in range(self.act_dim):
            dz = np.zeros((obs.shape[0], self.act_dim))
            dz[:, c] = np.exp(-ls[c])
            yield dz

    @arrays_in_out("theta", "obs")
    @blas_limited(always=True)
    def fisher(self, theta: ArrayLike, obs: ArrayLike) -> ArrayResult:
        F = super().fisher(theta, obs)
        if self.learn_std:
            k = self._net.n_params
            F[k:, k:] += 2.0 * np.eye(self.act_dim)
        return F

    fisher.__doc__ = _Policy.fisher.__doc__

    def _config_args(self):
        args = {"obs_dim": self.obs_dim, "act_dim": self.act_dim}
        if self.hidden:
            args["hidden"] = list(self.hidden)
        ls = self._log_std
        args["log_std"] = float(ls[0]) if np.all(ls == ls[0]) else ls.tolist()
        args["learn_std"] = self.learn_std
        return args


class LinearSoftmax(_SoftmaxPolicy):
    """π(a | s) = softmax(s @ W0 + b0)_a over `n_actions` discrete actions.

    θ = [W0 (obs_dim, n_actions), b0 (n_actions,)].

    Parameters
    ----------
    obs_dim : int
        The width of an observation.
    n_actions : int
        The number of discrete actions.

    Raises
    ------
    ValueError
        A width below 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> policy = pgfast.LinearSoftmax(obs_dim=2, n_actions=3)
    >>> policy.n_params
    9
    >>> theta = policy.pack({"W0": np.zeros((2, 3)), "b0": np.log([1.0, 2.0, 1.0])})
    >>> np.exp(policy.log_prob(theta, [0.5, -1.0], [1])).round(6)   # softmax of b0
    array([0.5])
    >>> policy.mode(theta, np.zeros((2, 2)))
    array([1, 1])
    """

    def __init__(self, obs_dim: int, n_actions: int) -> None:
        super().__init__(obs_dim, n_actions, ())


class MLPSoftmax(_SoftmaxPolicy):
    """Softmax over the logits of a tanh MLP: h_{l+1} = tanh(h_l @ W_l + b_l),
    logits = h_L @ W_L + b_L.

    θ = [W0, b0, ..., W_L, b_L].

    Parameters
    ----------
    obs_dim : int
        The width of an observation.
    n_actions : int
        The number of discrete actions.
    hidden : int or sequence of int
        The hidden layers' widths (at least one layer).

    Raises
    ------
    ValueError
        No hidden layer, or a width below 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> policy = pgfast.MLPSoftmax(4, 2, hidden=(8,))
    >>> policy.n_params                     # (4 + 1) 8 + (8 + 1) 2
    58
    >>> theta = policy.init(np.random.default_rng(0))
    >>> actions, log_probs = policy.sample(theta, np.zeros((5, 4)), np.random.default_rng(1))
    >>> actions.shape, actions.dtype, log_probs.shape
    ((5,), dtype('int64'), (5,))
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64)) -> None:
        if not _check_hidden(hidden):
            raise ValueError("hidden: expected at least one hidden layer (use LinearSoftmax)")
        super().__init__(obs_dim, n_actions, hidden)


class LinearGaussian(_GaussianPolicy):
    """π(a | s) = N(a; s @ W0 + b0, diag exp(2 log_std)).

    θ = [W0 (obs_dim, act_dim), b0 (act_dim,), log_std (act_dim,)], the last
    piece only when ``learn_std``; otherwise log_std is fixed at the constructor's value.

    Parameters
    ----------
    obs_dim : int
        The width of an observation.
    act_dim : int
        The width of an action.
    log_std : float or array_like, shape (act_dim,)
        The initial (or fixed) log σ.
    learn_std : bool
        Whether log σ is part of θ.

    Raises
    ------
    ValueError
        A width below 1 or a `log_std` of the wrong shape.
    TypeError
        A `learn_std` that is not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> policy = pgfast.LinearGaussian(obs_dim=3, act_dim=1, log_std=-0.5)
    >>> policy.n_params                     # W0 (3, 1), b0 (1,), log_std (1,)
    5
    >>> theta = policy.init(np.random.default_rng(0))
    >>> policy.unpack(theta)["log_std"]
    array([-0.5])
    >>> bool(np.isclose(policy.entropy(theta, np.zeros(3))[0],
    ...                 0.5 * np.log(2 * np.pi * np.e) - 0.5))   # ½ log(2πe) + log σ
    True
    """

    def __init__(self, obs_dim: int, act_dim: int, log_std: ArrayLike = 0.0,
                 learn_std: bool = True) -> None:
        super().__init__(obs_dim, act_dim, (), log_std, learn_std)


class MLPGaussian(_GaussianPolicy):
    """π(a | s) = N(a; μ(s), diag exp(2 log_std)), μ a tanh MLP with a linear output,
    log_std a state-independent vector.

    θ = [W0, b0, ..., W_L, b_L, log_std (when learn_std)].

    Parameters
    ----------
    obs_dim : int
        The width of an observation.
    act_dim : int
        The width of an action.
    hidden : int or sequence of int
        The hidden layers' widths (at least one layer).
    log_std : float or array_like, shape (act_dim,)
        The initial (or fixed) log σ.
    learn_std : bool
        Whether log σ is part of θ.

    Raises
    ------
    ValueError
        No hidden layer, a width below 1 or a `log_std` of the wrong shape.
    TypeError
        A `learn_std` that is not a bool.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> policy = pgfast.MLPGaussian(3, 1, hidden=(16,), learn_std=False)
    >>> policy.n_params                     # (3 + 1) 16 + (16 + 1) 1, no log_std
    81
    >>> theta = policy.init(np.random.default_rng(0))
    >>> policy.mode(theta, np.zeros((2, 3)))       # μ(0) = b_L = 0
    array([[0.],
           [0.]])
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64),
                 log_std: ArrayLike = 0.0, learn_std: bool = True) -> None:
        if not _check_hidden(hidden):
            raise ValueError("hidden: expected at least one hidden layer (use LinearGaussian)")
        super().__init__(obs_dim, act_dim, hidden, log_std, learn_std)


class _Value(_Network):
    """A value function V_φ(s), the scalar output of a tanh MLP (linear without hidden layers)."""

    _n_extra = 0

    def __init__(self, obs_dim, hidden):
        super().__init__(obs_dim, hidden, 1)
        self._net = _net.Net(self._sizes)
        # The compiled network, for loops that check their inputs once (a value fit
        # over many minibatches): ``kernel.squared_error_grad(phi, obs, y, grad)``.
        self.kernel = self._net

    def init(self, rng: RngLike = None) -> np.ndarray:
        """Initial φ: orthogonal weights (gain √2 hidden, 1.0 output), zero biases."""
        return self.pack(self._init_layers(rng, 1.0))

    @arrays_in_out("phi", "obs")
    @blas_limited()
    def value(self, phi: ArrayLike, obs: ArrayLike) -> ArrayResult:
        """V_φ(s_i), shape (N,)."""
        phi = self._check_theta(phi, "phi")
        obs = self._check_obs(obs)
        z = np.empty((obs.shape[0], 1))
        if obs.shape[0]:
            self._net.predict(phi, obs, z)
        return check_finite_from(z[:, 0], "V(s)", phi=phi, obs=obs)

    @arrays_in_out("phi", "obs", "targets")
    @blas_limited()
    def loss_and_grad(self, phi: ArrayLike, obs: ArrayLike,
                      targets: ArrayLike) -> tuple[float, ArrayResult]:
        """The squared error L(φ) = (1/N) Σ_i ½ (V_φ(s_i) − y_i)² and ∇_φ L, shape (P,)."""
        phi = self._check_theta(phi, "phi")
        obs = self._check_obs(obs)
        if obs.shape[0] == 0:
            raise ValueError("obs: expected at least one observation, got 0")
        targets = self._check_rows(targets, "targets", obs.shape[0])
        grad = np.empty(self.n_params)
        loss = self._net.squared_error_grad(phi, obs, targets, grad)
        check_finite_from(grad, "the value loss gradient", phi=phi, obs=obs, targets=targets)
        return check_finite_from(loss, "the value loss", phi=phi, obs=obs, targets=targets), grad



class LinearValue(_Value):
    """V_φ(s) = s @ W0 + b0; φ = [W0 (obs_dim, 1), b0 (1,)].

    Parameters
    ----------
    obs_dim : int
        The width of an observation.

    Raises
    ------
    ValueError
        `obs_dim` below 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> value = pgfast.LinearValue(2)
    >>> phi = value.pack({"W0": np.array([[1.0], [2.0]]), "b0": np.array([0.5])})
    >>> value.value(phi, np.array([[1.0, 1.0], [0.0, -1.0]]))
    array([ 3.5, -1.5])
    """

    def __init__(self, obs_dim: int) -> None:
        super().__init__(obs_dim, ())

    def _config_args(self):
        return {"obs_dim": self.obs_dim}


class MLPValue(_Value):
    """V_φ(s) from a tanh MLP with a linear scalar output; φ = [W0, b0, ..., W_L, b_L].

    Parameters
    ----------
    obs_dim : int
        The width of an observation.
    hidden : int or sequence of int
        The hidden layers' widths (at least one layer).

    Raises
    ------
    ValueError
        No hidden layer, or a width below 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> value = pgfast.MLPValue(3, hidden=(8,))
    >>> phi = value.init(np.random.default_rng(0))
    >>> loss, grad = value.loss_and_grad(phi, np.ones((4, 3)), np.zeros(4))
    >>> grad.shape == phi.shape == (value.n_params,), loss >= 0
    (True, True)
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64)) -> None:
        if not _check_hidden(hidden):
            raise ValueError("hidden: expected at least one hidden layer (use LinearValue)")
        super().__init__(obs_dim, hidden)

    def _config_args(self):
        return {"obs_dim": self.obs_dim, "hidden": list(self.hidden)}


_CLASSES = {c.__name__: c for c in (LinearSoftmax, LinearGaussian, MLPSoftmax, MLPGaussian,
                                    LinearValue, MLPValue)}


def from_config(config: dict) -> _Network:
    """Rebuild a policy or value function from its ``config()`` dict.

    Parameters
    ----------
    config : dict
        What ``obj.config()`` returned (JSON-serialisable: stored in checkpoints
        and in ``policy.npz``).

    Returns
    -------
    LinearSoftmax, MLPSoftmax, LinearGaussian, MLPGaussian, LinearValue or MLPValue
        An object equal in architecture to the one that wrote `config`.

    Raises
    ------
    TypeError
        `config` is not a dict with a ``"class"`` key, or ``"hidden"`` is not a list.
    ValueError
        An unknown class, or keys its constructor does not take (or lacks).

    Examples
    --------
    >>> import pgfast
    >>> policy = pgfast.MLPGaussian(3, 1, hidden=(16,), log_std=-1.0)
    >>> policy.config()   # doctest: +NORMALIZE_WHITESPACE
    {'class': 'MLPGaussian', 'obs_dim': 3, 'act_dim': 1, 'hidden': [16], 'log_std': -1.0,
     'learn_std': True}
    >>> pgfast.from_config(policy.config())
    MLPGaussian(obs_dim=3, act_dim=1, hidden=[16], log_std=-1.0, learn_std=True)
    """
    if not isinstance(config, dict) or "class" not in config:
        raise TypeError("config: expected a dict with a 'class' key (from .config())")
    args = dict(config)
    name = args.pop("class")
    if name not in _CLASSES:
        raise ValueError(f"config: expected 'class' in {sorted(_CLASSES)}, got {name!r}")
    cls = _CLASSES[name]
    params = inspect.signature(cls).parameters
    unknown = sorted(set(args) - set(params))
    missing = sorted(k for k, p in params.items()
                     if p.default is inspect.Parameter.empty and k not in args)
    if unknown or missing:
        raise ValueError(f"config: {name} takes {sorted(params)}; unknown {unknown}, "
                         f"missing {missing}")
    if "hidden" in args:
        if not isinstance(args["hidden"], (list, tuple)):
            raise TypeError(f"config['hidden']: expected a list of layer widths, "
                            f"got {type(args['hidden']).__name__}")
        args["hidden"] = tuple(args["hidden"])
    return cls(**args)


def policy_for(observation_space, action_space, hidden: Sequence[int] | None = None,
               **kwargs) -> _Policy:
    """The policy for Gymnasium spaces: Discrete → softmax, Box → Gaussian.

    Parameters
    ----------
    observation_space : gymnasium.spaces.Box
        Flat observations (its flattened size is obs_dim).
    action_space : gymnasium.spaces.Discrete or gymnasium.spaces.Box
        The actions: a softmax over Discrete ones, a Gaussian over a Box.
    hidden : sequence of int, optional
        Hidden widths of an MLP policy; None for a linear policy.
    **kwargs
        Passed to the Gaussian constructors (log_std, learn_std).

    Returns
    -------
    LinearSoftmax, MLPSoftmax, LinearGaussian or MLPGaussian
        The policy for those spaces.

    Raises
    ------
    TypeError
        Another kind of space, or Gaussian options for a Discrete action space.

    Examples
    --------
    >>> import gymnasium
    >>> import pgfast
    >>> env = gymnasium.make("pgfast/Pendulum-v1")
    >>> pgfast.policy_for(env.observation_space, env.action_space, hidden=(32,), log_std=-0.5)
    MLPGaussian(obs_dim=3, act_dim=1, hidden=[32], log_std=-0.5, learn_std=True)
    >>> pgfast.policy_for(gymnasium.spaces.Box(-1, 1, (4,)), gymnasium.spaces.Discrete(2))
    LinearSoftmax(obs_dim=4, n_actions=2)
    """
    from gymnasium import spaces

    if not isinstance(observation_space, spaces.Box):
        raise TypeError(f"observation_space: expected a gymnasium Box, got "
                        f"{type(observation_space).__name__}")
    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, spaces.Discrete):
        if kwargs:
            raise TypeError(f"policy_for: a Discrete action space takes no {sorted(kwargs)}")
        n = int(action_space.n)
        return LinearSoftmax(obs_dim, n) if hidden is None else MLPSoftmax(obs_dim, n, hidden)
    if isinstance(action_space, spaces.Box):
        act_dim = int(np.prod(action_space.shape))
        if hidden is None:
            return LinearGaussian(obs_dim, act_dim, **kwargs)
        return MLPGaussian(obs_dim, act_dim, hidden, **kwargs)
    raise TypeError(f"action_space: expected a gymnasium Discrete or Box, got "
                    f"{type(action_space).__name__}")
