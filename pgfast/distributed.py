"""Rollouts sharded over Ray actors, bit for bit equal to one process.

A :class:`RayVecEnv` is a vector env whose B slots live in ``workers`` Ray actors,
in contiguous blocks (slots 0..k-1 in the first actor, and so on). Passed to
:func:`pgfast.rollout` (or to a ``Problem``, an estimator, an update) it runs each
block in its actor with pgfast's own loop and returns the same time-major arrays
as one process, concatenated in slot order::

    from pgfast.distributed import RayVecEnv
    env = RayVecEnv("CartPole-v1", num_envs=256, workers=4)   # starts a local Ray
    ro = pgfast.rollout(env, policy, theta, 500, rng)           # == the local rollout

Why the numbers do not change: every slot draws from its own stream, and the
streams are drawn from the caller's Generator in the caller (``slot_states``),
exactly as the local loop draws them; each actor gets the rows of its slots. A
shared θ goes to the object store once per call (``ray.put``; one of at most 64 kB
is cheaper sent inline with each call); the rows of a multi-θ call go to the
actor that runs those slots. ``resized(n)`` gives the same env with n slots on
the same actors (what a Problem needs for its different batch sizes).

Envs: a native id (the fused Cython loop), any other Gymnasium id (one
``gymnasium.Env`` per slot, the Python loop), or a picklable factory called in
each actor as ``factory(n)`` that returns a ``VecEnvKernel`` (such as a user's
compiled subclass: pass the class itself), a pgfast vector env, or a list of n
``gymnasium.Env``. A Gymnasium slot b rolls out as
``pgfast.rollout(env_b, policy, theta_b, T, generator_b)`` would, so a Gymnasium
rollout, too, is the same for any number of workers.

Faults: an actor that dies during a call is replaced and its block re-run from
the same streams (same result); an unreachable cluster address fails within
``timeout`` seconds; an interrupt (Ctrl-C) kills the actors, and the next call
starts new ones. Ray is imported only when a RayVecEnv is made (``pip install
"pgfast[ray]"``).
"""
from __future__ import annotations

import copy
import numbers
import re
import socket
from functools import lru_cache

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from ._envs import VecEnvKernel
from ._validation import check_policy_fits, check_positive_float, check_positive_int
from .rollout import Rollout, RolloutBackend, rollout, slot_generators, slot_states, space_dims

__all__ = ["RayVecEnv", "connect"]

DEFAULT_PORT = 6379   # a Ray head node's GCS port (`ray start --head`)
INLINE_BYTES = 64 * 1024   # a shared θ up to this size is sent with each call


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError('pgfast.distributed needs Ray: pip install "pgfast[ray]"') from err
    return ray


def connect(address=None, *, num_cpus=None, timeout=10.0):
    """Join the Ray cluster at `address`, or start a local one. When Ray is already
    initialised in this process that session is kept (`address` must still answer).

    Parameters
    ----------
    address : str, optional
        "host:port" (or "ray://host:port") of a running cluster, "auto" for the one
        ``ray start`` left on this machine; None starts a local cluster.
    num_cpus : int, optional
        CPUs of a local cluster (default: all).
    timeout : float
        Seconds to wait for `address` to answer before ``ConnectionError``.

    Returns
    -------
    None
        Ray is initialised in this process.

    Raises
    ------
    ImportError
        Ray is not installed (``pip install "pgfast[ray]"``).
    ConnectionError
        `address` does not answer within `timeout` seconds.
    TypeError
        An `address` that is not a string.

    Examples
    --------
    >>> import ray
    >>> from pgfast.distributed import connect
    >>> connect(num_cpus=2)            # no address: a local cluster of 2 CPUs
    >>> ray.is_initialized()
    True
    >>> connect("127.0.0.1:1", timeout=0.5)
    Traceback (most recent call last):
        ...
    ConnectionError: address: no Ray cluster answers at '127.0.0.1:1' ...
    """
    ray = _import_ray()
    timeout = check_positive_float(timeout, "timeout")
    if address is not None and address != "auto":
        _probe(address, timeout)
    if ray.is_initialized():
        return
    ray.init(address=address, num_cpus=num_cpus, include_dashboard=False,
             logging_level="ERROR")


