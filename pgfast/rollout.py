"""Rollouts: run a policy in an environment and record time-major arrays.

A native pgfast vector env runs the fused Cython loop (``src/_rollout.pyx``):
env step, policy sample and recording for every slot, with no Python per step.
Any other Gymnasium ``Env`` or ``VectorEnv`` runs a Python loop with batched
policy calls, so users' own environments work unchanged.

This module owns episode boundaries for both paths: the time limit (``time_limit``,
else the env's own) ends an episode as *truncated*, termination as *terminated*,
and a slot whose episode ended restarts in place (same-step autoreset: the next
recorded step is the new episode's first). It also owns the per-slot random
streams (:func:`slot_states`), which make results independent of thread counts.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike

from ._envs import VecEnvKernel
from ._threads import one_blas_thread
from ._validation import (RngLike, as_float_array, check_allocation, check_bool,
                          check_is_policy,
                          check_policy_fits, check_positive_int, check_rngs)
from ._arrays import as_numpy
from .policies import Policy
from .returns import episode_stats

__all__ = ["Rollout", "RolloutBackend", "rollout", "space_dims", "record_bytes", "slot_states",
           "slot_generators"]


@dataclass
class Rollout:
    """Time-major record of T steps in B env slots.

    Episodes end after step t where ``terminated[t]`` or ``truncated[t]``; the slot
    then starts a new episode at t + 1 (same-step autoreset).

    :func:`rollout` makes one; the properties below derive the episodes from it.

    Parameters
    ----------
    observations : numpy.ndarray, shape (T, B, obs_dim)
        float64 s_t: the observation the action was taken in.
    actions : numpy.ndarray
        (T, B) int64 for discrete actions, (T, B, act_dim) float64 for continuous.
    rewards : numpy.ndarray, shape (T, B)
        float64 r_t.
    terminated, truncated : numpy.ndarray, shape (T, B)
        bool: the episode reached a terminal state, or its time limit, at step t.
    log_probs : numpy.ndarray, shape (T, B), or None
        float64 log π_θ(a_t | s_t) under the behaviour policy (None for a
        deterministic rollout).
    last_observations : numpy.ndarray, shape (B, obs_dim)
        float64, the observation after the last step (s_T: bootstraps an episode
        still running at the end of the buffer; where the episode ended at the last
        step, use its final observation instead).
    final_buffer : numpy.ndarray, shape (T, B, obs_dim)
        The final observation of the episode that ended at step t, where it did.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> envs = pgfast.make_vec("CartPole-v1", num_envs=4, seed=0)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> rng = np.random.default_rng(0)
    >>> r = pgfast.rollout(envs, policy, policy.init(rng), 100, rng)
    >>> r.observations.shape, r.rewards.shape, r.n_steps
    ((100, 4, 4), (100, 4), 400)
    >>> int(r.done.sum()) == r.episode_returns.size == r.final_observations.shape[0]
    True
    >>> bool(np.isclose(r.episode_returns.sum(), r.episode_lengths.sum()))  # reward 1 a step
    True
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    log_probs: np.ndarray
    last_observations: np.ndarray
    final_buffer: np.ndarray = field(repr=False)  # (T, B, obs_dim), valid where done

    @cached_property
    def _episode_stats(self):
        return episode_stats(self.rewards, self.terminated, self.truncated)

    @property
    def episode_returns(self) -> np.ndarray:
        """The undiscounted return of every episode that ended in the buffer.

        Returns
        -------
        numpy.ndarray, shape (E,)
            Ordered by the step the episode ends at, then by slot (an episode that
            began before the buffer counts its steps in the buffer only).
        """
        return self._episode_stats[0]

    @property
    def episode_lengths(self) -> np.ndarray:
        """The steps in the buffer of every episode that ended in it.

        Returns
        -------
        numpy.ndarray, shape (E,)
            In the order of :attr:`episode_returns`.
        """
        return self._episode_stats[1]

    @property
    def done(self) -> np.ndarray:
        """Where an episode ended.

        Returns
        -------
        numpy.ndarray, shape (T, B)
            ``terminated | truncated``.
        """
        return self.terminated | self.truncated

    @property
    def final_observations(self) -> np.ndarray:
        """The final observation of every episode that ended.

        Returns
        -------
        numpy.ndarray, shape (E, obs_dim)
            In the order of :attr:`episode_returns` (what a truncated episode
            bootstraps from).
        """
        return self.final_buffer[self.done]

    @property
    def n_steps(self) -> int:
        """The steps recorded.

        Returns
        -------
        int
            T × B.
        """
        return self.rewards.size

    def next_observations(self) -> np.ndarray:
        """s_{t+1} of every step, the true final observation at an episode's end.

        Returns
        -------
        numpy.ndarray, shape (T, B, obs_dim)
            V(next_observations) is the ``next_values`` of :func:`pgfast.gae` and
            :func:`pgfast.reward_to_go`.
        """
        nxt = np.empty_like(self.observations)
        nxt[:-1] = self.observations[1:]
        nxt[-1] = self.last_observations
        done = self.done
        nxt[done] = self.final_buffer[done]
        return nxt


