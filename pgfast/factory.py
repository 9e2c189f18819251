"""A training run from the defaults table: its settings (generic, the table's entry,
the caller's overrides, each with where it came from), its solved threshold, and the
problem, policy and update those settings describe."""
from __future__ import annotations

import functools

import gymnasium

from . import updates
from .defaults import CONTINUOUS, GENERIC, POLICY, TABLE, TARGETS, UPDATES
from .envs import PREFIX, is_native, spaces_of
from .estimators import RewardToGoGradient
from .policies import LinearValue, MLPValue, policy_for
from .problem import Problem

__all__ = ["settings", "threshold", "policy_kind", "build", "tuned"]


def _name(env):
    """The id without pgfast's prefix ("pgfast/CartPole-v1" -> "CartPole-v1")."""
    return env[len(PREFIX):] if env.startswith(PREFIX) else env


def tuned(env):
    """Whether `env` has its own entry in the defaults table.

    Parameters
    ----------
    env : str
        An env id.

    Returns
    -------
    bool
        False: ``pgfast train`` uses the generic settings (for continuous actions,
        :data:`pgfast.defaults.CONTINUOUS`).

    Examples
    --------
    >>> from pgfast import factory
    >>> factory.tuned("Hopper-v5"), factory.tuned("pgfast/CartPole-v1"), factory.tuned("Foo-v0")
    (True, True, False)
    """
    return _name(env) in TABLE


@functools.lru_cache(maxsize=64)   # settings and policy_kind both ask; a probe makes an env
def _continuous(env):
    """Whether `env` acts with continuous (Box) actions; False for an unknown id (the
    env check reports it later)."""
    try:
        if is_native(env):
            action_space = spaces_of(env)[1]
        else:
            probe = gymnasium.make(env)
            action_space = probe.action_space
            probe.close()
    except Exception:
        return False
    return isinstance(action_space, gymnasium.spaces.Box)


def threshold(env):
    """The mean return at which `env` counts as solved.

    Parameters
    ----------
    env : str
        An env id.

    Returns
    -------
    float or None
        The env spec's ``reward_threshold`` (Gymnasium's, or the native env's), else
        :data:`pgfast.defaults.TARGETS`'s entry; None when neither knows one (then
        ``pgfast train`` trains its whole budget and keeps the best policy).

    Examples
    --------
    >>> from pgfast import factory
    >>> factory.threshold("CartPole-v1"), factory.threshold("Pendulum-v1")
    (475.0, -200.0)
    >>> factory.threshold("pgfast/SimpleRegulator-v0") is None
    True
    """
    try:
        value = gymnasium.spec(env).reward_threshold
    except Exception:   # an unregistered id: the env check reports it later
        value = None
    if value is None:
        value = TARGETS.get(_name(env))
    return None if value is None else float(value)


def policy_kind(env):
    """The kind of policy `env` is trained with by default.

    Parameters
    ----------
    env : str
        An env id.

    Returns
    -------
    str
        ``"mlp"`` for the envs in :data:`pgfast.defaults.POLICY` and for an env
        with continuous actions and no table entry, else ``"linear"``.

    Examples
    --------
    >>> from pgfast import factory
    >>> factory.policy_kind("Pendulum-v1"), factory.policy_kind("CartPole-v1")
    ('mlp', 'linear')
    >>> factory.policy_kind("Walker2d-v5")   # continuous actions, no table entry
    'mlp'
    """
    name = _name(env)
    if name in POLICY:
        return POLICY[name]
    return "mlp" if name not in TABLE and _continuous(env) else "linear"


