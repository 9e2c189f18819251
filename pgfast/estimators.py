"""The policy-gradient estimators of chapter 11, over an environment.

Each estimator is built from a :class:`Problem` and a policy, and its
``gradient(theta, rng)`` returns the estimate of ∇U(θ). Book mode is the default:
the formulas of ``book-algorithms.md`` exactly, including the γ^(k−1) weighting.
Diagnostics of the last call are in ``estimator.info``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import gymnasium as gym
import numpy as np

from ._envs import VecEnvKernel
from ._validation import (check_positive_float, check_positive_int, check_rng,
                          check_unit_interval)
from .gradients import likelihood_ratio_gradient, regression_gradient
from .returns import discount_powers, gae, reward_to_go
from .rollout import rollout, slot_generators, slot_states

__all__ = [
    "Problem", "Trajectories", "utility",
    "FiniteDifferenceGradient", "RegressionGradient", "LikelihoodRatioGradient",
    "RewardToGoGradient", "BaselineSubtractionGradient", "GAEGradient",
]


@dataclass
class Trajectories:
    """m trajectories of depth d, time-major (d, m): each slot's first episode.

    After an episode ends (termination or the env's time limit) its slot holds
    zeros: rewards after the end count as 0 and no action is scored there.
    """

    observations: np.ndarray   # (d, m, obs_dim)
    actions: np.ndarray        # (d, m) or (d, m, act_dim)
    rewards: np.ndarray        # (d, m), 0 after the episode's end
    alive: np.ndarray          # (d, m) bool, the steps of the episode
    terminated: np.ndarray     # (d, m) bool, the episode's last step ended in a terminal state
    log_probs: np.ndarray      # (d, m), 0 after the end (NaN throughout if deterministic)
    sources: list = field(repr=False)   # the (Rollout, slots) pieces, for next_observations

    @cached_property
    def next_observations(self) -> np.ndarray:
        """(d, m, obs_dim): s_{k+1}, the final observation at an episode's end."""
        return _columns([ro.next_observations()[:, :rows] for ro, rows in self.sources])

    @property
    def m(self) -> int:
        return self.rewards.shape[1]

    @property
    def n_steps(self) -> int:
        return int(self.alive.sum())

    def returns(self, gamma) -> np.ndarray:
        """R(τ) = Σ_k γ^(k−1) r_k per trajectory, (m,)."""
        powers = gamma ** np.arange(self.rewards.shape[0])
        return powers @ self.rewards

    def flat(self):
        """(observations, actions) of the live steps, in (d, m) order."""
        return self.observations[self.alive], self.actions[self.alive]

    def rows(self):
        """(observations, actions) of all d·m rows, views without a copy: the rows
        after an episode's end hold zeros, so a weighted score sum gives them weight 0."""
        obs = self.observations.reshape(-1, self.observations.shape[-1])
        act = self.actions.reshape(-1, *self.actions.shape[2:])
        return obs, act


class Problem:
    """An environment, a discount and a rollout depth: what U(θ) is defined over.

    Parameters
    ----------
    env : str, pgfast vector env, VecEnvKernel, gymnasium.Env or gymnasium.vector.VectorEnv
        An id pgfast implements natively ("CartPole-v1", "pgfast/SimpleRegulator-v0")
        takes the fused native loop; any other id goes through ``gymnasium.make_vec``.
        An env object (or a bare kernel, such as your own ``VecEnvKernel`` subclass)
        is used as given, its slots reused for more rollouts.
    gamma : float in [0, 1]
        The discount γ of R(τ) = Σ_k γ^(k−1) r_k.
    horizon : int, optional
        The rollout depth d; episodes also end at termination. Defaults to the
        env's time limit.
    """

    def __init__(self, env, gamma=1.0, horizon=None):
        from . import envs as native

        self.gamma = check_unit_interval(gamma, "gamma")
        self.env = env
        self._vec_cache = {}
        if isinstance(env, str):
            self.env_id = env
            self.native = native.is_native(env)
            probe = native.make_vec(env, num_envs=1) if self.native \
                else gym.make_vec(env, num_envs=1, vectorization_mode="sync")
            self.observation_space = probe.single_observation_space
            self.action_space = probe.single_action_space
            default_horizon = _time_limit(probe)
            probe.close()
        elif isinstance(env, VecEnvKernel):   # a bare kernel, e.g. a user's own
            self.env_id, self.native = None, True
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (env.obs_dim,))
            self.action_space = gym.spaces.Discrete(env.n_actions) if env.n_actions \
                else gym.spaces.Box(-np.inf, np.inf, (env.act_dim,))
            default_horizon = env.max_episode_steps or None
        elif isinstance(env, gym.vector.VectorEnv):
            self.env_id, self.native = None, hasattr(env, "kernel")
            self.observation_space = env.single_observation_space
            self.action_space = env.single_action_space
            default_horizon = _time_limit(env)
        elif isinstance(env, gym.Env):
            self.env_id, self.native = None, False
            self.observation_space, self.action_space = env.observation_space, env.action_space
            default_horizon = _time_limit(env)
        else:
            raise TypeError(
                f"env: expected an env id, a gymnasium Env or VectorEnv, got {type(env).__name__}")
        if horizon is None:
            if default_horizon is None:
                raise ValueError("horizon: the env has no time limit; give the rollout depth d")
            horizon = default_horizon
        self.horizon = check_positive_int(horizon, "horizon")

    def __repr__(self):
        name = self.env_id or type(self.env).__name__
        return f"Problem({name!r}, gamma={self.gamma}, horizon={self.horizon})"

    def check_policy(self, policy):
        """Raise unless `policy` acts in this env's spaces."""
        from .rollout import _check_spaces_fit

        _check_spaces_fit(policy, self.action_space, self.observation_space)

    def _env_for(self, num_envs):
        if self.env_id is None:
            return self.env
        if num_envs not in self._vec_cache:
            from . import envs as native

            self._vec_cache[num_envs] = native.make_vec(self.env_id, num_envs=num_envs) \
                if self.native else gym.make_vec(self.env_id, num_envs=num_envs,
                                                 vectorization_mode="sync")
        return self._vec_cache[num_envs]

    def rollouts(self, policy, theta, m, rng, deterministic=False) -> Trajectories:
        """m trajectories of depth d under θ, or one per row of a (m, P) theta
        (``deterministic``: acting by the policy's mode, for evaluation)."""
        d = self.horizon
        env = self._env_for(m)
        slots = env.num_envs if isinstance(env, (gym.vector.VectorEnv, VecEnvKernel)) else 1
        theta = np.asarray(theta, dtype=np.float64)
        chunks = []
        for start in range(0, m, slots):
            rows = min(slots, m - start)
            part = theta if theta.ndim == 1 else theta[start:start + rows]
            if theta.ndim == 2 and rows < slots:   # pad the last chunk, keep `rows` slots
                part = np.vstack([part, np.repeat(part[-1:], slots - rows, axis=0)])
            chunks.append((rollout(env, policy, part, d, rng, time_limit=d,
                                   deterministic=deterministic, first_episode=True), rows))
        return _first_episodes(chunks)