_POOLS = threading.local()   # per Python thread: B → B reusable generators


def slot_states(rng, B):
    """B independent PCG64 states drawn from `rng` in one call.

    They depend on `rng`'s state alone (a run resumed from a saved generator state
    draws the same streams) and cost far less than spawning.

    Parameters
    ----------
    rng : numpy.random.Generator
        The caller's generator; it advances by B × 4 draws.
    B : int
        How many states.

    Returns
    -------
    numpy.ndarray, shape (B, 4)
        uint64 words: state high, state low, increment high, increment low.

    Examples
    --------
    >>> import numpy as np
    >>> from pgfast.rollout import slot_states
    >>> a = slot_states(np.random.default_rng(0), 3)
    >>> a.shape, a.dtype
    ((3, 4), dtype('uint64'))
    >>> bool(np.array_equal(a, slot_states(np.random.default_rng(0), 3)))
    True
    """
    return rng.integers(0, 2**64, size=(B, 4), dtype=np.uint64, endpoint=False)


def slot_generators(states):
    """Generators set to `states` (from :func:`slot_states`), one per row.

    They come from a per-thread pool and are reused (reset) by the next call of the
    same size: use them before asking for more.

    Parameters
    ----------
    states : numpy.ndarray, shape (B, 4)
        uint64 PCG64 states, from :func:`slot_states`.

    Returns
    -------
    list of numpy.random.Generator
        B PCG64 generators, generator i set to row i.

    Examples
    --------
    >>> import numpy as np
    >>> from pgfast.rollout import slot_generators, slot_states
    >>> states = slot_states(np.random.default_rng(0), 2)
    >>> first = [g.random() for g in slot_generators(states)]
    >>> again = [g.random() for g in slot_generators(states)]
    >>> first == again, first[0] != first[1]
    (True, True)
    """
    pools = getattr(_POOLS, "pools", None)
    if pools is None:
        pools = _POOLS.pools = {}
    B = len(states)
    if B not in pools:
        pools[B] = [np.random.Generator(np.random.PCG64(0)) for _ in range(B)]
    generators = pools[B]
    for g, (a, b, c, d) in zip(generators, states.tolist()):
        g.bit_generator.state = {"bit_generator": "PCG64",
                                 "state": {"state": (a << 64) | b, "inc": (c << 64) | d | 1},
                                 "has_uint32": 0, "uinteger": 0}
    return generators


def _slot_generators(rng, B):
    if isinstance(rng, np.random.Generator):
        return slot_generators(slot_states(rng, B))
    rngs = list(rng)
    if len(rngs) != B or not all(isinstance(g, np.random.Generator) for g in rngs):
        raise TypeError(f"rng: expected a numpy.random.Generator or a sequence of {B} of them")
    return rngs


