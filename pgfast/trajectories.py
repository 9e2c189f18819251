"""Trajectories: m rollouts of depth d, each slot's first episode, time-major, as the
estimators, baselines and updates read them, and how they are cut from the rollout
loop's output (:func:`first_episodes`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from . import _returns
from .returns import discount_powers, reward_to_go
from .rollout import Rollout

__all__ = ["Trajectories", "first_episodes"]


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
        return _powers(float(gamma), self.rewards.shape[0]) @ self.rewards

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


def first_episodes(chunks) -> Trajectories:
    """Each slot's first episode (first-episode rollouts: zeros after its end),
    without the rows after the longest one.

    Parameters
    ----------
    chunks : list of (pgfast.Rollout, int)
        First-episode rollouts (``first_episode=True``) and how many of each one's
        slots to keep.

    Returns
    -------
    Trajectories
        The kept slots side by side.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast.trajectories import first_episodes
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> env = pgfast.make_vec("CartPole-v1", num_envs=3)
    >>> ro = pgfast.rollout(env, policy, np.zeros(10), 500, np.random.default_rng(0),
    ...                     first_episode=True)
    >>> first_episodes([(ro, 2)]).m
    2
    """
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


@lru_cache(maxsize=16)
def _powers(gamma, d):
    """γ^0 … γ^(d−1), read-only: every batch of a run has the same γ and depth."""
    powers = gamma ** np.arange(d)
    powers.flags.writeable = False
    return powers