def _time_limit(env):
    spec = getattr(env, "spec", None)
    limit = getattr(spec, "max_episode_steps", None) if spec is not None else None
    kernel = getattr(env, "kernel", None)
    if limit is None and kernel is not None and kernel.max_episode_steps > 0:
        limit = kernel.max_episode_steps
    return limit


def _first_episodes(chunks) -> Trajectories:
    """Each slot's first episode (first-episode rollouts: zeros after its end),
    without the rows after the longest one."""
    lengths = []
    for ro, rows in chunks:
        done = ro.done[:, :rows]
        lengths.append(np.where(done.any(axis=0), done.argmax(axis=0) + 1, done.shape[0]))
    lengths = np.concatenate(lengths)
    depth = int(lengths.max())
    sources = [(_head(ro, depth), rows) for ro, rows in chunks]
    logp = [ro.log_probs if ro.log_probs is not None else np.full(ro.rewards.shape, np.nan)
            for ro, _ in sources]
    return Trajectories(
        observations=_columns([ro.observations[:, :rows] for ro, rows in sources]),
        actions=_columns([ro.actions[:, :rows] for ro, rows in sources]),
        rewards=_columns([ro.rewards[:, :rows] for ro, rows in sources]),
        alive=np.arange(depth)[:, None] < lengths[None, :],
        terminated=_columns([ro.terminated[:, :rows] for ro, rows in sources]),
        log_probs=_columns([lp[:, :rows] for lp, (_, rows) in zip(logp, sources)]),
        sources=sources)


