"""Value baselines: V_φ(s), the advantages it gives and how it is fitted.

One :class:`ValueBaseline` holds a value function (``LinearValue`` or ``MLPValue``),
its parameters φ (carried from batch to batch) and GAE's λ. The GAE estimator and
the natural, TRPO and PPO updates all use it the same way:

    δ_k = r_k + γ(1 − terminated_k) V(s_{k+1}) − V(s_k),   A_k = δ_k + γλ A_{k+1},

with the end of each trajectory a boundary (a time-limit end bootstraps from
V(s_{k+1})), and value targets the bootstrapped discounted returns. φ is refitted to
those targets: exactly by least squares for a ``LinearValue``, by Adam steps on
½(V − y)² otherwise, over the whole batch (the plain form) or over shuffled
minibatches (``value_minibatch``), the way practical PPO and TRPO fit their critic.

With ``scale_rewards`` the rewards are divided by σ_G, the running standard
deviation of the discounted return so far, G_k = r_k + γ G_{k−1} (the reward scaling
of practical PPO and TRPO, e.g. Stable-Baselines3's ``VecNormalize``): V then
learns returns of order one whatever the env's reward scale, and the advantages
shrink by the same factor (a positive factor: the gradient's direction is unchanged).
"""
from __future__ import annotations

import numpy as np

from ._threads import one_blas_thread
from ._validation import (MAX_REPEATS, check_bool, check_positive_float, check_positive_int,
                          check_rng, check_theta, check_unit_interval, renamed_arguments)
from .optim import Adam
from .policies import LinearValue
from .statistics import ObservationNormalizer
from .returns import gae, reward_to_go

__all__ = ["ValueBaseline"]


