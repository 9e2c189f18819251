"""The policy updates of chapter 12: each ``.update(theta, rng) -> (new_theta, info)``.

Every argument after ``policy`` has a default chosen so that ``Update(problem, policy)``
learns out of the box; the book's exact formulation is one option away where the
defaults depart from it (each docstring says where).

``info`` holds what a user tunes by: ``mean_return`` (of the batch's episodes),
``kl`` (mean KL(π_θ ‖ π_θ′) over the batch's states), ``surrogate_improvement``,
``backtracks``, ``steps`` (environment steps used) and ``entropy``.
"""
from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from ._validation import (MAX_REPEATS, check_bool, check_finite_float,
                          check_finite_result, check_interval, check_positive_float,
                          check_positive_int, check_rng, check_theta, check_unit_interval,
                          renamed_arguments)
from .baselines import ValueBaseline
from .estimators import Estimator
from .optim import Adam, clip_gradient, conjugate_gradient, scale_gradient
from .policies import LinearValue, Policy
from .problem import check_problem

__all__ = [
    "Update", "PolicyGradientUpdate", "RestrictedPolicyUpdate", "NaturalPolicyUpdate",
    "TrustRegionUpdate", "ClampedSurrogateUpdate", "trajectory_scores",
]


LAM = 0.95   # GAE's λ wherever one is not given (the value SB3 and CleanRL use)

# --- shared pieces ------------------------------------------------------------------