def _columns(parts):
    """Slots side by side: (d, m, ...) from (d, m_i, ...) pieces (no copy for one)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _head(ro, depth):
    """The first `depth` rows of a first-episode rollout (later rows are all zeros)."""
    from .rollout import Rollout

    if depth == ro.rewards.shape[0]:
        return ro
    last = ro.observations[depth] if depth < ro.rewards.shape[0] else ro.last_observations
    return Rollout(ro.observations[:depth], ro.actions[:depth], ro.rewards[:depth],
                   ro.terminated[:depth], ro.truncated[:depth],
                   None if ro.log_probs is None else ro.log_probs[:depth],
                   last, ro.final_buffer[:depth])


def utility(problem, policy, theta, m, rng) -> float:
    """The rollout utility U(θ): the mean of R(τ) = Σ_k γ^(k−1) r_k over m rollouts."""
    m = check_positive_int(m, "m")
    rng = check_rng(rng)
    problem.check_policy(policy)
    return float(problem.rollouts(policy, theta, m, rng).returns(problem.gamma).mean())


class _RolloutUser:
    """A problem, a policy and m rollouts per call, checked: what the estimators
    here and the updates in :mod:`pgfast.updates` share."""

    def __init__(self, problem, policy, m):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem: expected a pgfast.Problem, got {type(problem).__name__}")
        problem.check_policy(policy)
        self.problem, self.policy = problem, policy
        self.m = check_positive_int(m, "m")

    def _check_theta(self, theta, rng):
        """θ as a fresh float64 (P,) array; the generator checked."""
        check_rng(rng)
        theta = np.array(theta, dtype=np.float64)
        if theta.shape != (self.policy.n_params,):
            raise ValueError(f"theta: expected shape ({self.policy.n_params},), got {theta.shape}")
        if not np.isfinite(theta).all():
            raise ValueError("theta: expected finite values, found NaN or infinity")
        return theta


class _Estimator(_RolloutUser):
    """Shared bookkeeping; subclasses implement _gradient."""

    def __init__(self, problem, policy, m):
        super().__init__(problem, policy, m)
        self.info = {}

    def gradient(self, theta, rng) -> np.ndarray:
        """The estimate of ∇U(θ), shape (P,). Diagnostics land in ``self.info``."""
        return self._gradient(self._check_theta(theta, rng), rng)

    def _record(self, trajectories, rollouts, **extra):
        self.info = dict(n_rollouts=rollouts, n_steps=int(trajectories.n_steps),
                         mean_return=float(trajectories.returns(self.problem.gamma).mean()),
                         **extra)


class FiniteDifferenceGradient(_Estimator):
    """∇U ≈ [(U(θ + δ e_i) − U(θ)) / δ]_i, each U a mean over m rollouts.

    Book mode: forward differences with U(θ) re-estimated for every i
    (2·n·m rollouts). Options: ``central=True`` uses (U(θ + δe_i) − U(θ − δe_i)) / 2δ;
    ``common_random_numbers=True`` gives both rollouts of a difference the same
    random streams. All 2·n·m rollouts run in one multi-θ rollout call.
    """

    def __init__(self, problem, policy, m=16, delta=1e-2, *, central=False,
                 common_random_numbers=False):
        super().__init__(problem, policy, m)
        self.delta = check_positive_float(delta, "delta")
        self.central, self.crn = bool(central), bool(common_random_numbers)

    def _gradient(self, theta, rng):
        n, m, step = theta.size, self.m, self.delta
        plus = theta + step * np.eye(n)
        minus = theta - step * np.eye(n) if self.central else np.tile(theta, (n, 1))
        # Rows: for each i, m rollouts at plus[i] then m at minus[i].
        thetas = np.stack([np.repeat(plus, m, axis=0).reshape(n, m, n),
                           np.repeat(minus, m, axis=0).reshape(n, m, n)], axis=1)
        thetas = thetas.reshape(2 * n * m, n)
        streams = _paired_streams(rng, n, m) if self.crn else rng
        traj = self.problem.rollouts(self.policy, thetas, 2 * n * m, streams)
        u = traj.returns(self.problem.gamma).reshape(n, 2, m).mean(axis=2)
        grad = (u[:, 0] - u[:, 1]) / (2 * step if self.central else step)
        self._record(traj, 2 * n * m)
        return grad


def _paired_streams(rng, n, m):
    """2·n·m generators where the two rollouts of each difference share a stream."""
    return slot_generators(np.tile(slot_states(rng, m), (2 * n, 1)))


class RegressionGradient(_Estimator):
    """∇U ≈ pinv(ΔΘ) ΔU with m random perturbations Δθ = δ z/‖z‖, z ~ N(0, I).

    Book mode: each U(θ + Δθ^(i)) and each U(θ) is a single rollout (2m in all),
    run in one multi-θ rollout call. With m < n the system is underdetermined and
    pinv gives the minimum-norm fit: a ``UserWarning`` says so.
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

    def _gradient(self, theta, rng):
        m, n = self.m, theta.size
        z = rng.standard_normal((m, n))
        dtheta = self.delta * z / np.linalg.norm(z, axis=1, keepdims=True)
        thetas = np.vstack([theta + dtheta, np.tile(theta, (m, 1))])
        traj = self.problem.rollouts(self.policy, thetas, 2 * m, rng)
        u = traj.returns(self.problem.gamma)
        grad = regression_gradient(dtheta, u[:m] - u[m:], rcond=self.rcond)
        self._record(traj, 2 * m)
        return grad