def _probe(address, timeout):
    """Fail fast where Ray would keep retrying: open a TCP connection to `address`."""
    if not isinstance(address, str):
        raise TypeError(f"address: expected 'host:port', got {type(address).__name__}")
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        host, port = hostport, DEFAULT_PORT
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(
            f"address: no Ray cluster answers at {address!r} ({err}; waited up to "
            f"{timeout:g} s); start one with `ray start --head`, or leave the address "
            "unset to start a local one") from None


def _check_cpus(x):
    """CPUs reserved per actor: a number >= 0 (0: reserve none, oversubscribe)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"cpus_per_worker: expected a number, got {type(x).__name__}")
    if not (np.isfinite(x) and x >= 0):
        raise ValueError(f"cpus_per_worker: expected a finite number >= 0, got {x}")
    return float(x)


def _build(source, n, max_episode_steps, kwargs):
    """The env of n slots: a VecEnvKernel / pgfast vector env, or a list of n
    gymnasium.Env (one per slot)."""
    from . import envs as native

    if isinstance(source, str):
        if native.is_native(source):
            return native.make_kernel(source, n, max_episode_steps=max_episode_steps, **kwargs)
        if max_episode_steps is not None:
            kwargs = dict(kwargs, max_episode_steps=max_episode_steps)
        return [gym.make(source, **kwargs) for _ in range(n)]
    env = source(n)
    if isinstance(env, VecEnvKernel) or isinstance(getattr(env, "kernel", None), VecEnvKernel):
        if getattr(env, "kernel", env).num_envs != n:
            raise ValueError(f"env: the factory was asked for {n} slots and made "
                             f"{getattr(env, 'kernel', env).num_envs}")
        return env
    if isinstance(env, (list, tuple)) and len(env) == n \
            and all(isinstance(e, gym.Env) for e in env):
        return list(env)
    raise TypeError(f"env: factory({n}) should return a VecEnvKernel, a pgfast vector env "
                    f"or a list of {n} gymnasium.Env, got {type(env).__name__}")


def _spaces(env):
    """(observation space, action space, time limit or None) of one built env."""
    if isinstance(env, list):
        spec = env[0].spec
        return env[0].observation_space, env[0].action_space, \
            getattr(spec, "max_episode_steps", None)
    kernel = getattr(env, "kernel", env)
    limit = kernel.max_episode_steps or None
    if hasattr(env, "single_observation_space"):
        return env.single_observation_space, env.single_action_space, limit
    obs = gym.spaces.Box(-np.inf, np.inf, (kernel.obs_dim,))
    act = gym.spaces.Discrete(kernel.n_actions) if kernel.n_actions \
        else gym.spaces.Box(-np.inf, np.inf, (kernel.act_dim,))
    return obs, act, limit


@lru_cache(maxsize=16)
def _policy(config_items):
    from .policies import from_config

    return from_config(dict(config_items))


def _config_key(policy):
    """The policy's config as a hashable value (what an actor rebuilds it from)."""
    return tuple((k, tuple(v) if isinstance(v, list) else v)
                 for k, v in sorted(policy.config().items()))


class _Shard:
    """One actor: the env of its block of slots (one per block size it was asked
    for), rollouts run on request."""

    def __init__(self, source, max_episode_steps, kwargs):
        self.source = (source, max_episode_steps, kwargs)
        self.envs = {}

    def _env(self, n):
        if n not in self.envs:
            self.envs[n] = _build(self.source[0], n, *self.source[1:])
        return self.envs[n]

    def ready(self, n):
        """(pid, node id), once the env of n slots (if any) is built."""
        import os

        import ray

        if n:
            self._env(n)
        return os.getpid(), ray.get_runtime_context().get_node_id()

    def rollout(self, n, config, thetas, streams, n_steps, options):
        """The rollout of a block of n slots: its arrays (final observations only
        where an episode ended) and, for given generators, their states afterwards."""
        env = self._env(n)
        policy = _policy(config)
        given = not isinstance(streams, np.ndarray)
        generators = streams if given else slot_generators(streams)
        if isinstance(env, list):   # Gymnasium: one Env per slot
            parts = [rollout(e, policy, thetas if thetas.ndim == 1 else thetas[b],
                             n_steps, generators[b], **options)
                     for b, e in enumerate(env)]
            ro = _concatenate(parts)
        else:
            ro = rollout(env, policy, thetas, n_steps, generators, **options)
        states = [g.bit_generator.state for g in generators] if given else None
        return (ro.observations, ro.actions, ro.rewards, ro.terminated, ro.truncated,
                ro.log_probs, ro.last_observations, ro.final_buffer[ro.done]), states


