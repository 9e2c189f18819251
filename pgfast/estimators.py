"""The six policy-gradient estimators, each over a :class:`pgfast.Problem`.

Each estimator is built as ``Estimator(problem, policy, m, ...)`` and its
``gradient(theta, rng)`` returns the estimate of ∇U(θ), U(θ) = E[Σ_k γ^(k−1) r_k].
The default is the book's formulation exactly, including the γ^(k−1) weighting;
each class's docstring gives its formula. Diagnostics of the last call are in
``estimator.info``.
"""
from __future__ import annotations

import warnings

import numpy as np

from ._validation import (check_bool, check_finite_result, check_positive_float,
                          check_positive_int, check_rng, check_theta, renamed_arguments)
from .baselines import ValueBaseline
from .gradients import likelihood_ratio_gradient, regression_gradient
from .policies import LinearValue
from .problem import check_problem
from .rollout import slot_generators, slot_states

__all__ = [
    "Estimator", "FiniteDifferenceGradient", "RegressionGradient", "LikelihoodRatioGradient",
    "RewardToGoGradient", "BaselineSubtractionGradient", "GAEGradient",
]


class Estimator:
    """What every estimator shares: the problem, the policy, m rollouts per call and
    the diagnostics of the last call. Subclass it and write :meth:`estimate` to make
    your own estimator: it plugs into :class:`pgfast.PolicyGradientUpdate` and
    :func:`pgfast.train` like the six built in.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Rollouts per call (each subclass says how it spends them).

    Raises
    ------
    ValueError
        m below 1, or a policy that does not fit the problem's spaces.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast.estimators import Estimator
    >>> class Zero(Estimator):             # the smallest estimator: ∇U ≈ 0
    ...     def estimate(self, theta, rng):
    ...         return np.zeros_like(theta)
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> zero = Zero(problem, pgfast.LinearSoftmax(4, 2), m=1)
    >>> zero.gradient(np.ones(10), np.random.default_rng(0))
    array([0., 0., 0., 0., 0., 0., 0., 0., 0., 0.])
    """

    def __init__(self, problem, policy, m):
        check_problem(problem, policy)
        self.problem, self.policy = problem, policy
        self.m = check_positive_int(m, "m")
        self.info = {}

    def gradient(self, theta, rng) -> np.ndarray:
        """The estimate of ∇U(θ). Diagnostics land in ``self.info``.

        Parameters
        ----------
        theta : array_like, shape (P,)
            The policy's parameters.
        rng : numpy.random.Generator, int or None
            The rollouts' randomness: an int seeds a new Generator, None draws a
            fresh seed (as ``numpy.random.default_rng``).

        Returns
        -------
        numpy.ndarray, shape (P,)
            The estimate of ∇U(θ).
        """
        grad = self.estimate(check_theta(theta, self.policy.n_params), check_rng(rng))
        return check_finite_result(grad, "theta", "the gradient estimate")

    def estimate(self, theta, rng) -> np.ndarray:
        """The hook a subclass writes: its formula for ∇U(θ), given a checked θ and
        Generator (:meth:`gradient` checks what comes in and what goes out). Call
        :meth:`record` with the trajectories it used.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            Finite float64 parameters (a copy).
        rng : numpy.random.Generator
            The rollouts' randomness.

        Returns
        -------
        numpy.ndarray, shape (P,)
            The estimate.
        """
        raise NotImplementedError(f"{type(self).__name__}: write estimate(theta, rng)")

    def record(self, trajectories, rollouts, **extra):
        """Set ``self.info`` from the trajectories an estimate used.

        Parameters
        ----------
        trajectories : pgfast.Trajectories
            The estimate's rollouts.
        rollouts : int
            How many rollouts the estimate ran.
        **extra
            More diagnostics of the estimator's own.

        Returns
        -------
        None
            ``self.info`` holds ``n_rollouts``, ``n_steps``, ``mean_return`` (the mean
            undiscounted return of the batch's episodes, as the updates report it),
            ``utility`` (the γ-discounted mean, the estimate of U(θ)) and `extra`.
        """
        self.info = dict(n_rollouts=rollouts, n_steps=int(trajectories.n_steps),
                         mean_return=float(trajectories.returns(1.0).mean()),
                         utility=float(trajectories.returns(self.problem.gamma).mean()),
                         **extra)