class SupportsUpdate(Protocol):
    """What :func:`pgfast.train` drives: every update here, or a user's own object
    with a policy, one step ``update(theta, rng) -> (theta, info)`` (``info`` with
    ``steps``, ``mean_return``, ``kl`` and ``entropy``) and its checkpoint state."""

    policy: Policy
    problem: Any

    def update(self, theta: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, dict[str, Any]]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Update:
    """The base of every policy update: ``update(theta, rng) -> (new_theta, info)``.

    An update owns a problem and a policy and turns θ into the next θ. Subclass it
    and write :meth:`step` to make your own; :meth:`update` checks what goes in (θ,
    the generator) and what comes out (a finite θ, an ``info`` with ``steps`` and
    ``mean_return``), and :func:`pgfast.train` runs, checkpoints and resumes it like
    the five built in. The state a resumed run needs goes through :meth:`state_dict`
    and :meth:`load_state_dict`: an ``adam`` (:class:`pgfast.Adam`) and a ``baseline``
    (:class:`pgfast.ValueBaseline`) attribute are saved by the base; a subclass with
    more state extends both.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.

    Raises
    ------
    TypeError
        `problem` not a Problem, `policy` not a pgfast policy.
    ValueError
        The policy does not fit the problem's spaces.

    Examples
    --------
    Vanilla policy gradient in a few lines (the docs' custom-update guide trains it):

    >>> import numpy as np
    >>> import pgfast
    >>> class VanillaPG(pgfast.Update):
    ...     def __init__(self, problem, policy, m=8, alpha=1e-2):
    ...         super().__init__(problem, policy)
    ...         self.m, self.alpha = m, alpha
    ...     def step(self, theta, rng):
    ...         traj = self.problem.rollouts(self.policy, theta, self.m, rng,
    ...                                      update_statistics=True)
    ...         obs, act = traj.flat()
    ...         weights = traj.discounted_rewards_to_go(self.problem.gamma)[traj.alive]
    ...         grad = self.policy.grad_log_prob(theta, obs, act, weights=weights / self.m)
    ...         return theta + self.alpha * grad, {"steps": traj.n_steps,
    ...                                            "mean_return": traj.returns(1.0).mean()}
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> theta, info = VanillaPG(problem, policy).update(np.zeros(10), 0)
    >>> theta.shape, sorted(info)
    ((10,), ['entropy', 'kl', 'mean_return', 'steps'])
    """

    adam = None
    baseline = None

    def __init__(self, problem, policy):
        check_problem(problem, policy)
        self.problem, self.policy = problem, policy

    def update(self, theta, rng):
        """One update: :meth:`step` with its input and output checked.

        Parameters
        ----------
        theta : array_like, shape (P,)
            The current parameters.
        rng : numpy.random.Generator, int or None
            The update's randomness (an int seeds a new Generator, None a fresh one).

        Returns
        -------
        new_theta : numpy.ndarray, shape (P,)
            The updated parameters.
        info : dict
            The step's diagnostics: ``steps`` (environment steps used),
            ``mean_return`` (the mean undiscounted return of the batch's episodes),
            ``kl`` and ``entropy`` (NaN where the step does not give them) and the
            update's own (see the module's docstring).

        Raises
        ------
        ValueError
            A θ of the wrong shape or not finite, an updated θ that is not finite.
        TypeError
            A step that returns no ``steps`` or ``mean_return``.
        """
        theta = check_theta(theta, self.policy.n_params)
        new, info = self.step(theta, check_rng(rng))
        _check_new_theta(new)
        if not isinstance(info, dict) or "steps" not in info or "mean_return" not in info:
            raise TypeError(f"{type(self).__name__}.step: expected (theta, info) with "
                            f"info['steps'] and info['mean_return']")
        info.setdefault("kl", float("nan"))
        info.setdefault("entropy", float("nan"))
        return new, info

    def step(self, theta, rng):
        """The hook a subclass writes: θ (checked, a copy) to (new θ, info).

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            Finite float64 parameters.
        rng : numpy.random.Generator
            The update's randomness.

        Returns
        -------
        new_theta : numpy.ndarray, shape (P,)
        info : dict
            At least ``steps`` and ``mean_return``.
        """
        raise NotImplementedError(f"{type(self).__name__}: write step(theta, rng)")

    def state_dict(self):
        """The update's state for a checkpoint (copies are the caller's to take).

        Returns
        -------
        dict
            ``adam`` (the optimiser's moments) and ``baseline`` (the value
            function's parameters, its optimiser and return statistics), where the
            update has them.
        """
        state = {}
        if self.adam is not None:
            state["adam"] = self.adam.state_dict()
        if self.baseline is not None:
            state["baseline"] = self.baseline.state_dict()
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` (or a checkpoint's ``state``).
        """
        if self.adam is not None and "adam" in state:
            self.adam.load_state_dict(state["adam"])
        if self.baseline is not None and "baseline" in state:
            self.baseline.load_state_dict(state["baseline"])


class _BatchUpdate(Update):
    """An update built on m rollouts per step: the batch diagnostics and advantages.

    With `batch_steps`, a batch holds at least m whole episodes and enough to reach
    about that many steps at the last batch's mean episode length (rl-baselines3-zoo
    counts its batches in steps): a few short episodes early in a run make a noisy
    step, and many long ones late make few steps.
    """

    def __init__(self, problem, policy, m, batch_steps=None):
        super().__init__(problem, policy)
        self.m = check_positive_int(m, "m")
        self.batch_steps = None if batch_steps is None \
            else check_positive_int(batch_steps, "batch_steps")
        self.mean_length = None   # of the last batch's episodes, for the next batch's size

    def batch_size(self):
        """Trajectories in the next batch.

        Returns
        -------
        int
            m, or with `batch_steps` at least ⌈batch_steps / mean length of the last
            batch's episodes⌉ (m for the first batch).

        Raises
        ------
        ValueError
            That many rollouts of the problem's depth would not fit in memory.
        """
        if self.batch_steps is None or self.mean_length is None:
            return self.m
        size = math.ceil(self.batch_steps / self.mean_length)
        if size <= self.m:
            return self.m
        self.problem.check_batch(size, "batch_steps")   # each slot holds a full depth
        return size

    def state_dict(self):
        """What a checkpoint keeps besides θ.

        Returns
        -------
        dict
            The base's, and ``mean_length`` (which sizes the next batch) when
            counting batches in steps.
        """
        state = super().state_dict()
        if self.mean_length is not None:
            state["mean_length"] = self.mean_length
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` (or a checkpoint).
        """
        super().load_state_dict(state)
        if "mean_length" in state:
            self.mean_length = float(state["mean_length"])

    def step(self, theta, rng):
        """A batch of rollouts at θ (or the estimator's), then the step.

        Parameters
        ----------
        theta : array_like, shape (P,)
            The current parameters.
        rng : numpy.random.Generator, int or None
            The batch's randomness (an int seeds a new Generator, None a fresh one).

        Returns
        -------
        new_theta : numpy.ndarray, shape (P,)
            The updated parameters.
        info : dict
            The batch's diagnostics: ``mean_return``, ``kl``, ``entropy``, ``steps``,
            ``surrogate_improvement``, ``backtracks`` and the update's own (see the
            module's docstring).
        """
        traj = self.problem.rollouts(self.policy, theta, self.batch_size(), rng,
                                     update_statistics=True)
        if self.batch_steps is not None:
            self.mean_length = traj.n_steps / traj.m
        return self._step_on(theta, traj, rng)

    def _step_on(self, theta, traj, rng):
        raise NotImplementedError   # each update's step on its batch

    def _info(self, theta, new_theta, traj, **extra):
        _check_new_theta(new_theta)   # before the KL and entropy at it
        obs = traj.observations[traj.alive]
        info = dict(
            mean_return=float(traj.returns(1.0).mean()),
            kl=float(self.policy.kl(theta, new_theta, obs).mean()),
            entropy=float(self.policy.entropy(theta, obs).mean()),
            steps=int(traj.n_steps),
            surrogate_improvement=float("nan"),
            backtracks=0,
        )
        info.update(extra)
        return info

    def _advantages(self, traj, rng):
        """GAE advantages from the value baseline (refitted after), or the book's
        R(τ, k) = γ^(k−1) r_togo(k) without one; (d, m)."""
        if self.baseline is not None:
            return self.baseline.advantages_then_fit(traj, self.problem.gamma, rng,
                                                     self.problem.num_threads)
        return traj.discounted_rewards_to_go(self.problem.gamma)


def _check_new_theta(new_theta):
    check_finite_result(new_theta, "theta", "the updated θ (a step size too large for "
                        "float64, or θ at its limit)")


def trajectory_scores(policy, theta, traj):
    """∇log p(τ) = Σ_k ∇log π_θ(a_k | s_k) for each trajectory, built one trajectory
    at a time so no (N, P) matrix is formed.

    Parameters
    ----------
    policy : pgfast policy
        The policy that acted.
    theta : array_like, shape (P,)
        Its parameters.
    traj : pgfast.Trajectories
        m trajectories, from ``problem.rollouts(policy, theta, m, rng)``.

    Returns
    -------
    numpy.ndarray, shape (m, P)
        Row i is the score of trajectory i, summed over its live steps.

    Raises
    ------
    ValueError
        A `theta` of the wrong length for `policy`.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast.updates import trajectory_scores
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> rng = np.random.default_rng(0)
    >>> theta = policy.init(rng)
    >>> traj = problem.rollouts(policy, theta, 3, rng)
    >>> scores = trajectory_scores(policy, theta, traj)
    >>> scores.shape
    (3, 10)
    >>> obs, act = traj.observations[traj.alive[:, 0], 0], traj.actions[traj.alive[:, 0], 0]
    >>> bool(np.allclose(scores[0], policy.grad_log_prob(theta, obs, act).sum(axis=0)))
    True
    """
    out = np.empty((traj.m, policy.n_params))
    for i in range(traj.m):
        steps = traj.alive[:, i]
        out[i] = policy.grad_log_prob(theta, traj.observations[steps, i],
                                      traj.actions[steps, i], weights=np.ones(steps.sum()))
    return out


def _value_baseline(policy, advantages, value_fn, lam, **fit):
    """The ValueBaseline of ``advantages="gae"`` (default LinearValue), None for "book".
    A ValueBaseline given as `value_fn` is used as it is: it has its own λ and fit, so
    giving those too is refused rather than ignored. `fit` holds value_epochs,
    value_lr, value_minibatch and scale_rewards (None: ValueBaseline's default)."""
    if advantages not in ("book", "gae"):
        raise ValueError(f"advantages: expected 'book' or 'gae', got {advantages!r}")
    given = {k: v for k, v in {"lam": lam, **fit}.items() if v is not None}
    if advantages == "book" and value_fn is not None:
        given = {"value_fn": value_fn, **given}
    if advantages == "book" or isinstance(value_fn, ValueBaseline):
        if given:
            name = next(iter(given))
            reason = "the ValueBaseline given as value_fn has its own" if advantages == "gae" \
                else 'advantages="book" fits no value function, so it takes no'
            raise ValueError(f"{name}: {reason} {name}; set it there" if advantages == "gae"
                             else f"{name}: {reason} {name}")
        if advantages == "book":
            return None
        baseline = value_fn
    else:
        baseline = ValueBaseline(value_fn if value_fn is not None
                                 else LinearValue(policy.obs_dim), **{"lam": LAM, **given})
    obs_dim = getattr(baseline.value_fn, "obs_dim", None)
    if obs_dim != policy.obs_dim:   # refused now, not at the first update
        raise ValueError(f"value_fn: expects {obs_dim} observation values, the policy "
                         f"{policy.obs_dim}")
    return baseline


# --- the updates ----------------------------------------------------------------------

def _clip_range(grad_clip):
    """PolicyGradientUpdate's `grad_clip`: a pair low < high of finite numbers."""
    if isinstance(grad_clip, (str, bytes)) or not hasattr(grad_clip, "__len__") \
            or len(grad_clip) != 2:
        raise TypeError(f"grad_clip: expected a pair (low, high), got {grad_clip!r}")
    return check_interval(*grad_clip, "grad_clip")


class PolicyGradientUpdate(Update):
    """θ ← θ + α ∇U(θ), with ∇U from any estimator of chapter 11.

    Parameters
    ----------
    estimator : pgfast estimator
        ``RewardToGoGradient(problem, policy)``, ``GAEGradient``, ...; its problem and
        policy are the update's.
    alpha : float
        The step size α (Adam's, with ``optimizer="adam"``).
    max_grad_norm : float, optional
        Scale the gradient to an L2 norm of at most this (was ``max_norm``, as PPO's
        argument of the same job is named).
    grad_clip : (float, float), optional
        Clip the gradient elementwise to [a, b] (was ``clip``, which is PPO's clip
        range).
    optimizer : {"sgd", "adam"}
        Plain steps θ + α g (the book) or Adam steps.
    **renamed
        ``max_norm`` and ``clip`` (deprecated).

    Raises
    ------
    TypeError
        `estimator` is not a pgfast estimator.
    ValueError
        A non-positive `alpha` or `max_norm`, or an unknown `optimizer`.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.PolicyGradientUpdate(pgfast.RewardToGoGradient(problem, policy, m=8),
    ...                                      alpha=1e-2, max_grad_norm=10.0)
    >>> rng = np.random.default_rng(0)
    >>> theta0 = policy.init(rng)
    >>> theta, info = update.update(theta0, rng)
    >>> float(np.linalg.norm(theta - theta0)) <= 1e-2 * 10.0 + 1e-12   # α × max_norm
    True
    """

    def __init__(self, estimator, alpha=1e-2, *, max_grad_norm=None, grad_clip=None,
                 optimizer="sgd", **renamed):
        old = renamed_arguments(renamed, {"max_norm": "max_grad_norm", "clip": "grad_clip"},
                                "PolicyGradientUpdate")
        max_grad_norm = old.get("max_grad_norm", max_grad_norm)
        grad_clip = old.get("grad_clip", grad_clip)
        if not isinstance(estimator, Estimator):
            raise TypeError(
                f"estimator: expected a pgfast estimator, got {type(estimator).__name__}")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
        self.estimator = estimator
        self.problem, self.policy = estimator.problem, estimator.policy
        self.alpha = check_positive_float(alpha, "alpha")
        self.max_grad_norm = None if max_grad_norm is None \
            else check_positive_float(max_grad_norm, "max_grad_norm")
        self.grad_clip = None if grad_clip is None else _clip_range(grad_clip)
        self.adam = Adam(self.policy.n_params, alpha) if optimizer == "adam" else None

    def step(self, theta, rng):
        """A batch of rollouts at θ (or the estimator's), then the step.

        Parameters
        ----------
        theta : array_like, shape (P,)
            The current parameters.
        rng : numpy.random.Generator, int or None
            The batch's randomness (an int seeds a new Generator, None a fresh one).

        Returns
        -------
        new_theta : numpy.ndarray, shape (P,)
            The updated parameters.
        info : dict
            The estimator's ``info`` with ``steps`` and ``grad_norm`` (the norm of the
            gradient before the step); ``kl`` and ``entropy`` are NaN here.
        """
        grad = self.estimator.gradient(theta, rng)
        if self.max_grad_norm is not None:
            grad = scale_gradient(grad, self.max_grad_norm)
        if self.grad_clip is not None:
            grad = clip_gradient(grad, *self.grad_clip)
        with np.errstate(over="ignore"):   # an overflow is refused below, by name
            new = self.adam.step(theta, grad) if self.adam else theta + self.alpha * grad
        _check_new_theta(new)
        info = dict(self.estimator.info, steps=self.estimator.info.get("n_steps", 0),
                    kl=float("nan"), entropy=float("nan"), grad_norm=float(np.linalg.norm(grad)))
        return new, info



class RestrictedPolicyUpdate(_BatchUpdate):
    """θ ← θ + u √(2ε / uᵀu), u = mean over τ of ∇log p(τ) R(τ): the step that
    maximises the linear model of U under ½ ΔθᵀΔθ ≤ ε.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Trajectories per update.
    epsilon : float
        The bound ε on ½ ΔθᵀΔθ.

    Raises
    ------
    ValueError
        m below 1, a non-positive `epsilon`, or a policy that does not fit the problem.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.RestrictedPolicyUpdate(problem, policy, m=8, epsilon=0.05)
    >>> rng = np.random.default_rng(0)
    >>> theta = policy.init(rng)
    >>> new, info = update.update(theta, rng)
    >>> round(0.5 * float((new - theta) @ (new - theta)), 6)   # on the boundary
    0.05
    """

    def __init__(self, problem, policy, m=64, epsilon=0.05):
        super().__init__(problem, policy, m)
        self.epsilon = check_positive_float(epsilon, "epsilon")

    def _step_on(self, theta, traj, rng):
        u = trajectory_scores(self.policy, theta, traj).T @ traj.returns(self.problem.gamma)
        u /= traj.m
        norm2 = float(u @ u)
        new = theta + u * np.sqrt(2 * self.epsilon / norm2) if norm2 > 0 else theta
        return new, self._info(theta, new, traj)


class NaturalPolicyUpdate(_BatchUpdate):
    """θ ← θ + u √(2ε / ∇fᵀu) with F u = ∇f (the natural gradient).

    Book mode (``advantages="book"``): ∇f = mean over τ of ∇log p(τ) R(τ) and F the
    trajectory Fisher, ``fisher="empirical"`` F = mean over τ of ∇log p(τ) ∇log p(τ)ᵀ
    (the book) or ``fisher="analytic"`` its expectation, the exact Fisher of the
    action distribution summed over a trajectory's steps; ``baseline=True``
    subtracts the batch's mean return from R(τ) (``baseline=False`` is the book's ∇f).

    Default (``advantages="gae"``): ∇f = mean over τ, k of ∇log π(a_k | s_k) A_k with
    GAE(γ, λ) advantages from a value baseline (``value_fn``, default LinearValue),
    and F the Fisher averaged over steps, so a step has a mean per-state KL of about
    ε. Departure from the book, chosen because the trajectory-level estimate is too
    noisy to learn CartPole reliably.

    ``solver="dense"`` solves directly (least squares: the empirical F has rank ≤ m);
    ``solver="cg"`` runs conjugate gradient (``damping``, ``cg_iterations``) on
    Fisher-vector products, for large parameter counts; ``solver="auto"`` picks
    dense up to ``DENSE_MAX_PARAMS`` parameters and CG beyond. ``fisher_subsample=k``
    estimates the analytic per-step Fisher on every k-th step only (OpenAI
    Baselines' TRPO uses 5): the gradient still uses every step, the products cost
    k times less.

    ``value_fn`` is a value function (fitted as :class:`ValueBaseline` does by
    default) or a ValueBaseline, which sets λ and how V is fitted.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Trajectories per update.
    epsilon : float
        The KL step size ε.
    advantages : {"gae", "book"}
        GAE advantages from a value baseline, or the book's trajectory returns.
    value_fn : LinearValue, MLPValue or ValueBaseline, optional
        The value baseline of ``advantages="gae"`` (default ``LinearValue``).
    lam : float, optional
        GAE's λ (default 0.95).
    value_epochs, value_lr, value_minibatch, scale_rewards : optional
        How the value function is fitted (:class:`ValueBaseline`'s arguments, its
        defaults when None). A ValueBaseline given as `value_fn` has its own λ and
        fit: giving these as well is an error, not ignored.
    fisher : {"analytic", "empirical"}
        The Fisher matrix: exact per state, or the mean of outer products of scores.
    solver : {"auto", "dense", "cg"}
        How F u = ∇f is solved.
    damping : float
        Added to F's diagonal (≥ 0).
    cg_iterations : int
        Conjugate-gradient iterations of ``solver="cg"`` (at most 10,000).
    baseline : bool
        Book mode: subtract the batch's mean return from R(τ).
    fisher_subsample : int
        Estimate the analytic Fisher on every k-th step.
    batch_steps : int, optional
        Count batches in steps: at least m whole episodes, and as many as reach about
        this many steps at the last batch's mean episode length.

    Raises
    ------
    ValueError
        An unknown option, a non-positive count or step size, or a negative `damping`.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.NaturalPolicyUpdate(problem, policy, m=8, epsilon=0.01)
    >>> rng = np.random.default_rng(0)
    >>> theta, info = update.update(policy.init(rng), rng)
    >>> update.solver, info["kl"] < 0.05     # about ε per state
    ('dense', True)
    """

    DENSE_MAX_PARAMS = 256

    def __init__(self, problem, policy, m=32, epsilon=0.01, *, advantages="gae",
                 value_fn=None, lam=None, value_epochs=None, value_lr=None,
                 value_minibatch=None, scale_rewards=None, fisher="analytic", solver="auto",
                 damping=1e-3, cg_iterations=15, baseline=True, fisher_subsample=1,
                 batch_steps=None):
        super().__init__(problem, policy, m, batch_steps)
        self.epsilon = check_positive_float(epsilon, "epsilon")
        if fisher not in ("empirical", "analytic"):
            raise ValueError(f"fisher: expected 'empirical' or 'analytic', got {fisher!r}")
        if solver not in ("auto", "dense", "cg"):
            raise ValueError(f"solver: expected 'auto', 'dense' or 'cg', got {solver!r}")
        if solver == "auto":
            solver = "dense" if policy.n_params <= self.DENSE_MAX_PARAMS else "cg"
        self.fisher, self.solver = fisher, solver
        self.damping = check_finite_float(damping, "damping", minimum=0.0)
        self.cg_iterations = check_positive_int(cg_iterations, "cg_iterations",
                                                maximum=MAX_REPEATS)
        self.fisher_subsample = check_positive_int(fisher_subsample, "fisher_subsample")
        self.subtract_mean = check_bool(baseline, "baseline")   # the book mode's batch mean
        self.baseline = _value_baseline(policy, advantages, value_fn, lam,
                                        value_epochs=value_epochs, value_lr=value_lr,
                                        value_minibatch=value_minibatch,
                                        scale_rewards=scale_rewards)

    def direction(self, theta, traj, grad, scores=None, per_step=False):
        """u = (F + damping·I)⁻¹ ∇f for this batch, F summed over each trajectory's
        steps (the book's scale) or, with `per_step`, averaged over steps.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            The batch's parameters.
        traj : pgfast.Trajectories
            The batch.
        grad : numpy.ndarray, shape (P,)
            ∇f.
        scores : numpy.ndarray, shape (m, P), optional
            The trajectory scores, needed by ``fisher="empirical"``.
        per_step : bool
            Average F over steps instead of summing it over each trajectory.

        Returns
        -------
        numpy.ndarray, shape (P,)
            The direction u.
        """
        # The trajectory Fisher is E[Σ_k F(s_k)] = (N/m) × the per-step mean.
        scale = 1.0 if per_step else traj.n_steps / traj.m
        P = theta.size
        if self.fisher == "empirical":
            S = scores * np.sqrt(scale / traj.n_steps)   # SᵀS = scale × (mean over steps)
            if self.solver == "dense":
                return np.linalg.lstsq(S.T @ S + self.damping * np.eye(P), grad, rcond=None)[0]
            return conjugate_gradient(lambda v: S.T @ (S @ v) + self.damping * v, grad,
                                      self.cg_iterations, check_input=False)
        obs = traj.observations[traj.alive][::self.fisher_subsample]
        if self.solver == "dense":
            F = scale * self.policy.fisher(theta, obs) + self.damping * np.eye(P)
            return np.linalg.lstsq(F, grad, rcond=None)[0]
        # One forward pass for all CG steps, on the problem's threads (bit for bit).
        fvp = self.policy.fisher_operator(theta, obs, num_threads=self.problem.num_threads)
        return conjugate_gradient(lambda v: scale * fvp(v) + self.damping * v, grad,
                                  self.cg_iterations, check_input=False)

    def book_gradient(self, theta, traj):
        """The book's gradient ∇f = mean over τ of ∇log p(τ) (R(τ) − baseline).

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            The batch's parameters.
        traj : pgfast.Trajectories
            The batch.

        Returns
        -------
        grad : numpy.ndarray, shape (P,)
            ∇f.
        scores : numpy.ndarray, shape (m, P)
            The trajectory scores ∇log p(τ).
        """
        scores = trajectory_scores(self.policy, theta, traj)
        returns = traj.returns(self.problem.gamma)
        if self.subtract_mean:
            returns = returns - returns.mean()
        return scores.T @ returns / traj.m, scores

    def step_terms(self, traj, rng):
        """The live steps' terms of ∇f = Σ w A ∇log π, w = 1 / (n_τ m) (mean over
        steps, then trajectories); the value baseline is refitted after.

        Parameters
        ----------
        traj : pgfast.Trajectories
            The batch.
        rng : numpy.random.Generator
            For the value baseline's first initialisation and minibatches.

        Returns
        -------
        obs : numpy.ndarray, shape (N, obs_dim)
            The live steps' observations.
        actions : numpy.ndarray
            Their actions.
        weights : numpy.ndarray, shape (N,)
            w of each step.
        advantages : numpy.ndarray, shape (N,)
            A of each step.
        """
        obs, act = traj.flat()
        weights = traj.step_weights()[traj.alive]
        adv = self._advantages(traj, rng)[traj.alive]
        return obs, act, weights, adv

    def per_step_natural_step(self, theta, traj, rng):
        """The natural step for ∇f over steps and the Fisher averaged over steps.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            The batch's parameters.
        traj : pgfast.Trajectories
            The batch.
        rng : numpy.random.Generator
            For the value baseline.

        Returns
        -------
        step : numpy.ndarray, shape (P,)
            Δθ.
        terms : tuple
            What :meth:`step_terms` returned, (obs, actions, weights, advantages).
        """
        terms = obs, act, weights, adv = self.step_terms(traj, rng)
        grad = self.policy.grad_log_prob(theta, obs, act, weights=weights * adv)
        scores = trajectory_scores(self.policy, theta, traj) if self.fisher == "empirical" \
            else None
        return self._scaled(grad, self.direction(theta, traj, grad, scores, True)), terms

    def natural_step(self, theta, traj, rng):
        """The full natural step Δθ = u √(2ε / ∇fᵀu) (zero if ∇fᵀu ≤ 0).

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            The batch's parameters.
        traj : pgfast.Trajectories
            The batch.
        rng : numpy.random.Generator
            For the value baseline.

        Returns
        -------
        numpy.ndarray, shape (P,)
            Δθ.
        """
        if self.baseline is not None:
            return self.per_step_natural_step(theta, traj, rng)[0]
        grad, scores = self.book_gradient(theta, traj)
        return self._scaled(grad, self.direction(theta, traj, grad, scores))

    def _scaled(self, grad, u):
        curvature = float(grad @ u)
        if not curvature > 0:   # no ascent direction in this batch
            return np.zeros_like(u)
        return u * np.sqrt(2 * self.epsilon / curvature)

    def _step_on(self, theta, traj, rng):
        new = theta + self.natural_step(theta, traj, rng)
        return new, self._info(theta, new, traj)



class TrustRegionUpdate(NaturalPolicyUpdate):
    """TRPO: the natural step, then backtracking on the surrogate and the KL.

    f(θ′) = mean over τ, k of [π_θ′(a_k | s_k) / π_θ(a_k | s_k)] A_k and
    g(θ′) = mean over τ, k of KL(π_θ(· | s_k) ‖ π_θ′(· | s_k)) γ^(k−1);
    θ′ ← θ + α(θ′ − θ) (α = ``backtrack_ratio``) while g(θ′) > ε or f(θ′) ≤ f(θ), at most ``max_backtracks``
    times; θ is returned unchanged (``info["accepted"]`` False) when no step passes.
    The natural step is taken on ∇f(θ) with the Fisher averaged over steps (the scale
    of g), so a full step has g ≈ ε.

    A_k is GAE(γ, λ) from a value baseline by default (``advantages="gae"``), or the
    book's R(τ, k) = γ^(k−1) r_togo(k) with ``advantages="book"``.

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Trajectories per update.
    epsilon : float
        The bound ε on g.
    backtrack_ratio : float
        The shrink factor α, in (0, 1).
    max_backtracks : int
        The most shrinks before the update gives up (at most 10,000).
    advantages, value_fn, lam, value_epochs, value_lr, value_minibatch, scale_rewards
        As for :class:`NaturalPolicyUpdate`.
    fisher, solver, damping, cg_iterations, fisher_subsample, batch_steps
        As for :class:`NaturalPolicyUpdate`.

    Raises
    ------
    ValueError
        A `backtrack_ratio` outside (0, 1), or what :class:`NaturalPolicyUpdate` refuses.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.TrustRegionUpdate(problem, policy, m=8, epsilon=0.01)
    >>> rng = np.random.default_rng(0)
    >>> theta, info = update.update(policy.init(rng), rng)
    >>> sorted(k for k in info if k in ("accepted", "backtracks", "surrogate_improvement"))
    ['accepted', 'backtracks', 'surrogate_improvement']
    >>> bool(info["surrogate_improvement"] > 0) == info["accepted"]
    True
    """

    def __init__(self, problem, policy, m=32, epsilon=0.01, backtrack_ratio=0.5, *,
                 max_backtracks=10, advantages="gae", value_fn=None, lam=None,
                 value_epochs=None, value_lr=None, value_minibatch=None, scale_rewards=None,
                 fisher="analytic", solver="auto", damping=1e-3, cg_iterations=15,
                 fisher_subsample=1, batch_steps=None):
        super().__init__(problem, policy, m, epsilon, advantages=advantages, value_fn=value_fn,
                         lam=lam, value_epochs=value_epochs, value_lr=value_lr,
                         value_minibatch=value_minibatch, scale_rewards=scale_rewards,
                         fisher=fisher, solver=solver, damping=damping,
                         cg_iterations=cg_iterations, fisher_subsample=fisher_subsample,
                         batch_steps=batch_steps)
        self.backtrack_ratio = check_unit_interval(backtrack_ratio, "backtrack_ratio")
        if not 0 < self.backtrack_ratio < 1:
            raise ValueError(
                f"backtrack_ratio: expected a shrink factor in (0, 1), got {backtrack_ratio}")
        self.max_backtracks = check_positive_int(max_backtracks, "max_backtracks", minimum=0,
                                                 maximum=MAX_REPEATS)

    def _step_on(self, theta, traj, rng):
        step, (obs, act, weights, adv) = self.per_step_natural_step(theta, traj, rng)
        discount = (self.problem.gamma ** np.arange(traj.rewards.shape[0]))[:, None]
        kl_weights = (traj.step_weights() * discount)[traj.alive]
        old_logp = traj.log_probs[traj.alive]

        def surrogate(th):
            return float(weights @ (np.exp(self.policy.log_prob(th, obs, act) - old_logp) * adv))

        def constraint(th):
            return float(kl_weights @ self.policy.kl(theta, th, obs))

        f0 = surrogate(theta)
        new, backtracks, accepted = theta, 0, False
        if step.any():
            for backtracks in range(self.max_backtracks + 1):
                candidate = theta + step
                if constraint(candidate) <= self.epsilon and surrogate(candidate) > f0:
                    new, accepted = candidate, True
                    break
                step = self.backtrack_ratio * step
        return new, self._info(theta, new, traj, backtracks=backtracks, accepted=accepted,
                               surrogate_improvement=surrogate(new) - f0)


class ClampedSurrogateUpdate(_BatchUpdate):
    """PPO: m trajectories with θ, then k_max gradient steps on the clamped surrogate.

    Per step, w = π_θ′(a | s) / π_θ(a | s); the step's term is 0 when (A > 0 and
    w > 1 + ε) or (A < 0 and w < 1 − ε), else ∇π_θ′(a | s) A / π_θ(a | s) = w A ∇log π_θ′;
    averaged over steps, then trajectories, and ascended with step size α.

    The book's form is ``advantages="book", normalize_advantages=False, optimizer="sgd"``
    (A = R(τ, k), plain steps θ′ += α g). The defaults are modern PPO on the same
    objective: GAE(γ, λ) advantages from a learned value baseline (``value_fn``,
    default LinearValue), normalised to zero mean and unit variance, Adam steps.
    Further options: ``minibatches`` > 1 (shuffled minibatches per epoch),
    ``max_grad_norm``, ``target_kl`` (stop the epochs once the mean KL passes it),
    ``entropy_coef`` c (ascend the surrogate plus c times the mean entropy) and
    ``anneal_steps`` (the step size decays linearly from α to 0 over that many
    environment steps, as rl-baselines3-zoo's ``lin_`` schedules do).

    Parameters
    ----------
    problem : pgfast.Problem
        The environment, γ and horizon.
    policy : pgfast policy
        The policy, acting in the problem's spaces.
    m : int
        Trajectories per update.
    clip : float
        The clip range ε (was ``epsilon``, a deprecated alias: ``epsilon`` names a
        trust region's bound elsewhere).
    alpha : float
        The step size α.
    k_max : int
        Gradient epochs per batch (at most 10,000).
    advantages : {"gae", "book"}
        GAE advantages from a value baseline, or the book's R(τ, k).
    value_fn : LinearValue, MLPValue or ValueBaseline, optional
        The value baseline of ``advantages="gae"`` (default ``LinearValue``).
    lam : float, optional
        GAE's λ (default 0.95).
    value_epochs, value_lr, value_minibatch, scale_rewards : optional
        How the value function is fitted (:class:`ValueBaseline`'s arguments, its
        defaults when None). A ValueBaseline given as `value_fn` has its own λ and
        fit: giving these as well is an error, not ignored.
    normalize_advantages : bool
        Normalise the batch's advantages to zero mean and unit variance (was
        ``normalize``, which names observation normalisation elsewhere).
    minibatches : int
        Shuffled minibatches per epoch.
    optimizer : {"adam", "sgd"}
        Adam steps or plain steps.
    max_grad_norm : float, optional
        Scale each gradient to at most this L2 norm.
    target_kl : float, optional
        Stop the epochs once the mean KL passes this.
    entropy_coef : float
        The entropy bonus c (≥ 0).
    anneal_steps : int, optional
        Environment steps over which α decays linearly to 0.
    batch_steps : int, optional
        Count batches in steps: at least m whole episodes, and as many as reach about
        this many steps at the last batch's mean episode length.
    **renamed
        ``epsilon`` and ``normalize`` (deprecated).

    Raises
    ------
    ValueError
        An unknown option, a non-positive count or step size, or more minibatches
        than a batch can hold.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.ClampedSurrogateUpdate(problem, policy, m=8, clip=0.2, k_max=3)
    >>> rng = np.random.default_rng(0)
    >>> theta, info = update.update(policy.init(rng), rng)
    >>> info["epochs"], info["steps"] == update.steps_done
    (3, True)
    """

    def __init__(self, problem, policy, m=16, clip=0.2, alpha=1e-2, k_max=10, *,
                 advantages="gae", value_fn=None, lam=None, value_epochs=None, value_lr=None,
                 value_minibatch=None, scale_rewards=None, normalize_advantages=True,
                 minibatches=1, optimizer="adam", max_grad_norm=None, target_kl=None,
                 entropy_coef=0.0, anneal_steps=None, batch_steps=None, **renamed):
        old = renamed_arguments(renamed, {"epsilon": "clip",
                                          "normalize": "normalize_advantages"},
                                "ClampedSurrogateUpdate")
        clip = old.get("clip", clip)
        normalize_advantages = old.get("normalize_advantages", normalize_advantages)
        super().__init__(problem, policy, m, batch_steps)
        self.entropy_coef = check_finite_float(entropy_coef, "entropy_coef", minimum=0.0)
        self.clip = check_positive_float(clip, "clip")
        self.alpha = check_positive_float(alpha, "alpha")
        self.k_max = check_positive_int(k_max, "k_max", maximum=MAX_REPEATS)
        self.baseline = _value_baseline(policy, advantages, value_fn, lam,
                                        value_epochs=value_epochs, value_lr=value_lr,
                                        value_minibatch=value_minibatch,
                                        scale_rewards=scale_rewards)
        self.normalize_advantages = check_bool(normalize_advantages, "normalize_advantages")
        # A batch holds at most m·d steps, and each minibatch needs one.
        self.minibatches = check_positive_int(minibatches, "minibatches",
                                              maximum=self.m * problem.horizon)
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer: expected 'sgd' or 'adam', got {optimizer!r}")
        self.adam = Adam(policy.n_params, alpha) if optimizer == "adam" else None
        self.max_grad_norm = None if max_grad_norm is None \
            else check_positive_float(max_grad_norm, "max_grad_norm")
        self.target_kl = None if target_kl is None else check_positive_float(target_kl, "target_kl")
        self.anneal_steps = None if anneal_steps is None \
            else check_positive_int(anneal_steps, "anneal_steps")
        self.steps_done = 0   # environment steps so far, for the annealed step size

    def step_size(self):
        """The current step size.

        Returns
        -------
        float
            α, or α (1 − steps so far / anneal_steps) (at least 0) when annealing.
        """
        if self.anneal_steps is None:
            return self.alpha
        return self.alpha * max(0.0, 1.0 - self.steps_done / self.anneal_steps)

    def state_dict(self):
        """What a checkpoint keeps besides θ.

        Returns
        -------
        dict of numpy.ndarray or int
            The Adam moments, the value baseline, the observation statistics and
            ``steps_done`` (for the annealed step size).
        """
        return {**super().state_dict(), "steps_done": self.steps_done}

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
        super().load_state_dict(state)
        self.steps_done = int(state.get("steps_done", 0))

    def clamped_gradient(self, theta_new, obs, act, old_logp, adv, weights):
        """The book's clamped-surrogate gradient on a batch of steps.

        Parameters
        ----------
        theta_new : numpy.ndarray, shape (P,)
            θ′, where the gradient is taken.
        obs : numpy.ndarray, shape (N, obs_dim)
            The steps' observations.
        act : numpy.ndarray
            Their actions.
        old_logp : numpy.ndarray, shape (N,)
            log π_θ(a | s) under the behaviour parameters.
        adv : numpy.ndarray, shape (N,)
            The advantages A.
        weights : numpy.ndarray, shape (N,)
            Each step's weight in the mean.

        Returns
        -------
        numpy.ndarray, shape (P,)
            Σ_i weights_i w_i A_i ∇log π_θ′(a_i | s_i) over the unclamped steps.
        """
        w = np.exp(self.policy.log_prob(theta_new, obs, act) - old_logp)
        clamped = ((adv > 0) & (w > 1 + self.clip)) | ((adv < 0) & (w < 1 - self.clip))
        return self.policy.grad_log_prob(theta_new, obs, act,
                                         weights=np.where(clamped, 0.0, w * adv * weights))

    def _step_on(self, theta, traj, rng):
        obs, act = traj.flat()
        old_logp = traj.log_probs[traj.alive]
        adv = self._advantages(traj, rng)[traj.alive]
        if self.minibatches > adv.size:
            raise ValueError(f"minibatches: expected at most one per step of the batch "
                             f"({adv.size} steps), got {self.minibatches}")
        if self.normalize_advantages:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        # Book: mean over steps then trajectories. Minibatches: a plain mean per batch.
        weights = traj.step_weights()[traj.alive] if self.minibatches == 1 \
            else np.full(adv.size, self.minibatches / adv.size)
        alpha = self.step_size()
        if self.adam is not None:
            self.adam.alpha = alpha
        self.steps_done += traj.n_steps
        new, epochs = theta.copy(), 0
        for epochs in range(1, self.k_max + 1):
            order = rng.permutation(adv.size) if self.minibatches > 1 else slice(None)
            for batch in np.array_split(np.arange(adv.size)[order], self.minibatches):
                grad = self.clamped_gradient(new, obs[batch], act[batch], old_logp[batch],
                                             adv[batch], weights[batch])
                if self.entropy_coef > 0:
                    grad = grad + self.entropy_coef * self.policy.entropy_grad(new, obs[batch])
                if self.max_grad_norm is not None:
                    grad = scale_gradient(grad, self.max_grad_norm)
                if self.adam:
                    new = self.adam.step(new, grad, check_input=False)
                else:
                    new = new + alpha * grad
            if self.target_kl is not None and \
                    self.policy.kl(theta, new, obs).mean() > self.target_kl:
                break
        w_new = np.exp(self.policy.log_prob(new, obs, act) - old_logp)
        clipped = np.minimum(w_new * adv,
                             np.clip(w_new, 1 - self.clip, 1 + self.clip) * adv)
        mean = weights / weights.sum()   # minibatch weights sum to the number of batches
        improvement = float(mean @ clipped - mean @ adv)   # L(θ′) − L(θ), where w(θ) = 1
        return new, self._info(theta, new, traj, epochs=epochs,
                               surrogate_improvement=improvement)