def settings(env, policy="linear", overrides=None):
    """The settings ``pgfast train`` uses for `env` and `policy`, and where each came from.

    :data:`pgfast.defaults.GENERIC`, then the table's entry for `env` and `policy`
    (with the entry for the chosen update, when there is one, over it) or, for an
    env with continuous actions and no entry, :data:`pgfast.defaults.CONTINUOUS`,
    then `overrides`.

    Parameters
    ----------
    env : str
        An env id (any id: one not in :data:`pgfast.defaults.TABLE` takes the
        generic settings).
    policy : {"linear", "mlp"}
        The kind of policy.
    overrides : dict, optional
        Settings of the caller (``--set``), by the keys of
        :data:`pgfast.defaults.GENERIC`.

    Returns
    -------
    settings : dict
        Every key of :data:`pgfast.defaults.GENERIC` with its value for this run.
    sources : dict
        For each key, ``"generic"``, ``"table"``, ``"continuous"`` or
        ``"override"``.

    Raises
    ------
    ValueError
        An unknown policy kind, key of `overrides` or update name.

    Examples
    --------
    >>> from pgfast import factory
    >>> config, sources = factory.settings("Pendulum-v1", "mlp", {"update": "ppo"})
    >>> config["update"], config["alpha"], sources["alpha"], config["gamma"]
    ('ppo', 0.001, 'table', 0.95)
    >>> factory.settings("CartPole-v1", "linear", {"m": 8})[1]["m"]
    'override'
    """
    if policy not in ("linear", "mlp"):
        raise ValueError(f"policy: expected 'linear' or 'mlp', got {policy!r}")
    merged = dict(GENERIC)
    sources = dict.fromkeys(GENERIC, "generic")
    name = _name(env)
    if name in TABLE:
        entry, source = TABLE[name].get(policy, {}), "table"
    elif _continuous(env):
        entry, source = CONTINUOUS, "continuous"
    else:
        entry, source = {}, "table"
    overrides = dict(overrides or {})
    update = overrides.get("update", entry.get("update", GENERIC["update"]))
    entry = {**{k: v for k, v in entry.items() if k not in UPDATES}, **entry.get(update, {})}
    merged.update(entry)
    sources.update(dict.fromkeys(entry, source))
    for key, value in overrides.items():
        if key not in GENERIC:
            raise ValueError(f"{key}: not a setting; expected one of {', '.join(GENERIC)}")
        merged[key] = value
        sources[key] = "override"
    if merged["update"] not in UPDATES:
        raise ValueError(f"update: expected one of {', '.join(UPDATES)}, "
                         f"got {merged['update']!r}")
    return merged, sources


def build(env, policy_kind, config, horizon=None, workers=None, address=None):
    """The problem, policy and update of a ``pgfast train`` run.

    Parameters
    ----------
    env : str
        An env id (native pgfast or Gymnasium).
    policy_kind : {"linear", "mlp"}
        The kind of policy.
    config : dict
        Settings, as :func:`settings` returns them.
    horizon : int, optional
        The rollout depth, for envs without a time limit.
    workers : int, optional
        Run the rollouts on this many Ray actors (:mod:`pgfast.distributed`).
    address : str, optional
        The Ray cluster's address ("host:port"); None starts a local one.

    Returns
    -------
    problem : pgfast.Problem
        With γ and observation normalisation as the settings say.
    policy : pgfast policy
        A softmax or Gaussian policy for the env's spaces, linear or an MLP of
        ``config["hidden"]``.
    update : pgfast update
        The update ``config["update"]`` names, with a value baseline of the policy's
        kind fitted as the settings say.

    Raises
    ------
    ValueError
        Settings an update refuses, or an env without a time limit and no horizon.
    gymnasium.error.Error
        An id neither pgfast nor Gymnasium knows.

    Examples
    --------
    >>> import numpy as np
    >>> from pgfast import factory
    >>> config, _ = factory.settings("CartPole-v1", "mlp")
    >>> problem, policy, update = factory.build("CartPole-v1", "mlp", config)
    >>> policy, type(update).__name__, update.m
    (MLPSoftmax(obs_dim=4, n_actions=2, hidden=[64, 64]), 'TrustRegionUpdate', 10)
    """
    problem = Problem(env, gamma=config["gamma"], horizon=horizon,
                      normalize_observations=bool(config["normalize"]),
                      workers=workers, address=address)
    hidden = tuple(config["hidden"]) if policy_kind == "mlp" else None
    gaussian = not hasattr(problem.action_space, "n")
    extra = {"log_std": config["log_std"]} if gaussian else {}
    policy = policy_for(problem.observation_space, problem.action_space, hidden=hidden, **extra)
    value_fn = MLPValue(policy.obs_dim, hidden=hidden) if hidden else LinearValue(policy.obs_dim)
    value = {key: config[key] for key in ("lam", "value_epochs", "value_lr", "value_minibatch")}
    value["scale_rewards"] = bool(config["scale_rewards"])
    name, m = config["update"], config["m"]
    if name in ("trpo", "natural"):
        cls = updates.TrustRegionUpdate if name == "trpo" else updates.NaturalPolicyUpdate
        update = cls(problem, policy, m, config["epsilon"], value_fn=value_fn, **value,
                     fisher_subsample=config["fisher_subsample"], damping=config["damping"],
                     batch_steps=config["batch_steps"])
    elif name == "ppo":
        update = updates.ClampedSurrogateUpdate(
            problem, policy, m, config["clip"], alpha=config["alpha"], k_max=config["k_max"],
            value_fn=value_fn, **value, minibatches=config["minibatches"],
            anneal_steps=config["steps"] if config["anneal"] else None,
            batch_steps=config["batch_steps"])
    elif name == "restricted":
        update = updates.RestrictedPolicyUpdate(problem, policy, m)
    else:
        update = updates.PolicyGradientUpdate(RewardToGoGradient(problem, policy, m))
    return problem, policy, update
