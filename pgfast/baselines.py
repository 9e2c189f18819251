"""Value baselines: V_φ(s), the advantages it gives and how it is fitted.

One :class:`ValueBaseline` holds a value function (``LinearValue`` or ``MLPValue``),
its parameters φ (carried from batch to batch) and GAE's λ. The GAE estimator and
the natural, TRPO and PPO updates all use it the same way:

    δ_k = r_k + γ(1 − terminated_k) V(s_{k+1}) − V(s_k),   A_k = δ_k + γλ A_{k+1},

with the end of each trajectory a boundary (a time-limit end bootstraps from
V(s_{k+1})), and value targets the bootstrapped discounted returns. φ is refitted to
those targets: exactly by least squares for a ``LinearValue``, by Adam steps on
½(V − y)² otherwise.
"""
from __future__ import annotations

import numpy as np

from ._validation import check_positive_float, check_positive_int, check_unit_interval
from .optim import Adam
from .policies import LinearValue
from .returns import gae, reward_to_go

__all__ = ["ValueBaseline"]


class ValueBaseline:
    """A value function V_φ with its parameters, fitted batch after batch.

    Parameters
    ----------
    value_fn : LinearValue or MLPValue
    lam : float in [0, 1]
        GAE's λ.
    params : (n_params,) array, optional
        The initial φ; by default drawn with ``value_fn.init(rng)`` on the first batch.
    fit_iterations : int
        Adam steps per refit of a non-linear value function.
    lr : float
        Their step size.
    """

    def __init__(self, value_fn, lam=0.95, *, params=None, fit_iterations=50, lr=1e-3):
        if not hasattr(value_fn, "value"):
            raise TypeError(
                f"value_fn: expected a pgfast value function, got {type(value_fn).__name__}")
        self.value_fn = value_fn
        self.lam = check_unit_interval(lam, "lam")
        self.fit_iterations = check_positive_int(fit_iterations, "fit_iterations")
        self.lr = check_positive_float(lr, "value_lr")
        # None until the first batch, which initialises φ from the caller's rng.
        self.params = None if params is None else np.array(params, dtype=np.float64)

    def advantages(self, traj, gamma, rng):
        """GAE advantages and value targets, both (d, m), with the current V."""
        if self.params is None:
            self.params = self.value_fn.init(rng)
        d, m = traj.rewards.shape
        values = self.value_fn.value(self.params, traj.observations.reshape(d * m, -1))
        next_values = self.value_fn.value(self.params,
                                          traj.next_observations.reshape(d * m, -1))
        values, next_values = values.reshape(d, m), next_values.reshape(d, m)
        truncated = traj.truncated
        adv = gae(traj.rewards, values, next_values, gamma, self.lam, traj.terminated, truncated)
        targets = reward_to_go(traj.rewards, gamma, traj.terminated, truncated,
                               next_values=next_values)
        return adv, targets

    def fit(self, traj, targets):
        """Refit V_φ to `targets` on the batch's live steps."""
        obs, y = traj.observations[traj.alive], targets[traj.alive]
        if isinstance(self.value_fn, LinearValue):
            features = np.hstack([obs, np.ones((len(obs), 1))])   # φ = [W0, b0]
            self.params = np.linalg.lstsq(features, y, rcond=None)[0]
            return
        adam = Adam(self.value_fn.n_params, alpha=self.lr)
        phi = self.params
        for _ in range(self.fit_iterations):
            _, grad = self.value_fn.loss_and_grad(phi, obs, y)
            phi = adam.step(phi, -grad)   # Adam ascends: descend the loss
        self.params = phi

    def advantages_then_fit(self, traj, gamma, rng):
        """The batch's advantages under the current V, then V refitted to its targets."""
        adv, targets = self.advantages(traj, gamma, rng)
        self.fit(traj, targets)
        return adv