class _Pool:
    """The actors of a RayVecEnv and of its :meth:`~RayVecEnv.resized` copies."""

    def __init__(self, source, workers, cpus, timeout):
        self.source, self.workers, self.cpus, self.timeout = source, workers, cpus, timeout
        self.actors = None
        self.placement = None   # [(pid, node id)] per actor

    def start(self, blocks):
        """One actor per worker, each building its block's env; at most `timeout`."""
        self.actors = [self._spawn() for _ in range(self.workers)]
        sizes = [hi - lo for lo, hi in blocks] + [0] * (self.workers - len(blocks))
        self.placement = self._wait_ready(self.actors, sizes)

    def replace(self, i, n):
        """A new actor i (the old one died), with the env of n slots built."""
        _import_ray().kill(self.actors[i])
        self.actors[i] = self._spawn()
        self.placement[i] = self._wait_ready([self.actors[i]], [n])[0]

    def stop(self):
        if self.actors:
            ray = _import_ray()
            for actor in self.actors:
                ray.kill(actor)
        self.actors = None

    def _spawn(self):
        actor = _import_ray().remote(_Shard).options(num_cpus=self.cpus, max_restarts=0,
                                                     scheduling_strategy="SPREAD")
        return actor.remote(*self.source)

    def _wait_ready(self, actors, sizes):
        ray = _import_ray()
        pings = [a.ready.remote(n) for a, n in zip(actors, sizes)]
        done, _ = ray.wait(pings, num_returns=len(pings), timeout=self.timeout)
        if len(done) < len(pings):
            self.stop()
            cpus = ray.cluster_resources().get("CPU", 0)
            raise TimeoutError(
                f"workers: {len(pings)} actors of {self.cpus:g} CPU could not all start "
                f"within {self.timeout:g} s on a cluster of {cpus:g} CPUs; use fewer "
                "workers or a smaller cpus_per_worker")
        try:
            return ray.get(pings)
        except ray.exceptions.RayActorError as err:
            self.stop()
            raise RuntimeError(f"env: the workers could not build the env: {err}") from None


def _concatenate(parts):
    """Rollouts of consecutive slot blocks as one rollout."""
    cat = lambda arrays, axis=1: np.concatenate(arrays, axis=axis)   # noqa: E731
    logp = None if parts[0].log_probs is None else cat([p.log_probs for p in parts])
    return Rollout(cat([p.observations for p in parts]), cat([p.actions for p in parts]),
                   cat([p.rewards for p in parts]), cat([p.terminated for p in parts]),
                   cat([p.truncated for p in parts]), logp,
                   cat([p.last_observations for p in parts], 0),
                   cat([p.final_buffer for p in parts]))


def _blocks(B, workers):
    """[(lo, hi)] contiguous slot blocks, sizes differing by at most one."""
    edges = np.linspace(0, B, min(workers, B) + 1).round().astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