class ValueBaseline:
    """A value function V_φ with its parameters, fitted batch after batch.

    Parameters
    ----------
    value_fn : LinearValue or MLPValue
        The value function V.
    lam : float in [0, 1]
        GAE's λ.
    params : (n_params,) array, optional
        The initial φ; by default drawn with ``value_fn.init(rng)`` on the first batch.
    value_epochs : int
        Passes over the batch per refit of a non-linear value function: one Adam
        step each on the whole batch, or one per minibatch with `value_minibatch`
        (at most 10,000). (Was ``fit_iterations``, a deprecated alias.)
    value_lr : float
        The Adam step size. (Was ``lr``.)
    value_minibatch : int, optional
        Fit on shuffled minibatches of this many steps (the shuffle from the
        caller's generator) with one Adam carried across batches; None fits on the
        whole batch with a fresh Adam per refit. (Was ``minibatch_size``.)
    scale_rewards : bool
        Divide the rewards by σ_G (see above); each call of :meth:`advantages` adds
        its batch's discounted returns G_k to the running statistics first
        (``return_stats``, part of the checkpoint state).
    **renamed
        The old names above (DeprecationWarning).

    Raises
    ------
    TypeError
        `value_fn` is not a pgfast value function.
    ValueError
        λ outside [0, 1], or a non-positive count or step size.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> rng = np.random.default_rng(0)
    >>> traj = problem.rollouts(policy, policy.init(rng), 4, rng)
    >>> baseline = pgfast.ValueBaseline(pgfast.LinearValue(4), lam=0.95)
    >>> adv = baseline.advantages_then_fit(traj, 0.99, rng)   # V = 0 first, then fitted
    >>> adv.shape == traj.rewards.shape, baseline.params.shape
    (True, (5,))
    """

    def __init__(self, value_fn, lam=0.95, *, params=None, value_epochs=50, value_lr=1e-3,
                 value_minibatch=None, scale_rewards=False, **renamed):
        old = renamed_arguments(renamed, {"fit_iterations": "value_epochs", "lr": "value_lr",
                                          "minibatch_size": "value_minibatch"}, "ValueBaseline")
        value_epochs = old.get("value_epochs", value_epochs)
        value_lr = old.get("value_lr", value_lr)
        value_minibatch = old.get("value_minibatch", value_minibatch)
        if not hasattr(value_fn, "value"):
            raise TypeError(
                f"value_fn: expected a pgfast value function, got {type(value_fn).__name__}")
        self.value_fn = value_fn
        self.lam = check_unit_interval(lam, "lam")
        self.value_epochs = check_positive_int(value_epochs, "value_epochs",
                                               maximum=MAX_REPEATS)
        self.value_lr = check_positive_float(value_lr, "value_lr")
        self.value_minibatch = None if value_minibatch is None \
            else check_positive_int(value_minibatch, "value_minibatch")
        self.adam = None   # the minibatch fit's Adam, carried from batch to batch
        scale_rewards = check_bool(scale_rewards, "scale_rewards")
        self.return_stats = ObservationNormalizer(1) if scale_rewards else None
        # None until the first batch, which initialises φ from the caller's rng.
        self.params = None if params is None else check_theta(params, value_fn.n_params,
                                                              "params")

    def advantages(self, traj, gamma, rng):
        """GAE advantages and value targets with the current V.

        Parameters
        ----------
        traj : pgfast.Trajectories
            The batch, d steps deep and m wide.
        gamma : float
            The discount γ.
        rng : numpy.random.Generator
            Draws the initial φ on the first call.

        Returns
        -------
        advantages : numpy.ndarray, shape (d, m)
            A_k, zero after each trajectory's end.
        targets : numpy.ndarray, shape (d, m)
            The bootstrapped discounted returns V is fitted to.
        """
        if self.params is None:
            self.params = self.value_fn.init(rng)
        d, m = traj.rewards.shape
        alive = traj.alive
        # V on the live steps only; s_{k+1} is the next row's observation except at
        # an episode's last step, where V is evaluated on the final observation.
        values = np.zeros((d + 1, m))
        values[:d][alive] = self.value_fn.value(self.params, traj.observations[alive])
        next_values = values[1:].copy()
        last = traj.last
        next_values[last] = self.value_fn.value(self.params, traj.next_observations[last])
        values = values[:d]
        truncated = last & ~traj.terminated
        rewards = traj.rewards if self.return_stats is None else self._scaled(traj, gamma)
        adv = gae(rewards, values, next_values, gamma, self.lam, traj.terminated, truncated)
        targets = reward_to_go(rewards, gamma, traj.terminated, truncated,
                               next_values=next_values)
        return adv, targets

    def _scaled(self, traj, gamma):
        """The rewards over σ_G, after adding the batch's G_k to the statistics."""
        # G_k = r_k + γ G_{k−1} down each trajectory (one per column, from k = 0): the
        # reward-to-go recursion run over the reversed steps.
        so_far = reward_to_go(traj.rewards[::-1], gamma)[::-1]
        self.return_stats.update(so_far[traj.alive][:, None])
        return traj.rewards / np.sqrt(self.return_stats.var[0] + self.return_stats.EPS)

    def fit(self, traj, targets, rng=None, num_threads=1):
        """Refit V_φ to `targets` on the batch's live steps.

        Parameters
        ----------
        traj : pgfast.Trajectories
            The batch.
        targets : numpy.ndarray, shape (d, m)
            The values to fit (from :meth:`advantages`).
        rng : numpy.random.Generator, optional
            Shuffles the minibatches when ``value_minibatch`` is set.
        num_threads : int
            Threads that share each minibatch's rows (OpenMP), in blocks fixed by
            the minibatch's size: φ is the same bit for bit for any count.

        Returns
        -------
        None
            φ is replaced in ``self.params``.

        Raises
        ------
        ValueError
            The fit diverged (non-finite φ): the step size is too large.
        """
        obs, y = traj.observations[traj.alive], targets[traj.alive]
        if isinstance(self.value_fn, LinearValue):
            features = np.hstack([obs, np.ones((len(obs), 1))])   # φ = [W0, b0]
            self.params = np.linalg.lstsq(features, y, rcond=None)[0]
            return
        phi = self.params
        if self.value_minibatch is None:
            adam = Adam(self.value_fn.n_params, alpha=self.value_lr)
            for _ in range(self.value_epochs):
                _, grad = self.value_fn.loss_and_grad(phi, obs, y)
                # Adam ascends: descend the loss.
                phi = adam.step(phi, -grad, check_input=False)
        else:
            rng = check_rng(rng)
            if self.adam is None:
                self.adam = Adam(self.value_fn.n_params, alpha=self.value_lr)
            # Checked once here; the kernel then runs per minibatch without the
            # per-call checks, which cost as much as a 64-row gradient.
            self.value_fn.loss_and_grad(phi, obs[:1], y[:1])
            y = np.ascontiguousarray(y, dtype=np.float64)
            n, size = len(y), self.value_minibatch
            num_threads = check_positive_int(num_threads, "num_threads")
            # Each epoch a shuffle, cut into minibatches of `size` (the last shorter).
            order = np.stack([rng.permutation(n) for _ in range(self.value_epochs)])
            phi, adam = phi.copy(), self.adam
            with one_blas_thread():   # the same φ whatever the BLAS thread count
                adam.t = self.value_fn.kernel.fit_minibatches(
                    phi, np.ascontiguousarray(obs), y, order, size, adam.m, adam.v, adam.t,
                    adam.alpha, adam.beta1, adam.beta2, adam.eps, num_threads)
            if not np.isfinite(phi).all():   # one check per fit, not per minibatch
                raise ValueError("value_lr: the value fit diverged (non-finite φ); "
                                 "lower the value step size")
        self.params = phi

    def advantages_then_fit(self, traj, gamma, rng, num_threads=1):
        """The batch's advantages under the current V, then V refitted to its targets.

        Parameters
        ----------
        traj : pgfast.Trajectories
            The batch.
        gamma : float
            The discount γ.
        rng : numpy.random.Generator
            Draws the initial φ and shuffles minibatches.
        num_threads : int
            Threads of the minibatch fit (:meth:`fit`).

        Returns
        -------
        numpy.ndarray, shape (d, m)
            The advantages, computed before the refit.
        """
        adv, targets = self.advantages(traj, gamma, rng)
        self.fit(traj, targets, rng, num_threads)
        return adv

    def state_dict(self):
        """φ, the minibatch fit's Adam moments and the return statistics, for
        checkpoints.

        Returns
        -------
        dict
            ``params`` (once drawn), ``adam`` (once used) and, with
            ``scale_rewards``, ``returns`` (the statistics of G).
        """
        state = {} if self.params is None else {"params": self.params}
        if self.adam is not None:
            state["adam"] = self.adam.state_dict()
        if self.return_stats is not None:
            state["returns"] = self.return_stats.state_dict()
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` (or a checkpoint).

        Returns
        -------
        None
        """
        if "params" in state:
            self.params = np.array(state["params"])
        if "adam" in state:
            self.adam = Adam(self.value_fn.n_params, alpha=self.value_lr)
            self.adam.load_state_dict(state["adam"])
        if "returns" in state and self.return_stats is not None:
            self.return_stats.load_state_dict(state["returns"])