class _ScoreEstimator(_Estimator):
    """Likelihood-ratio family: m rollouts at θ, then Σ over steps of weight·∇log π."""

    mode = None

    def _gradient(self, theta, rng):
        traj = self.problem.rollouts(self.policy, theta, self.m, rng)
        grad = self._from_trajectories(theta, traj)
        self._record(traj, self.m)
        return grad

    def _from_trajectories(self, theta, traj):
        weights = _score_weights(traj.rewards, self.problem.gamma, self.mode) * traj.alive
        obs, act = traj.rows()
        return self.policy.grad_log_prob(theta, obs, act, weights=weights.ravel() / traj.m)


def _score_weights(rewards, gamma, mode):
    """Per-step weights w_k with ∇U ≈ mean over τ of Σ_k w_k ∇log π(a_k|s_k).

    trajectory: w_k = R(τ); reward_to_go: w_k = γ^(k−1) r_togo(k)."""
    if mode == "trajectory":
        powers = gamma ** np.arange(rewards.shape[0])
        return np.broadcast_to(powers @ rewards, rewards.shape)
    no_flags = np.zeros(rewards.shape, bool)
    return discount_powers(no_flags, None, gamma) * reward_to_go(rewards, gamma)


class LikelihoodRatioGradient(_ScoreEstimator):
    """∇U ≈ mean over τ of (Σ_k ∇log π_θ(a_k|s_k)) R(τ)."""

    mode = "trajectory"

    def __init__(self, problem, policy, m=64):
        super().__init__(problem, policy, m)


class RewardToGoGradient(_ScoreEstimator):
    """∇U ≈ mean over τ of Σ_k ∇log π_θ(a_k|s_k) γ^(k−1) r_togo(k)."""

    mode = "reward_to_go"

    def __init__(self, problem, policy, m=64):
        super().__init__(problem, policy, m)


class BaselineSubtractionGradient(_ScoreEstimator):
    """Reward-to-go with the book's variance-optimal per-parameter baseline:
    ℓ_k = ∇log π_k γ^(k−1), b_i = mean over τ of Σ_k ℓ_{k,i}² G_k / Σ_k ℓ_{k,i}²,
    ∇U ≈ mean over τ of Σ_k ℓ_k ⊙ (G_k − b)."""

    mode = "baseline"

    def __init__(self, problem, policy, m=64):
        super().__init__(problem, policy, m)

    def _from_trajectories(self, theta, traj):
        d, m = traj.rewards.shape
        obs, act = traj.rows()
        scores = self.policy.grad_log_prob(theta, obs, act).reshape(d, m, -1)
        scores *= traj.alive[..., None]   # no action is scored after an episode's end
        return likelihood_ratio_gradient(scores, traj.rewards, self.problem.gamma,
                                         mode="baseline")