class RayVecEnv(RolloutBackend):
    """B env slots sharded over Ray actors, for :func:`pgfast.rollout` and the
    estimators: the result is the local one, bit for bit, for any ``workers``.

    Parameters
    ----------
    env : str or callable
        A native id ("CartPole-v1": the fused loop), another Gymnasium id (one Env
        per slot), or a picklable ``factory(n)`` returning a ``VecEnvKernel`` (a
        user's compiled class itself works), a pgfast vector env, or a list of n
        ``gymnasium.Env``. Its module must be importable on every node.
    num_envs : int
        Slots B.
    workers : int
        Ray actors; slots are split in contiguous blocks (min(workers, B) actors).
    address : str, optional
        A running cluster's "host:port"; default: the session already initialised
        in this process, or a new local one (see :func:`connect`).
    max_episode_steps : int, optional
        Time limit of an id (0: none for native ids); factories set their own.
    cpus_per_worker : float
        CPUs Ray reserves per actor (0 or a fraction lets more actors than cores run).
    timeout : float
        Seconds allowed to reach `address` and to place and start the actors.
    max_retries : int
        Times a block is re-run on a new actor after its actor died, per call.
    **kwargs
        Passed to the env of an id (``pgfast.make_kernel`` / ``gymnasium.make``).

    Raises
    ------
    ImportError
        Ray is not installed (``pip install "pgfast[ray]"``).
    TypeError
        `env` is neither an id nor a callable.
    ValueError
        A count below 1, or `max_episode_steps` / `kwargs` with a factory.
    ConnectionError
        `address` does not answer within `timeout` seconds.
    TimeoutError
        The actors cannot be placed on the cluster within `timeout` seconds.

    Notes
    -----
    A RayVecEnv is a rollout back-end (:class:`pgfast.rollout.RolloutBackend`), not a
    Gymnasium ``VectorEnv``: it runs whole rollouts, never a step at a time (one round
    trip per step would cost more than the step), so it offers no ``reset`` or
    ``step``. docs/guides/scaling.rst tells what an update costs.

    Examples
    --------
    Four slots on two actors (a local Ray starts if none runs); the rollout is the
    one the same slots give in this process:

    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast.distributed import RayVecEnv
    >>> env = RayVecEnv("CartPole-v1", num_envs=4, workers=2, cpus_per_worker=0)
    >>> env.num_envs, len(env.placement)
    (4, 2)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> theta = policy.init(np.random.default_rng(0))
    >>> remote = pgfast.rollout(env, policy, theta, 100, np.random.default_rng(1))
    >>> local = pgfast.rollout(pgfast.make_vec("CartPole-v1", 4), policy, theta, 100,
    ...                        np.random.default_rng(1))
    >>> bool(np.array_equal(remote.observations, local.observations))
    True
    >>> env.close()
    """

    closed = False

    def __init__(self, env, num_envs, workers=1, *, address=None, max_episode_steps=None,
                 cpus_per_worker=1.0, timeout=60.0, max_retries=3, **kwargs):
        if not isinstance(env, str) and not callable(env):
            raise TypeError(f"env: expected an env id or a factory(n), got {type(env).__name__}")
        if callable(env) and (kwargs or max_episode_steps is not None):
            raise ValueError("max_episode_steps/kwargs: give them to your factory instead")
        num_envs = check_positive_int(num_envs, "num_envs")
        workers = check_positive_int(workers, "workers")
        cpus = _check_cpus(cpus_per_worker)
        timeout = check_positive_float(timeout, "timeout")
        self.max_retries = check_positive_int(max_retries, "max_retries", minimum=0)
        # A one-slot probe here: spaces and time limit, and a bad factory fails now.
        probe = _build(env, 1, max_episode_steps, kwargs)
        self.python_path = isinstance(probe, list)
        obs_space, act_space, limit = _spaces(probe)
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.max_episode_steps = limit
        name = env if isinstance(env, str) else getattr(env, "__name__", type(env).__name__)
        self.spec = EnvSpec(id="pgfast-ray/" + re.sub(r"[^\w.-]", "_", name.split("/")[-1]),
                            max_episode_steps=limit)
        self._set_size(num_envs, workers)
        connect(address, timeout=timeout)
        self._pool = _Pool((env, max_episode_steps, kwargs), workers, cpus, timeout)
        self._pool.start(self.blocks)

    def _set_size(self, num_envs, workers):
        self.num_envs = num_envs
        self.blocks = _blocks(num_envs, workers)

    def resized(self, num_envs) -> RayVecEnv:
        """The same env with `num_envs` slots on the same actors (each builds the
        env of its new block on first use). ``close()`` on either stops both.

        Parameters
        ----------
        num_envs : int
            The new number of slots B.

        Returns
        -------
        RayVecEnv
            A shallow copy sharing this env's actors.
        """
        other = copy.copy(self)
        other._set_size(check_positive_int(num_envs, "num_envs"), self._pool.workers)
        return other

    @property
    def placement(self):
        """Where the actors run.

        Returns
        -------
        list of (int, str)
            (process id, Ray node id) of each actor.
        """
        return self._pool.placement

    def __repr__(self):
        return (f"RayVecEnv({self._pool.source[0]!r}, num_envs={self.num_envs}, "
                f"workers={self._pool.workers})")

    def close(self):
        """Stop the actors (this env and every :meth:`resized` copy of it).

        Returns
        -------
        None
        """
        if not self.closed:
            self._pool.stop()
        self.closed = True

    # -- rollouts (called by pgfast.rollout) ----------------------------------

    def run(self, policy, thetas, n_steps, rng, *, time_limit, num_threads, deterministic,
            first_episode):
        """pgfast.rollout's work on the actors.

        Parameters
        ----------
        policy : pgfast policy
            The policy (its configuration goes to the actors).
        thetas : numpy.ndarray, shape (P,) or (B, P)
            Checked by :func:`pgfast.rollout`.
        n_steps : int
            Steps per slot.
        rng : numpy.random.Generator or list of B of them
            One generator (its slot streams are derived as locally), or one per slot.
        time_limit, num_threads, deterministic, first_episode
            As :func:`pgfast.rollout` takes them.

        Returns
        -------
        pgfast.Rollout
            The local rollout of the same slots and streams, bit for bit.
        """
        ray = _import_ray()
        if self.closed:
            raise ValueError("env: the environment is closed")
        check_policy_fits(policy, *space_dims(self.single_observation_space,
                                              self.single_action_space))
        B = self.num_envs
        if isinstance(rng, np.random.Generator):
            streams, generators = slot_states(rng, B), None
        else:
            generators = list(rng)
            if len(generators) != B or not all(isinstance(g, np.random.Generator)
                                               for g in generators):
                raise TypeError(f"rng: expected a numpy.random.Generator or a sequence of "
                                f"{B} of them")
            streams = generators
        options = dict(time_limit=time_limit, deterministic=deterministic,
                       first_episode=first_episode)
        if not self.python_path:
            options["num_threads"] = num_threads
        config = _config_key(policy)
        # A large shared θ goes to the object store once (each node fetches it
        # once); a small one rides inline with each call, which costs less.
        shared = None
        if thetas.ndim == 1:
            shared = ray.put(thetas) if thetas.nbytes > INLINE_BYTES else thetas

        def submit(i):
            lo, hi = self.blocks[i]
            rows = shared if shared is not None else thetas[lo:hi]
            return self._pool.actors[i].rollout.remote(hi - lo, config, rows, streams[lo:hi],
                                                       n_steps, options)

        if self._pool.actors is None:   # stopped by an interrupt: start afresh
            self._pool.start(self.blocks)
        try:
            results = self._gather(submit)
        except KeyboardInterrupt:
            self._pool.stop()
            raise
        if generators is not None:   # leave the caller's generators where local would
            for g, state in zip(generators, [s for _, states in results for s in states]):
                g.bit_generator.state = state
        return self._assemble([arrays for arrays, _ in results], deterministic)

    def _gather(self, submit):
        """Every block's result; a block whose actor died reruns on a new actor."""
        ray = _import_ray()
        refs = [submit(i) for i in range(len(self.blocks))]
        retries = [0] * len(self.blocks)
        while True:
            try:
                return ray.get(refs)
            except ray.exceptions.RayActorError:
                pass
            for i, ref in enumerate(refs):   # which actors died?
                try:
                    ray.get(ref)
                except ray.exceptions.RayActorError:
                    retries[i] += 1
                    if retries[i] > self.max_retries:
                        raise RuntimeError(f"workers: the actor of slots {self.blocks[i]} "
                                           f"died {retries[i]} times in one call") from None
                    lo, hi = self.blocks[i]
                    self._pool.replace(i, hi - lo)
                    refs[i] = submit(i)

    def _assemble(self, parts, deterministic):
        """One Rollout from the blocks' arrays, in slot order."""
        cat = lambda k, axis=1: np.concatenate([p[k] for p in parts], axis=axis)  # noqa: E731
        observations, terminated, truncated = cat(0), cat(3), cat(4)
        final = np.full_like(observations, np.nan)
        done = terminated | truncated
        for (lo, hi), p in zip(self.blocks, parts):
            block = final[:, lo:hi]
            block[done[:, lo:hi]] = p[7]
        return Rollout(observations, cat(1), cat(2), terminated, truncated,
                       None if deterministic else cat(5), cat(6, 0), final)