def _check_thetas(policy, theta, B):
    thetas = as_float_array(as_numpy(theta, "theta"), "theta", ndim=(1, 2))
    P = policy.n_params
    if thetas.shape[-1] != P:
        raise ValueError(f"theta: expected {P} parameters for this policy, got {thetas.shape[-1]}")
    if thetas.ndim == 2 and thetas.shape[0] != B:
        raise ValueError(
            f"theta: expected one row per env slot, shape ({B}, {P}), got {thetas.shape}")
    return thetas


def record_bytes(T, B, obs_dim, act_dim):
    """Bytes of the arrays a rollout of T steps in B slots records.

    Parameters
    ----------
    T, B : int
        Steps and slots.
    obs_dim, act_dim : int
        The widths of an observation and an action (1 for a discrete action).

    Returns
    -------
    int
        The bytes of the observations and final observations, actions, rewards,
        log-probabilities and the two flags.

    Examples
    --------
    >>> from pgfast.rollout import record_bytes
    >>> record_bytes(500, 16, 4, 1)     # CartPole, 16 slots of 500 steps
    720000
    """
    return T * B * (8 * (2 * obs_dim + act_dim + 2) + 2)


def space_dims(observation_space, action_space):
    """The sizes a policy needs of Gymnasium spaces.

    Parameters
    ----------
    observation_space : gymnasium.spaces.Box
        Its flattened size is obs_dim.
    action_space : gymnasium.spaces.Discrete or gymnasium.spaces.Box
        The actions.

    Returns
    -------
    obs_dim : int
        The flattened observation size.
    n_actions : int
        The number of discrete actions, 0 for a Box.
    act_dim : int
        1 for a Discrete space, the flattened size of a Box.

    Raises
    ------
    TypeError
        An action space that is neither Discrete nor Box.

    Examples
    --------
    >>> from gymnasium import spaces
    >>> from pgfast.rollout import space_dims
    >>> space_dims(spaces.Box(-1, 1, (3,)), spaces.Discrete(2))
    (3, 2, 1)
    >>> space_dims(spaces.Box(-1, 1, (3,)), spaces.Box(-2, 2, (1,)))
    (3, 0, 1)
    """
    obs_dim = int(np.prod(observation_space.shape))
    if isinstance(action_space, gym.spaces.Discrete):
        return obs_dim, int(action_space.n), 1
    if isinstance(action_space, gym.spaces.Box):
        return obs_dim, 0, int(np.prod(action_space.shape))
    raise TypeError(f"env: unsupported action space {action_space}")


class RolloutBackend:
    """The seam for a rollout back-end: an env that runs whole rollouts itself.

    :func:`rollout` runs a native env in its fused loop and a Gymnasium env step by
    step, in this process. An env deriving from this class runs the rollout
    elsewhere (other processes, other machines): :func:`rollout` checks the
    arguments and hands them to :meth:`run`, and :class:`pgfast.Problem`, the
    estimators and the updates take it as they take any env.
    :class:`pgfast.distributed.RayVecEnv` (slots on Ray actors) is one.

    A back-end sets ``num_envs``, ``single_observation_space``,
    ``single_action_space`` and ``max_episode_steps`` (None: no time limit), and
    writes :meth:`run` and :meth:`close`.

    Examples
    --------
    A back-end that runs the rollouts of a native env in this process, as the plainest
    example of the seam:

    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast.rollout import RolloutBackend
    >>> class Local(RolloutBackend):
    ...     def __init__(self, env_id, num_envs):
    ...         self.env = pgfast.make_vec(env_id, num_envs)
    ...         self.num_envs = num_envs
    ...         self.single_observation_space = self.env.single_observation_space
    ...         self.single_action_space = self.env.single_action_space
    ...     def run(self, policy, thetas, n_steps, rng, **options):
    ...         return pgfast.rollout(self.env, policy, thetas, n_steps, rng, **options)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> ro = pgfast.rollout(Local("CartPole-v1", 3), policy, np.zeros(10), 20, 0)
    >>> ro.rewards.shape
    (20, 3)
    """

    num_envs: int
    max_episode_steps: int | None = None

    def run(self, policy, thetas, n_steps, rng, *, time_limit, num_threads, deterministic,
            first_episode):
        """Run the rollout (the arguments as :func:`rollout` checked them).

        Parameters
        ----------
        policy : pgfast policy
            The policy.
        thetas : numpy.ndarray, shape (P,) or (num_envs, P)
            Checked parameters: one θ, or one per slot.
        n_steps : int
            Steps per slot.
        rng : numpy.random.Generator or list of them
            One generator, or one per slot.
        time_limit, num_threads, deterministic, first_episode
            As :func:`rollout` takes them.

        Returns
        -------
        Rollout
            What the local loop returns for the same slots and streams.
        """
        raise NotImplementedError(f"{type(self).__name__}: write run(...)")

    def close(self):
        """Release the back-end's resources (processes, connections).

        Returns
        -------
        None
        """