class FiniteDifferenceGradient(Estimator):
    """∇U ≈ [(U(θ + δ e_i) − U(θ)) / δ]_i, each U a mean over m rollouts.

    Book mode: forward differences with U(θ) re-estimated for every i
    (2·n·m rollouts). Options: ``central=True`` uses (U(θ + δe_i) − U(θ − δe_i)) / 2δ;
    ``common_random_numbers=True`` gives both rollouts of a difference the same
    random streams. All 2·n·m rollouts run in one multi-θ rollout call.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Rollouts per estimate of U.
    delta : float
        The step δ.
    central : bool
        Central differences instead of forward ones.
    common_random_numbers : bool
        Give both rollouts of a difference the same random streams.

    Raises
    ------
    ValueError
        m below 1 or a non-positive `delta`.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> estimator = pgfast.FiniteDifferenceGradient(problem, policy, m=4, delta=0.1, central=True)
    >>> rng = np.random.default_rng(0)
    >>> grad = estimator.gradient(policy.init(rng), rng)
    >>> grad.shape, estimator.info["n_rollouts"]
    ((10,), 80)
    """

    def __init__(self, problem, policy, m=16, delta=1e-2, *, central=False,
                 common_random_numbers=False):
        super().__init__(problem, policy, m)
        self.delta = check_positive_float(delta, "delta")
        self.central = check_bool(central, "central")
        self.crn = check_bool(common_random_numbers, "common_random_numbers")

    def estimate(self, theta, rng):
        """The differences of 2·n·m rollouts' returns, in one multi-θ rollout.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            Checked parameters (:meth:`Estimator.gradient` checks them).
        rng : numpy.random.Generator
            The rollouts' randomness.

        Returns
        -------
        numpy.ndarray, shape (P,)
            The estimate of ∇U(θ).
        """
        n, m, step = theta.size, self.m, self.delta
        plus = theta + step * np.eye(n)
        minus = theta - step * np.eye(n) if self.central else np.tile(theta, (n, 1))
        # Rows: for each i, m rollouts at plus[i] then m at minus[i].
        thetas = np.stack([np.repeat(plus, m, axis=0).reshape(n, m, n),
                           np.repeat(minus, m, axis=0).reshape(n, m, n)], axis=1)
        thetas = check_finite_result(thetas.reshape(2 * n * m, n), "theta", "θ ± delta")
        streams = _paired_streams(rng, n, m) if self.crn else rng
        traj = self.problem.rollouts(self.policy, thetas, 2 * n * m, streams,
                                     update_statistics=True)
        u = traj.returns(self.problem.gamma).reshape(n, 2, m).mean(axis=2)
        with np.errstate(over="ignore"):   # refused below, naming delta
            grad = (u[:, 0] - u[:, 1]) / (2 * step if self.central else step)
        self.record(traj, 2 * n * m)
        return check_finite_result(grad, "delta", "the difference quotient")


def _paired_streams(rng, n, m):
    """2·n·m generators where the two rollouts of each difference share a stream."""
    return slot_generators(np.tile(slot_states(rng, m), (2 * n, 1)))


class RegressionGradient(Estimator):
    """∇U ≈ pinv(ΔΘ) ΔU with m random perturbations Δθ = δ z/‖z‖, z ~ N(0, I).

    Book mode: each U(θ + Δθ^(i)) and each U(θ) is a single rollout (2m in all),
    run in one multi-θ rollout call. With m < n the system is underdetermined and
    pinv gives the minimum-norm fit: a ``UserWarning`` says so.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Perturbations.
    delta : float
        Their length δ.
    rcond : float, optional
        The pseudoinverse's cutoff for small singular values.

    Raises
    ------
    ValueError
        m below 1 or a non-positive `delta`.

    Warns
    -----
    UserWarning
        m below the number of parameters (an underdetermined regression).

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> estimator = pgfast.RegressionGradient(problem, policy, m=16, delta=0.1)
    >>> rng = np.random.default_rng(0)
    >>> grad = estimator.gradient(policy.init(rng), rng)
    >>> grad.shape, estimator.info["n_rollouts"]
    ((10,), 32)
    """

    def __init__(self, problem, policy, m=32, delta=1e-2, *, rcond=None):
        super().__init__(problem, policy, m)
        self.delta = check_positive_float(delta, "delta")
        self.rcond = rcond
        if self.m < policy.n_params:
            warnings.warn(
                f"m: {self.m} perturbations for {policy.n_params} parameters leave the "
                "regression underdetermined; the minimum-norm gradient is returned",
                UserWarning, stacklevel=2)

    def estimate(self, theta, rng):
        """The least-squares fit of m random perturbations' utility changes.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            Checked parameters (:meth:`Estimator.gradient` checks them).
        rng : numpy.random.Generator
            The rollouts' randomness.

        Returns
        -------
        numpy.ndarray, shape (P,)
            The estimate of ∇U(θ).
        """
        m, n = self.m, theta.size
        z = rng.standard_normal((m, n))
        dtheta = self.delta * z / np.linalg.norm(z, axis=1, keepdims=True)
        thetas = check_finite_result(np.vstack([theta + dtheta, np.tile(theta, (m, 1))]),
                                     "theta", "θ + Δθ")
        traj = self.problem.rollouts(self.policy, thetas, 2 * m, rng,
                                     update_statistics=True)
        u = traj.returns(self.problem.gamma)
        with np.errstate(over="ignore"):   # ΔU / delta beyond float64: refused by name
            du = u[:m] - u[m:]
            check_finite_result(np.abs(du).max() / self.delta, "delta", "ΔU / delta")
        grad = regression_gradient(dtheta, du, rcond=self.rcond)
        self.record(traj, 2 * m)
        return grad


