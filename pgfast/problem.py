"""What U(θ) is defined over, and the trajectories that estimate it.

This module owns env resolution (an id becomes a native pgfast vector env or a
Gymnasium one, exactly once per :class:`Problem`), the spaces and the rollout depth,
and trajectory assembly: m rollouts of depth d, each slot's first episode, as
:class:`Trajectories`. The estimators, baselines and updates read trajectories;
none of them resolves an env or runs the rollout loop itself.

The utility is U(θ) = E[R(τ)] with R(τ) = Σ_{k=1..d} γ^(k−1) r_k, estimated by the
mean over m rollouts (:func:`utility`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import gymnasium as gym
import numpy as np

from . import _returns
from ._envs import VecEnvKernel
from ._validation import (as_float_array, check_allocation, check_bool,
                          check_finite_result, check_policy_fits, check_positive_int, check_rng,
                          check_rngs, check_theta, check_unit_interval)
from .envs import is_native, make_vec
from .returns import discount_powers, reward_to_go
from .rollout import Rollout, record_bytes, rollout, space_dims

__all__ = ["Problem", "Trajectories", "ObservationNormalizer", "utility", "check_problem"]


@dataclass
class Trajectories:
    """m trajectories of depth d, time-major (d, m): each slot's first episode.

    After an episode ends (termination or the time limit) its slot holds zeros:
    rewards after the end count as 0 and no action is scored there. Made by
    :meth:`Problem.rollouts`; the estimators and updates read it.

    Parameters
    ----------
    observations : ndarray, shape (d, m, obs_dim)
        s_k of every step.
    actions : ndarray, shape (d, m) or (d, m, act_dim)
        a_k (discrete indices, or continuous action vectors).
    rewards : ndarray, shape (d, m)
        r_k, 0 after the episode's end.
    alive : ndarray of bool, shape (d, m)
        The steps that belong to the episode.
    terminated : ndarray of bool, shape (d, m)
        True at an episode's last step when it ended in a terminal state.
    log_probs : ndarray, shape (d, m)
        log π_θ(a_k | s_k), 0 after the end (NaN throughout for a deterministic rollout).
    sources : list
        The (Rollout, slot count) pieces the trajectories were cut from, for
        :attr:`next_observations`.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.9, horizon=50)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> rng = np.random.default_rng(0)
    >>> traj = problem.rollouts(policy, policy.init(rng), 8, rng)
    >>> traj.m, traj.rewards.shape[1], traj.returns(0.9).shape
    (8, 8, (8,))
    >>> bool(traj.n_steps == traj.alive.sum() == traj.rewards.sum())   # CartPole: r = 1
    True
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
        """(d, m, obs_dim): s_{k+1}, the final observation at an episode's end.

        Returns
        -------
        ndarray, shape (d, m, obs_dim)
            Computed once, on first use.
        """
        return _columns([ro.next_observations()[:, :rows] for ro, rows in self.sources])

    @property
    def m(self) -> int:
        """The number of trajectories m.

        Returns
        -------
        int
        """
        return self.rewards.shape[1]

    @property
    def n_steps(self) -> int:
        """The number of live steps, summed over the trajectories.

        Returns
        -------
        int
        """
        return int(self.alive.sum())

    @property
    def last(self) -> np.ndarray:
        """(d, m) bool: each episode's last step."""
        return self.alive & ~np.vstack([self.alive[1:], np.zeros((1, self.m), bool)])

    @property
    def truncated(self) -> np.ndarray:
        """(d, m) bool: the episode's last step, where it did not terminate (a time
        limit or the depth d ended it, so its value bootstraps).

        Returns
        -------
        ndarray of bool, shape (d, m)
        """
        return self.last & ~self.terminated

    def returns(self, gamma) -> np.ndarray:
        """R(τ) = Σ_k γ^(k−1) r_k per trajectory.

        Parameters
        ----------
        gamma : float
            The discount γ.

        Returns
        -------
        ndarray, shape (m,)
        """
        powers = gamma ** np.arange(self.rewards.shape[0])
        return powers @ self.rewards

    def discounted_rewards_to_go(self, gamma) -> np.ndarray:
        """R(τ, k) = γ^(k−1) Σ_{l≥k} γ^(l−k) r_l: the reward-to-go weight of step k.

        Parameters
        ----------
        gamma : float
            The discount γ.

        Returns
        -------
        ndarray, shape (d, m)
            0 after an episode's end.
        """
        no_flags = np.zeros(self.rewards.shape, bool)
        return discount_powers(no_flags, None, gamma) * reward_to_go(self.rewards, gamma)

    def on_steps(self, values: np.ndarray) -> np.ndarray:
        """A value per trajectory on each of its live steps.

        Parameters
        ----------
        values : ndarray, shape (m,)
            values[j] for trajectory j.

        Returns
        -------
        ndarray, shape (d, m)
            ``alive * values``: 0 after an episode's end.
        """
        out = np.empty(self.alive.shape)
        _returns.spread_columns(np.ascontiguousarray(values, dtype=np.float64),
                                np.ascontiguousarray(self.alive).view(np.uint8), out)
        return out

    def step_weights(self) -> np.ndarray:
        """1 / (n_τ m) on each live step, so a weighted sum is the mean over a
        trajectory's steps, then over trajectories.

        Returns
        -------
        ndarray, shape (d, m)
            0 after an episode's end; n_τ is trajectory τ's length.
        """
        lengths = self.alive.sum(axis=0)
        return self.alive / (np.maximum(lengths, 1) * self.m)

    def flat(self):
        """The observations and actions of the live steps, in (d, m) order.

        Returns
        -------
        observations : ndarray, shape (N, obs_dim)
        actions : ndarray, shape (N,) or (N, act_dim)
            N = :attr:`n_steps`.
        """
        return self.observations[self.alive], self.actions[self.alive]

    def rows(self):
        """The observations and actions of all d·m rows, as views without a copy.

        The rows after an episode's end hold zeros, so a weighted score sum gives
        them weight 0.

        Returns
        -------
        observations : ndarray, shape (d·m, obs_dim)
        actions : ndarray, shape (d·m,) or (d·m, act_dim)
        """
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
    workers : int, optional
        Run the rollouts of an env id on this many Ray actors
        (``pgfast.distributed.RayVecEnv``; ``pip install "pgfast[ray]"``): the
        same numbers, bit for bit, as without, for a native id.
    address : str, optional
        The Ray cluster of `workers` ("host:port"); default: a local one.
    normalize_observations : bool
        Keep running statistics of the observations (``obs_normalizer``) and give
        the policy (s − μ)/σ: θ then acts on normalised observations, and the
        trajectories hold normalised ones. Training rollouts update the statistics;
        deterministic (evaluation) rollouts leave them frozen. The statistics are
        part of an update's checkpoint state; ``obs_normalizer.fold(policy, θ)`` gives
        the parameters that act on raw observations (what ``pgfast train`` saves).

    Attributes
    ----------
    gamma : float
        γ.
    horizon : int
        d.
    observation_space, action_space : gymnasium.spaces.Space
        The spaces of one env slot.
    env_id : str or None
        The id, when the env was given by id.

    Raises
    ------
    ValueError
        γ outside [0, 1], no ``horizon`` for an env without a time limit, or a
        ``horizon`` whose single rollout would not fit in memory.
    TypeError
        ``env`` of an unsupported type.
    gymnasium.error.Error
        An id that neither pgfast nor Gymnasium knows.

    Examples
    --------
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> problem
    Problem('CartPole-v1', gamma=0.99, horizon=500)
    >>> problem.observation_space.shape, problem.action_space.n
    ((4,), np.int64(2))
    """

    def __init__(self, env, gamma=1.0, horizon=None, normalize_observations=False, *,
                 workers=None, address=None):
        self.gamma = check_unit_interval(gamma, "gamma")
        self.env = env
        self._envs_by_size = {}   # an id's vector envs, made once per slot count
        if workers is not None and not isinstance(env, str):
            raise ValueError("workers: give an env id, or pass a "
                             "pgfast.distributed.RayVecEnv as env")
        if isinstance(env, str):
            self.env_id = env
            if workers is not None:   # one set of Ray actors, resized per slot count
                from .distributed import RayVecEnv

                self._make = RayVecEnv(env, 1, workers=check_positive_int(workers, "workers"),
                                       address=address).resized
            else:
                self._make = (lambda n: make_vec(env, num_envs=n)) if is_native(env) \
                    else (lambda n: gym.make_vec(env, num_envs=n, vectorization_mode="sync"))
            probe = self.env_for(1)
            self.observation_space = probe.single_observation_space
            self.action_space = probe.single_action_space
            default_horizon = _time_limit(probe)
        elif isinstance(env, VecEnvKernel):   # a bare kernel, e.g. a user's own
            self.env_id = None
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, (env.obs_dim,))
            self.action_space = gym.spaces.Discrete(env.n_actions) if env.n_actions \
                else gym.spaces.Box(-np.inf, np.inf, (env.act_dim,))
            default_horizon = env.max_episode_steps or None
        elif isinstance(env, gym.vector.VectorEnv):
            self.env_id = None
            self.observation_space = env.single_observation_space
            self.action_space = env.single_action_space
            default_horizon = _time_limit(env)
        elif isinstance(env, gym.Env):
            self.env_id = None
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
        self.check_batch(1, "horizon")
        normalize_observations = check_bool(normalize_observations, "normalize_observations")
        self.obs_normalizer = ObservationNormalizer(
            space_dims(self.observation_space, self.action_space)[0]) \
            if normalize_observations else None

    def __repr__(self):
        name = self.env_id or type(self.env).__name__
        return f"Problem({name!r}, gamma={self.gamma}, horizon={self.horizon})"

    def check_policy(self, policy):
        """Raise unless `policy` acts in this env's spaces.

        Parameters
        ----------
        policy : pgfast policy
            The policy to check.

        Raises
        ------
        ValueError
            The policy's observation or action sizes do not fit the env's.
        """
        check_policy_fits(policy, *space_dims(self.observation_space, self.action_space))

    def env_for(self, num_envs):
        """The env that runs `num_envs` rollouts at once.

        Parameters
        ----------
        num_envs : int
            The number of env slots wanted.

        Returns
        -------
        env
            For an id, a vector env of that many slots (native when pgfast implements
            the id), made once and kept; an env object given to the constructor, as
            it is.
        """
        if self.env_id is None:
            return self.env
        if num_envs not in self._envs_by_size:
            self._envs_by_size[num_envs] = self._make(num_envs)
        return self._envs_by_size[num_envs]

    def check_batch(self, m, name="m"):
        """Raise, naming `name`, unless m trajectories of depth d fit in memory.

        Parameters
        ----------
        m : int
            The number of trajectories.
        name : str
            The argument to name in the error.

        Raises
        ------
        ValueError
            Their buffers would need more memory than the machine has available.
        """
        obs_dim, _, act_dim = space_dims(self.observation_space, self.action_space)
        check_allocation(record_bytes(self.horizon, m, obs_dim, act_dim), name,
                         f"{m} rollouts of depth {self.horizon}")

    def rollouts(self, policy, theta, m, rng, deterministic=False) -> Trajectories:
        """m trajectories of depth d under θ, or one per row of a (m, P) theta.

        Parameters
        ----------
        policy : pgfast policy
            The policy π_θ.
        theta : ndarray, shape (P,) or (m, P)
            One θ for all rollouts, or one per rollout.
        m : int
            The number of trajectories.
        rng : numpy.random.Generator, int, None, or a sequence of Generators
            All randomness of the rollouts (an int seeds a new Generator, None draws
            a fresh seed; a sequence gives each env slot its Generator).
        deterministic : bool
            Act by the policy's mode (argmax or mean) instead of sampling, for
            evaluation.

        Returns
        -------
        Trajectories
            Each slot's first episode, cut at depth d.

        Raises
        ------
        ValueError
            m trajectories of depth d would not fit in memory.
        """
        self.check_batch(m)
        rng = check_rngs(rng)   # an int seed: one Generator across the chunks below
        d = self.horizon
        env = self.env_for(m)
        normalizer = self.obs_normalizer
        if normalizer is not None:
            theta = normalizer.fold(policy, theta)
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
        traj = _first_episodes(chunks)
        if normalizer is not None:
            raw = traj.observations[traj.alive]
            traj.__dict__["next_observations"] = normalizer.normalize(traj.next_observations)
            traj.observations = normalizer.normalize(traj.observations)
            if not deterministic:
                normalizer.update(raw)
        return traj


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
            ``obs_mean``, ``obs_var`` and ``obs_count``.

        Examples
        --------
        >>> import pgfast
        >>> sorted(pgfast.ObservationNormalizer(3).state_dict())
        ['obs_count', 'obs_mean', 'obs_var']
        """
        return {"obs_mean": self.mean, "obs_var": self.var, "obs_count": self.count}

    def load_state_dict(self, state):
        """Restore the statistics from :meth:`state_dict`'s entries.

        Parameters
        ----------
        state : dict
            With ``obs_mean``, ``obs_var`` and ``obs_count`` (other keys are ignored).

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
        self.mean = np.array(state["obs_mean"], dtype=np.float64)
        self.var = np.array(state["obs_var"], dtype=np.float64)
        self.count = int(state["obs_count"])


def check_problem(problem, policy):
    """Raise unless `problem` is a :class:`Problem` and `policy` acts in its env.

    Parameters
    ----------
    problem : Problem
        The problem to check.
    policy : pgfast policy
        The policy to check against it.

    Raises
    ------
    TypeError
        ``problem`` is not a Problem or ``policy`` not a pgfast policy.
    ValueError
        The policy does not fit the env's spaces.

    Examples
    --------
    >>> import pgfast
    >>> from pgfast.problem import check_problem
    >>> problem = pgfast.Problem("CartPole-v1")
    >>> check_problem(problem, pgfast.LinearSoftmax(4, 2))
    >>> check_problem(problem, pgfast.LinearSoftmax(3, 2))
    Traceback (most recent call last):
        ...
    ValueError: policy: ...
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a pgfast.Problem, got {type(problem).__name__}")
    if policy is None or not hasattr(policy, "n_params"):
        raise TypeError(f"policy: expected a pgfast policy, got {type(policy).__name__}")
    problem.check_policy(policy)


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
    per_chunk = []
    for ro, rows in chunks:
        done = ro.done[:, :rows]
        per_chunk.append(np.where(done.any(axis=0), done.argmax(axis=0) + 1, done.shape[0]))
    lengths = np.concatenate(per_chunk)
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
    if depth == ro.rewards.shape[0]:
        return ro
    last = ro.observations[depth] if depth < ro.rewards.shape[0] else ro.last_observations
    return Rollout(ro.observations[:depth], ro.actions[:depth], ro.rewards[:depth],
                   ro.terminated[:depth], ro.truncated[:depth],
                   None if ro.log_probs is None else ro.log_probs[:depth],
                   last, ro.final_buffer[:depth])