def rollout(env: gym.Env | gym.vector.VectorEnv | VecEnvKernel | RolloutBackend,
            policy: Policy,
            theta: ArrayLike, n_steps: int,
            rng: RngLike | Sequence[np.random.Generator], *, time_limit: int | None = None,
            num_threads: int = 1, deterministic: bool = False,
            first_episode: bool = False) -> Rollout:
    """Run `policy` with parameters `theta` for `n_steps` steps in every env slot.

    Every slot starts from a fresh reset; episodes that end restart in place.

    Parameters
    ----------
    env : pgfast vector env, VecEnvKernel, gymnasium.Env or gymnasium.vector.VectorEnv
        A native pgfast vector env (``pgfast.make_vec``) or a bare kernel (pgfast's
        or a user's own ``VecEnvKernel`` subclass compiled against ``pgfast._envs``)
        takes the fused Cython loop. A ``pgfast.distributed.RayVecEnv`` runs its
        slots on Ray actors, with the same result.
    policy : pgfast policy
        ``pgfast.LinearSoftmax(...)``, ...; it must fit the env's spaces.
    theta : array_like, shape (P,) or (B, P)
        One parameter vector for all slots, or one per slot (finite differences and
        regression roll out many perturbed θ in one call).
    n_steps : int >= 1
        Steps recorded per slot (T).
    rng : numpy.random.Generator, int, None, or a sequence of B Generators
        Each slot gets its own stream seeded from `rng`, so results do not depend on
        the thread count. An int seeds a new Generator, None draws a fresh seed
        (``numpy.random.default_rng``); a sequence gives each slot its Generator.
        A Gymnasium vector env's slot b draws its first reset's seed and its
        actions from its stream too: it rolls out exactly as the single
        ``gymnasium.Env`` of that slot would with that Generator.
    time_limit : int, optional
        Truncate episodes after this many steps (default: the env's own limit).
    num_threads : int
        OpenMP threads for the native loop.
    deterministic : bool
        Act by the policy's mode (argmax / mean) instead of sampling; the rollout
        then has no log-probabilities (``log_probs`` is None).
    first_episode : bool
        Each slot stops when its first episode ends; its later rows are zeros
        (what the book's m rollouts of depth d need, without simulating past the end).

    Returns
    -------
    Rollout
        The time-major record of T steps in every slot.

    Raises
    ------
    ValueError
        A non-positive count, a `theta` of the wrong shape, a policy that does not
        fit the env, a record too large for memory, log-probabilities or rewards that
        are not finite (parameters too extreme), or a Gymnasium env's observation or
        reward that is not finite or not of its space's size (named ``env:``).
    TypeError
        `rng` is neither a Generator nor B of them, `policy` is not a pgfast policy,
        or a Gymnasium env returned something other than numbers (None, a string) or
        a tuple of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> envs = pgfast.make_vec("CartPole-v1", num_envs=8, seed=0)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> theta = policy.init(np.random.default_rng(0))
    >>> r = pgfast.rollout(envs, policy, theta, 50, np.random.default_rng(1))
    >>> r.actions.shape, r.log_probs.shape
    ((50, 8), (50, 8))
    >>> again = pgfast.rollout(pgfast.make_vec("CartPole-v1", num_envs=8, seed=0), policy,
    ...                        theta, 50, np.random.default_rng(1))
    >>> bool(np.array_equal(r.actions, again.actions))     # same seeds, same rollout
    True
    """
    n_steps = check_positive_int(n_steps, "n_steps")
    deterministic = check_bool(deterministic, "deterministic")
    first_episode = check_bool(first_episode, "first_episode")
    num_threads = check_positive_int(num_threads, "num_threads")
    if time_limit is not None:
        time_limit = check_positive_int(time_limit, "time_limit")
    rng = check_rngs(rng)
    check_is_policy(policy)
    from ._envs import VecEnvKernel

    if isinstance(env, RolloutBackend):   # e.g. pgfast.distributed.RayVecEnv
        return env.run(policy, _check_thetas(policy, theta, env.num_envs), n_steps, rng,
                       time_limit=time_limit, num_threads=num_threads,
                       deterministic=deterministic, first_episode=first_episode)
    if isinstance(env, VecEnvKernel) or isinstance(getattr(env, "kernel", None), VecEnvKernel):
        return _rollout_native(env, policy, theta, n_steps, rng, time_limit, num_threads,
                               deterministic, first_episode)
    return _rollout_python(env, policy, theta, n_steps, rng, time_limit, deterministic,
                           first_episode)