class _ScoreEstimator(Estimator):
    """Likelihood-ratio family: m rollouts at θ, then Σ over steps of w_k ∇log π(a_k | s_k)."""

    def estimate(self, theta, rng):
        """The score-function estimate over m rollouts at θ.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            Checked parameters (:meth:`Estimator.gradient` checks them).
        rng : numpy.random.Generator
            The rollouts' randomness.

        Returns
        -------
        numpy.ndarray, shape (P,)
            The estimate of ∇U(θ).
        """
        traj = self.problem.rollouts(self.policy, theta, self.m, rng,
                                     update_statistics=True)
        grad = self._from_trajectories(theta, traj)
        self.record(traj, self.m)
        return grad

    def _from_trajectories(self, theta, traj):
        weights = self._weights(traj)   # w_k / m on the live steps, (d, m)
        obs, act = traj.rows()
        return self.policy.grad_log_prob(theta, obs, act, weights=weights.ravel())


class LikelihoodRatioGradient(_ScoreEstimator):
    """∇U ≈ mean over τ of (Σ_k ∇log π_θ(a_k | s_k)) R(τ).

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Rollouts per call.

    Raises
    ------
    ValueError
        m below 1, or a policy that does not fit the problem.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> estimator = pgfast.LikelihoodRatioGradient(problem, policy, m=8)
    >>> rng = np.random.default_rng(0)
    >>> grad = estimator.gradient(policy.init(rng), rng)
    >>> grad.shape, estimator.info["n_rollouts"]
    ((10,), 8)
    """

    def __init__(self, problem, policy, m=64):
        super().__init__(problem, policy, m)

    def _weights(self, traj):   # w_k = R(τ) on every step
        return traj.on_steps(traj.returns(self.problem.gamma) / traj.m)


class RewardToGoGradient(_ScoreEstimator):
    """∇U ≈ mean over τ of Σ_k ∇log π_θ(a_k | s_k) γ^(k−1) r_togo(k).

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Rollouts per call.

    Raises
    ------
    ValueError
        m below 1, or a policy that does not fit the problem.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> estimator = pgfast.RewardToGoGradient(problem, policy, m=8)
    >>> rng = np.random.default_rng(0)
    >>> grad = estimator.gradient(policy.init(rng), rng)
    >>> grad.shape, estimator.info["n_rollouts"]
    ((10,), 8)
    """

    def __init__(self, problem, policy, m=64):
        super().__init__(problem, policy, m)

    def _weights(self, traj):   # w_k = γ^(k−1) r_togo(k)
        weights = traj.discounted_rewards_to_go(self.problem.gamma)
        weights *= traj.alive   # in place: each fresh (d, m) array costs its page faults
        weights /= traj.m
        return weights


class BaselineSubtractionGradient(_ScoreEstimator):
    """Reward-to-go with the book's variance-optimal per-parameter baseline:
    ℓ_k = ∇log π_k γ^(k−1), b_i = mean over τ of Σ_k ℓ_{k,i}² G_k / Σ_k ℓ_{k,i}²,
    ∇U ≈ mean over τ of Σ_k ℓ_k ⊙ (G_k − b).

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Rollouts per call.

    Raises
    ------
    ValueError
        m below 1, or a policy that does not fit the problem.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> estimator = pgfast.BaselineSubtractionGradient(problem, policy, m=8)
    >>> rng = np.random.default_rng(0)
    >>> grad = estimator.gradient(policy.init(rng), rng)
    >>> grad.shape, estimator.info["n_rollouts"]
    ((10,), 8)
    """

    def __init__(self, problem, policy, m=64):
        super().__init__(problem, policy, m)

    def _from_trajectories(self, theta, traj):
        d, m = traj.rewards.shape
        obs, act = traj.rows()
        scores = self.policy.grad_log_prob(theta, obs, act).reshape(d, m, -1)
        scores *= traj.alive[..., None]   # no action is scored after an episode's end
        return likelihood_ratio_gradient(scores, traj.rewards, self.problem.gamma,
                                         mode="baseline")


