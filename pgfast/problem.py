"""What U(θ) is defined over: an environment, a discount and a rollout depth.

This module owns env resolution (an id becomes a native pgfast vector env, a
Gymnasium one or a Ray one, exactly once per :class:`Problem`), the spaces and the
rollout depth, and running the rollout loop in chunks of the env's slots; the
trajectories it returns are :class:`pgfast.trajectories.Trajectories`. The
estimators, baselines and updates read trajectories; none of them resolves an env or
runs the rollout loop itself.

The utility is U(θ) = E[R(τ)] with R(τ) = Σ_{k=1..d} γ^(k−1) r_k, estimated by the
mean over m rollouts (:func:`utility`).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np

from ._envs import VecEnvKernel
from ._validation import (check_allocation, check_bool, check_policy_fits,
                          check_positive_int, check_rng, check_rngs, check_theta,
                          check_unit_interval)
from .distributed import RayVecEnv
from .envs import is_native, make_vec
from .rollout import RolloutBackend, record_bytes, rollout, space_dims
from .statistics import ObservationNormalizer
from .trajectories import Trajectories, first_episodes

__all__ = ["Problem", "utility", "check_problem"]


class Problem:
    """An environment, a discount and a rollout depth: what U(θ) is defined over.

    Parameters
    ----------
    env : str, pgfast vector env, VecEnvKernel, RolloutBackend, gymnasium.Env or VectorEnv
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
    num_threads : int
        Threads the native rollout loop splits its env slots over (OpenMP); the
        trajectories are the same bit for bit for any count.
    normalize_observations : bool
        Keep running statistics of the observations (``obs_normalizer``) and give
        the policy (s − μ)/σ: θ then acts on normalised observations, and the
        trajectories hold normalised ones. The updates' training rollouts update the
        statistics; :func:`utility` and evaluations leave them frozen. The statistics are
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

    KEPT_SIZES = 4   # vector envs of an id kept, by slot count

    def __init__(self, env, gamma=1.0, horizon=None, normalize_observations=False, *,
                 workers=None, address=None, num_threads=1):
        self.gamma = check_unit_interval(gamma, "gamma")
        self.num_threads = check_positive_int(num_threads, "num_threads")
        self.env = env
        self._envs_by_size = {}   # an id's vector envs by slot count, most recent last
        if workers is not None and not isinstance(env, str):
            raise ValueError("workers: give an env id, or pass a "
                             "pgfast.distributed.RayVecEnv as env")
        if isinstance(env, str):
            self.env_id = env
            if workers is not None:   # one set of Ray actors, resized per slot count
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
        elif isinstance(env, RolloutBackend):   # e.g. a RayVecEnv
            self.env_id = None
            self.observation_space = env.single_observation_space
            self.action_space = env.single_action_space
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

    def state_dict(self):
        """The problem's state, for checkpoints: ``observations``, the running
        observation statistics (with ``normalize_observations``; else empty).

        Returns
        -------
        dict
        """
        return {} if self.obs_normalizer is None else \
            {"observations": self.obs_normalizer.state_dict()}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` (or a checkpoint's ``run["problem"]``).

        Raises
        ------
        ValueError
            Statistics saved for a problem without normalisation, or the reverse.
        """
        if (self.obs_normalizer is None) != ("observations" not in state):
            raise ValueError("problem: the checkpoint's observation normalisation does not "
                             "match this problem's normalize_observations")
        if self.obs_normalizer is not None:
            self.obs_normalizer.load_state_dict(state["observations"])

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
            the id), kept for the next call of that size (the last few sizes: batches
            counted in steps vary theirs); an env object given to the constructor, as
            it is.
        """
        if self.env_id is None:
            return self.env
        envs = self._envs_by_size
        env = envs.pop(num_envs) if num_envs in envs else self._make(num_envs)
        envs[num_envs] = env   # the most recently used last
        if len(envs) > self.KEPT_SIZES:
            envs.pop(next(iter(envs)))
        return env

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

    def rollouts(self, policy, theta, m, rng, deterministic=False,
                 update_statistics=False) -> Trajectories:
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
        update_statistics : bool
            Add the observations to the running statistics (with
            ``normalize_observations``): what a training batch does. Off by default,
            so that :func:`utility` and evaluations change nothing.

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
        slots = env.num_envs if isinstance(env, (gym.vector.VectorEnv, VecEnvKernel,
                                                  RolloutBackend)) else 1
        theta = np.asarray(theta, dtype=np.float64)
        chunks = []
        for start in range(0, m, slots):
            rows = min(slots, m - start)
            part = theta if theta.ndim == 1 else theta[start:start + rows]
            if theta.ndim == 2 and rows < slots:   # pad the last chunk, keep `rows` slots
                part = np.vstack([part, np.repeat(part[-1:], slots - rows, axis=0)])
            chunks.append((rollout(env, policy, part, d, rng, time_limit=d,
                                   num_threads=self.num_threads,
                                   deterministic=deterministic, first_episode=True), rows))
        traj = first_episodes(chunks)
        if normalizer is not None:
            raw = traj.observations[traj.alive]
            traj.__dict__["next_observations"] = normalizer.normalize(traj.next_observations)
            traj.observations = normalizer.normalize(traj.observations)
            if update_statistics:
                normalizer.update(raw)
        return traj

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