def _rollout_native(env, policy, theta, T, rng, time_limit, num_threads, deterministic,
                    first_episode):
    from . import _rollout

    if getattr(env, "closed", False):
        raise ValueError("env: the environment is closed")
    kernel = getattr(env, "kernel", env)
    B = kernel.num_envs
    check_policy_fits(policy, kernel.obs_dim, kernel.n_actions, kernel.act_dim)
    thetas = _check_thetas(policy, theta, B)
    thetas = thetas.reshape(-1, policy.n_params)
    check_allocation(record_bytes(T, B, kernel.obs_dim, kernel.act_dim), "n_steps",
                     f"a rollout of {T} steps in {B} env slots")
    rngs = _slot_generators(rng, B)
    limit = kernel.max_episode_steps if time_limit is None else time_limit
    obs_dim, act_dim = kernel.obs_dim, kernel.act_dim
    # With first_episode the rows after a slot's end are never written: zeros
    # (calloc'd pages cost nothing until touched).
    alloc = np.zeros if first_episode else np.empty
    observations = alloc((T, B, obs_dim))
    actions = alloc((T, B, act_dim))
    rewards = alloc((T, B))
    terminated = alloc((T, B), np.bool_)
    truncated = alloc((T, B), np.bool_)
    log_probs = alloc((T, B))
    final = np.empty((T, B, obs_dim))
    last = np.empty((B, obs_dim))
    status = np.zeros(B, np.intc)
    steps = np.zeros(B, np.int64)
    pointers = np.array(_rollout.bitgen_pointers(rngs), dtype=np.uintp)
    locks = [g.bit_generator.lock for g in rngs]
    for lock in locks:
        lock.acquire()
    blas = one_blas_thread() if getattr(policy, "hidden", ()) else contextlib.nullcontext()
    try:
        with blas:   # an MLP policy's matrix products: results independent of BLAS threads
            _rollout.rollout(kernel, policy.kernel, thetas, pointers, limit,
                             observations, actions, rewards, terminated.view(np.uint8),
                             truncated.view(np.uint8), log_probs, final, last, status, steps,
                             deterministic, first_episode, num_threads)
    finally:
        for lock in locks:
            lock.release()
    if (status == -2).any():
        raise MemoryError("rollout: could not allocate the per-slot workspace")
    if (status == -1).any():
        raise ValueError(
            "theta: the policy produced an invalid action (NaN or out of range) in slot "
            f"{int(np.argmax(status == -1))}; are the parameters finite and sensible?")
    if not np.isfinite(rewards).all():
        t, b = np.argwhere(~np.isfinite(rewards))[0]
        raise ValueError(f"theta: the reward of slot {b} at step {t} is not finite (NaN or "
                         "infinity): actions too extreme for the env's arithmetic, or an env "
                         "that returned it")
    if not deterministic and not np.isfinite(log_probs).all():
        t, b = np.argwhere(~np.isfinite(log_probs))[0]
        raise ValueError(f"theta: log π of the action of slot {b} at step {t} is not finite "
                         "(NaN or infinity): parameters too extreme for float64 arithmetic")
    if policy.discrete:
        actions = actions[..., 0].astype(np.int64)
    return Rollout(observations, actions, rewards, terminated, truncated,
                   None if deterministic else log_probs, last, final)


