"""Running statistics: the mean and variance of a stream of vectors (observations,
returns), combined batch by batch, and what they do to a policy's first layer."""
from __future__ import annotations

import numpy as np

from ._validation import (as_float_array, check_allocation, check_finite_result,
                          check_positive_int)

__all__ = ["ObservationNormalizer"]


class ObservationNormalizer:
    """Running mean μ and variance σ² of observations; the policy sees (s − μ)/σ,
    σ = √(σ² + 1e-8).

    The statistics are folded into the policy's first layer for the rollout, θ′ =
    θ with W0′ = W0 / σ (row-wise) and b0′ = b0 − (μ/σ) W0, so the fused loop runs on
    raw observations with no pass of its own and its log-probabilities are those
    of θ on normalised ones. :meth:`fold` also gives a θ that acts on raw
    observations without the statistics (for deployment). The update of μ, σ² is
    Chan et al.'s parallel combination of batch moments.

    Parameters
    ----------
    obs_dim : int
        The number of observation values.

    Attributes
    ----------
    mean, var : ndarray, shape (obs_dim,)
        μ and σ² (0 and 1 before any update).
    count : int
        Observations seen.

    Examples
    --------
    >>> import numpy as np, pgfast
    >>> normalizer = pgfast.ObservationNormalizer(2)
    >>> normalizer.update(np.array([[0.0, 10.0], [2.0, 30.0]]))
    >>> normalizer.mean, normalizer.var
    (array([ 1., 20.]), array([  1., 100.]))
    """

    EPS = 1e-8

    def __init__(self, obs_dim):
        obs_dim = check_positive_int(obs_dim, "obs_dim")
        check_allocation(16 * obs_dim, "obs_dim", "the statistics")
        self.mean = np.zeros(obs_dim)
        self.var = np.ones(obs_dim)
        self.count = 0

    def normalize(self, obs):
        """(s − μ)/σ.

        Parameters
        ----------
        obs : ndarray, shape (..., obs_dim)
            Raw observations.

        Returns
        -------
        ndarray, shape of `obs`

        Examples
        --------
        >>> import numpy as np, pgfast
        >>> normalizer = pgfast.ObservationNormalizer(2)
        >>> normalizer.update(np.array([[0.0, 10.0], [2.0, 30.0]]))   # μ = (1, 20), σ = (1, 10)
        >>> normalizer.normalize(np.array([3.0, 0.0])).round(6)
        array([ 2., -2.])
        """
        obs = self._check_obs(obs, ndim=None)
        with np.errstate(over="ignore"):   # refused by name below
            out = (obs - self.mean) / np.sqrt(self.var + self.EPS)
        return check_finite_result(out, "obs", "the normalised observation")

    def _check_obs(self, obs, ndim):
        obs = as_float_array(obs, "obs", ndim=ndim)
        if obs.ndim == 0 or obs.shape[-1] != len(self.mean):
            raise ValueError(f"obs: expected shape (..., {len(self.mean)}), got {obs.shape}")
        return obs

    def fold(self, policy, theta):
        """The parameters that act on raw observations as `theta` does on normalised ones.

        Parameters
        ----------
        policy : a pgfast policy
            Its first layer W0 (obs_dim, width), b0 takes the statistics.
        theta : ndarray, shape (P,) or (B, P)
            One parameter vector or one per row.

        Returns
        -------
        ndarray, shape of `theta`
            A new array; `theta` is not changed.

        Examples
        --------
        >>> import numpy as np, pgfast
        >>> policy = pgfast.LinearSoftmax(1, 2)
        >>> normalizer = pgfast.ObservationNormalizer(1)
        >>> normalizer.update(np.array([[1.0], [3.0]]))     # μ = 2, σ = 1
        >>> normalizer.fold(policy, np.array([1.0, -1.0, 0.0, 0.0])).round(6)
        array([ 1., -1., -2.,  2.])
        """
        if getattr(policy, "obs_dim", None) != len(self.mean) or not hasattr(policy, "hidden"):
            raise ValueError(f"policy: expected a pgfast policy of {len(self.mean)} inputs, "
                             f"got {policy!r}")
        theta = np.array(as_float_array(theta, "theta", ndim=(1, 2)))   # a copy to change
        if theta.shape[-1] != policy.n_params:
            raise ValueError(f"theta: expected shape (..., {policy.n_params}), "
                             f"got {theta.shape}")
        D = policy.obs_dim
        H = (policy.hidden or (policy.n_actions or policy.act_dim,))[0]   # W0 is (D, H)
        inv_std = 1.0 / np.sqrt(self.var + self.EPS)
        rows = theta.reshape(-1, theta.shape[-1])
        W = rows[:, :D * H].reshape(-1, D, H) * inv_std[:, None]
        rows[:, D * H:D * H + H] -= np.einsum("d,bdh->bh", self.mean, W)
        rows[:, :D * H] = W.reshape(-1, D * H)
        return theta

    def update(self, obs):
        """Fold a batch of raw observations into the statistics.

        Parameters
        ----------
        obs : ndarray, shape (N, obs_dim)
            Raw observations (N = 0 changes nothing).

        Returns
        -------
        None

        Examples
        --------
        >>> import numpy as np, pgfast
        >>> normalizer = pgfast.ObservationNormalizer(1)
        >>> normalizer.update(np.array([[1.0], [3.0]]))
        >>> normalizer.count
        2
        """
        obs = self._check_obs(obs, ndim=2)
        n = obs.shape[0]
        if n == 0:
            return
        with np.errstate(over="ignore", invalid="ignore"):   # refused by name below
            mean, var = obs.mean(axis=0), obs.var(axis=0)
            total = self.count + n
            delta = mean - self.mean
            new_var = (self.var * self.count + var * n
                       + delta**2 * self.count * n / total) / total
        check_finite_result(new_var, "obs", "the running variance")
        self.var = new_var
        self.mean = self.mean + delta * n / total
        self.count = total

    def state_dict(self):
        """The statistics, for checkpoints.

        Returns
        -------
        dict
            ``mean``, ``var`` and ``count``.

        Examples
        --------
        >>> import pgfast
        >>> sorted(pgfast.ObservationNormalizer(3).state_dict())
        ['count', 'mean', 'var']
        """
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state):
        """Restore the statistics from :meth:`state_dict`'s entries.

        Parameters
        ----------
        state : dict
            With ``mean``, ``var`` and ``count``.

        Returns
        -------
        None

        Examples
        --------
        >>> import pgfast
        >>> a, b = pgfast.ObservationNormalizer(2), pgfast.ObservationNormalizer(2)
        >>> a.count = 7
        >>> b.load_state_dict(a.state_dict())
        >>> b.count
        7
        """
        self.mean = np.array(state["mean"], dtype=np.float64)
        self.var = np.array(state["var"], dtype=np.float64)
        self.count = int(state["count"])