class GAEGradient(_Estimator):
    """∇U ≈ mean over τ of Σ_k ∇log π(a_k|s_k) A_k with GAE(γ, λ) advantages.

    δ_k = r_k + γ(1 − terminated_k) V(s_{k+1}) − V(s_k), A_k = δ_k + γλ A_{k+1}:
    the modern estimator, without the book's γ^(k−1). The value baseline V_φ is
    carried across calls (``self.value_params``) and refitted after each batch to
    its discounted returns (``fit="after"``), or fitted first on the same batch
    (``fit="before"``): exactly by least squares for a ``LinearValue``, by
    ``fit_iterations`` Adam steps of size ``value_lr`` otherwise.
    """

    def __init__(self, problem, policy, value_fn, m=64, lam=0.95, *, value_params=None,
                 fit="after", fit_iterations=50, value_lr=1e-3):
        super().__init__(problem, policy, m)
        self.lam = check_unit_interval(lam, "lam")
        if value_fn.obs_dim != policy.obs_dim:
            raise ValueError(
                f"value_fn: expects {value_fn.obs_dim} observation values, "
                f"the policy {policy.obs_dim}")
        if fit not in ("after", "before"):
            raise ValueError(f"fit: expected 'after' or 'before', got {fit!r}")
        self.value_fn, self.fit = value_fn, fit
        self.fit_iterations = check_positive_int(fit_iterations, "fit_iterations")
        self.value_lr = check_positive_float(value_lr, "value_lr")
        # None until the first batch, which initialises φ from the caller's rng.
        self.value_params = None if value_params is None \
            else np.array(value_params, dtype=np.float64)

    def advantages(self, traj, rng):
        """GAE advantages and value targets (d, m) of a batch, with the current V."""
        if self.value_params is None:
            self.value_params = self.value_fn.init(rng)
        d, m = traj.rewards.shape
        gamma = self.problem.gamma
        values = self.value_fn.value(self.value_params, traj.observations.reshape(d * m, -1))
        next_values = self.value_fn.value(self.value_params,
                                          traj.next_observations.reshape(d * m, -1))
        values, next_values = values.reshape(d, m), next_values.reshape(d, m)
        # The end of each first episode is a boundary; a time-limit end bootstraps.
        last = traj.alive & ~np.vstack([traj.alive[1:], np.zeros((1, m), bool)])
        truncated = last & ~traj.terminated
        adv = gae(traj.rewards, values, next_values, gamma, self.lam,
                  traj.terminated, truncated)
        targets = reward_to_go(traj.rewards, gamma, traj.terminated, truncated,
                               next_values=next_values)
        return adv, targets

    def fit_value(self, traj, targets):
        """Refit V_φ to `targets` on the batch's live steps: exact least squares for
        a LinearValue, else ``fit_iterations`` full-batch Adam steps on ½(V − y)²."""
        from .policies import LinearValue
        from .updates import Adam

        obs, y = traj.observations[traj.alive], targets[traj.alive]
        if isinstance(self.value_fn, LinearValue):
            features = np.hstack([obs, np.ones((len(obs), 1))])   # φ = [W0, b0]
            self.value_params = np.linalg.lstsq(features, y, rcond=None)[0]
            return
        adam = Adam(self.value_fn.n_params, alpha=self.value_lr)
        phi = self.value_params
        for _ in range(self.fit_iterations):
            _, grad = self.value_fn.loss_and_grad(phi, obs, y)
            phi = adam.step(phi, -grad)   # Adam ascends: descend the loss
        self.value_params = phi

    def _gradient(self, theta, rng):
        traj = self.problem.rollouts(self.policy, theta, self.m, rng)
        if self.fit == "before":
            _, targets = self.advantages(traj, rng)
            self.fit_value(traj, targets)
        adv, targets = self.advantages(traj, rng)
        if self.fit == "after":
            self.fit_value(traj, targets)
        obs, act = traj.rows()
        self._record(traj, self.m)
        return self.policy.grad_log_prob(theta, obs, act,
                                         weights=(adv * traj.alive).ravel() / traj.m)