def _rollout_python(env, policy, theta, T, rng, time_limit, deterministic, first_episode):
    """Any Gymnasium Env or VectorEnv, stepped from Python with batched policy calls.

    A slot whose episode ended under Gymnasium's NEXT_STEP autoreset spends its next
    step resetting; that step is not a transition and is not recorded, so each slot
    is stepped until it holds T transitions.

    Each slot of a vector env draws from its own stream, as in the native loop: the
    seed of its first reset, then its actions, and nothing in a step that records no
    transition. Slot b is then exactly ``rollout(env_b, policy, θ_b, T, generator_b)``
    with the single Env ``env_b`` (what pgfast.distributed runs in its actors), for
    any number of slots and whatever the other slots do.
    """
    vector = isinstance(env, gym.vector.VectorEnv)
    if not vector and not isinstance(env, gym.Env):
        raise TypeError(f"env: expected a gymnasium Env or VectorEnv, got {type(env).__name__}")
    if not vector and not isinstance(rng, np.random.Generator):
        raise TypeError("rng: expected a numpy.random.Generator for a gymnasium Env")
    obs_space = env.single_observation_space if vector else env.observation_space
    act_space = env.single_action_space if vector else env.action_space
    check_policy_fits(policy, *space_dims(obs_space, act_space))
    B = env.num_envs if vector else 1
    thetas = _check_thetas(policy, theta, B)
    check_allocation(record_bytes(T, B, policy.obs_dim, policy.act_dim), "n_steps",
                     f"a rollout of {T} steps in {B} env slots")
    mode = env.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) \
        if vector else None
    if vector and time_limit is not None and not first_episode:
        # A Gymnasium vector env resets its copies itself; it cannot be told that
        # an episode we cut short has ended.
        raise ValueError("time_limit: a Gymnasium vector env applies its own time limits; "
                         "make it with max_episode_steps, or use first_episode=True")
    obs_dim = policy.obs_dim

    observations = np.zeros((T, B, obs_dim))
    actions = np.zeros((T, B) if policy.discrete else (T, B, policy.act_dim),
                       np.int64 if policy.discrete else np.float64)
    rewards = np.zeros((T, B))
    terminated = np.zeros((T, B), np.bool_)
    truncated = np.zeros((T, B), np.bool_)
    log_probs = np.zeros((T, B))
    final = np.full((T, B, obs_dim), np.nan)
    last = np.zeros((B, obs_dim))

    generators = _slot_generators(rng, B) if vector else [rng]
    seeds = [int(g.integers(2**31 - 1)) for g in generators]
    obs, _ = _outputs(env.reset(seed=seeds if vector else seeds[0]), "reset()", 2)
    obs = _from_env(obs, "the observation from reset()", (B, obs_dim))
    filled = np.zeros(B, np.int64)
    resetting = np.zeros(B, np.bool_)   # NEXT_STEP: this slot's next step is a reset
    elapsed = np.zeros(B, np.int64)
    finished = np.zeros(B, np.bool_)   # first_episode: the slot's episode has ended
    # A slot that records nothing this step (resetting, or done) steps with an idle
    # action drawn from no stream: 0, or the nearest point of a Box.
    idle = 0 if policy.discrete else np.clip(0.0, act_space.low, act_space.high)
    act = np.zeros(actions.shape[1:], actions.dtype)
    logp = np.zeros(B)
    thetas = thetas.reshape(-1, policy.n_params)   # one row for all slots, or one per slot
    while (~finished & (filled < T)).any():
        act[:], logp[:] = idle, 0.0
        acting = np.flatnonzero(~resetting & ~finished & (filled < T))
        rows = thetas if len(thetas) == 1 else thetas[acting]   # the acting slots' θ
        if acting.size and not deterministic:
            act[acting], logp[acting] = policy._sample_each(
                rows, obs[acting], [generators[b] for b in acting])
        elif acting.size and len(rows) == 1:
            act[acting] = policy.mode(rows[0], obs[acting])
        elif acting.size:
            act[acting] = np.concatenate([policy.mode(th, obs[b:b + 1])
                                          for th, b in zip(rows, acting)])
        nxt, rew, term, trunc, info = _outputs(env.step(act if vector else act[0]), "step()", 5)
        nxt = _from_env(nxt, "the observation from step()", (B, obs_dim))
        term = _from_env(term, "terminated from step()", (B,), np.bool_)
        trunc = _from_env(trunc, "truncated from step()", (B,), np.bool_)
        rew = _from_env(rew, "the reward from step()", (B,))
        elapsed += 1
        if time_limit is not None:
            trunc = trunc | (~term & (elapsed >= time_limit))
        done = term | trunc
        true_next = nxt.copy()
        if vector and mode == gym.vector.AutoresetMode.SAME_STEP and done.any():
            final_obs = info["final_obs"]
            for b in np.flatnonzero(done):
                true_next[b] = _from_env(final_obs[b], "info['final_obs']", (obs_dim,))
        record = ~resetting & ~finished & (filled < T)
        cols = np.flatnonzero(record)
        rows = filled[cols]
        observations[rows, cols] = obs[cols]
        actions[rows, cols] = act[cols]
        rewards[rows, cols] = rew[cols]
        terminated[rows, cols] = term[cols]
        truncated[rows, cols] = trunc[cols]
        log_probs[rows, cols] = logp[cols]
        ends = cols[done[cols]]
        final[filled[ends], ends] = true_next[ends]
        just_full = cols[rows == T - 1]
        last[just_full] = true_next[just_full]
        filled[cols] += 1
        if first_episode:
            finished[ends] = True
        elapsed[done | resetting] = 0
        # Slots whose episode ended need a reset before their next transition.
        resetting = np.zeros(B, np.bool_)
        if done.any():
            if not vector:
                nxt = _from_env(_outputs(env.reset(), "reset()", 2)[0],
                                "the observation from reset()", (1, obs_dim))
            elif mode == gym.vector.AutoresetMode.NEXT_STEP:
                resetting = done
            elif mode == gym.vector.AutoresetMode.DISABLED:
                reset_obs, _ = _outputs(env.reset(options={"reset_mask": done}), "reset()", 2)
                nxt = _from_env(reset_obs, "the observation from reset()", (B, obs_dim))
        obs = nxt
    return Rollout(observations, actions, rewards, terminated, truncated,
                   None if deterministic else log_probs, last, final)


def _outputs(result, call, n):
    """The n-tuple a Gymnasium env's reset() (observation, info) or step() (observation,
    reward, terminated, truncated, info) returns; else an error naming the env."""
    if not isinstance(result, tuple) or len(result) != n:
        want = "(observation, info)" if n == 2 else \
            "(observation, reward, terminated, truncated, info)"
        raise TypeError(f"env: {call} returned {_short(result)}, expected {want}")
    return result


def _from_env(value, what, shape, dtype=np.float64):
    """What a Gymnasium env returned, as an array of `shape`: finite numbers, or an
    error naming the env and the output (NumPy would read None as NaN, silently)."""
    try:
        if value is None or (isinstance(value, (list, tuple)) and
                             any(v is None for v in value)):
            raise TypeError
        arr = np.asarray(value, dtype)
    except (TypeError, ValueError):
        raise TypeError(f"env: {what} is {_short(value)}, expected numbers") from None
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"env: {what} has {arr.size} values (shape {arr.shape}), expected "
                         f"{int(np.prod(shape))} as its space says")
    if dtype is np.float64 and not np.isfinite(arr).all():
        raise ValueError(f"env: {what} is not finite (NaN or infinity): {_short(value)}")
    return arr.reshape(shape)


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