class GAEGradient(Estimator):
    """∇U ≈ mean over τ of Σ_k ∇log π(a_k | s_k) A_k with GAE(γ, λ) advantages.

    δ_k = r_k + γ(1 − terminated_k) V(s_{k+1}) − V(s_k), A_k = δ_k + γλ A_{k+1}:
    the modern estimator, without the book's γ^(k−1). The value baseline
    (``self.baseline``, a :class:`pgfast.baselines.ValueBaseline` over ``value_fn``,
    default ``LinearValue``) is carried across calls and refitted after each batch to
    its discounted returns (``fit="after"``), or fitted first on the same batch
    (``fit="before"``): exactly by least squares for a ``LinearValue``, by
    ``value_epochs`` Adam steps of size ``value_lr`` otherwise.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Rollouts per call.
    lam : float
        GAE's λ, in [0, 1].
    value_fn : LinearValue or MLPValue, optional
        The value function (default ``LinearValue(policy.obs_dim)``).
    value_params : array_like, optional
        Its initial parameters φ (default: drawn on the first call).
    fit : {"after", "before"}
        Fit V to the batch after computing its advantages, or before.
    value_epochs : int
        Adam steps per fit of a non-linear value function (was ``fit_iterations``).
    value_lr : float
        Their step size.
    **renamed
        ``fit_iterations`` (deprecated).

    Raises
    ------
    ValueError
        A value function of another observation width, an unknown `fit`, or a
        count, λ or step size out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> estimator = pgfast.GAEGradient(problem, policy, m=8, lam=0.95)
    >>> rng = np.random.default_rng(0)
    >>> grad = estimator.gradient(policy.init(rng), rng)
    >>> grad.shape, estimator.info["n_rollouts"], estimator.baseline.params.shape
    ((10,), 8, (5,))
    """

    def __init__(self, problem, policy, m=64, lam=0.95, *, value_fn=None, value_params=None,
                 fit="after", value_epochs=50, value_lr=1e-3, **renamed):
        value_epochs = renamed_arguments(renamed, {"fit_iterations": "value_epochs"},
                                         "GAEGradient").get("value_epochs", value_epochs)
        super().__init__(problem, policy, m)
        if value_fn is None:
            value_fn = LinearValue(policy.obs_dim)
        if getattr(value_fn, "obs_dim", None) != policy.obs_dim:
            raise ValueError(
                f"value_fn: expects {getattr(value_fn, 'obs_dim', None)} observation values, "
                f"the policy {policy.obs_dim}")
        if fit not in ("after", "before"):
            raise ValueError(f"fit: expected 'after' or 'before', got {fit!r}")
        self.fit = fit
        if value_params is not None:   # named as this constructor names it
            value_params = check_theta(value_params, value_fn.n_params, "value_params")
        self.baseline = ValueBaseline(value_fn, lam, params=value_params,
                                      value_epochs=value_epochs, value_lr=value_lr)

    def estimate(self, theta, rng):
        """The GAE-weighted score-function estimate over m rollouts, then the value fit.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            Checked parameters (:meth:`Estimator.gradient` checks them).
        rng : numpy.random.Generator
            The rollouts' randomness.

        Returns
        -------
        numpy.ndarray, shape (P,)
            The estimate of ∇U(θ).
        """
        traj = self.problem.rollouts(self.policy, theta, self.m, rng,
                                     update_statistics=True)
        gamma = self.problem.gamma
        if self.fit == "before":
            self.baseline.fit(traj, self.baseline.advantages(traj, gamma, rng)[1])
        adv, targets = self.baseline.advantages(traj, gamma, rng)
        if self.fit == "after":
            self.baseline.fit(traj, targets)
        obs, act = traj.rows()
        self.record(traj, self.m)
        return self.policy.grad_log_prob(theta, obs, act,
                                         weights=(adv * traj.alive).ravel() / traj.m)