def utility(problem, policy, theta, m, rng) -> float:
    """The rollout utility U(θ): the mean of R(τ) = Σ_k γ^(k−1) r_k over m rollouts.

    Parameters
    ----------
    problem : Problem
        The env, γ and depth d.
    policy : pgfast policy
        The policy π_θ.
    theta : array_like, shape (P,)
        Its parameters.
    m : int >= 1
        The number of rollouts.
    rng : numpy.random.Generator
        All randomness of the rollouts.

    Returns
    -------
    float
        The estimate of U(θ).

    Raises
    ------
    ValueError
        ``m`` < 1 or more rollouts than fit in memory, a θ of the wrong shape or not
        finite, or a policy that does not fit the env.
    TypeError
        ``problem`` not a Problem, ``rng`` not a Generator.

    Examples
    --------
    Every CartPole step pays 1, so with γ = 1 U(θ) is the mean episode length:

    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=1.0, horizon=20)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> u = pgfast.utility(problem, policy, np.zeros(policy.n_params), 100,
    ...                    np.random.default_rng(0))
    >>> 1.0 <= u <= 20.0
    True
    """
    m = check_positive_int(m, "m")
    rng = check_rng(rng)
    check_problem(problem, policy)
    problem.check_batch(m, "m")
    theta = check_theta(theta, policy.n_params)
    return float(problem.rollouts(policy, theta, m, rng).returns(problem.gamma).mean())
