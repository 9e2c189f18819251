"""Per-environment training defaults: one table, the way rl-baselines3-zoo keeps its
hyperparameters, and the one place that turns a table entry into a problem, a
policy and an update.

``TABLE[env][policy]`` gives the update that learns `env` with that kind of policy
and its settings, and under an update's name the settings for that update when
another one is chosen (``--update ppo``); :func:`settings` merges it over the generic defaults
(:data:`GENERIC`, also used for any env not in the table) and the caller's
overrides, and says where each value came from. ``THRESHOLDS`` holds the mean
return at which an env counts as solved (Gymnasium's ``reward_threshold`` where it
has one).

Keys of a settings dict (every one can be overridden, ``pgfast train --set k=v``)::

    update        "trpo", "ppo", "natural", "restricted" or "ascent"
    steps         environment-step budget
    gamma, lam    discount and GAE λ
    m             trajectories per update
    hidden        MLP widths of the policy (and its value function) when policy="mlp"
    normalize     running observation normalisation (Problem(normalize_observations=))
    scale_rewards rewards over the running σ of the discounted return, for the value
                  function and advantages (ValueBaseline(scale_rewards=))
    epsilon       trust region of TRPO and the natural update
    clip          PPO's clip range
    alpha         PPO's Adam step size
    k_max, minibatches, anneal    PPO epochs, minibatches per epoch, step-size annealing
    fisher_subsample              TRPO/natural: Fisher products on every k-th step
    value_lr, value_epochs, value_minibatch   how an MLP value function is fitted
    log_std       initial log σ of a Gaussian policy
    eval_every    updates between the stop-when-solved evaluations (of 10 episodes each)
"""
from __future__ import annotations

from . import updates
from .baselines import ValueBaseline
from .estimators import RewardToGoGradient
from .policies import LinearValue, MLPValue, policy_for
from .problem import Problem

__all__ = ["TABLE", "GENERIC", "THRESHOLDS", "POLICY", "policy_kind", "threshold", "settings", "build", "UPDATES"]

UPDATES = ("trpo", "ppo", "natural", "restricted", "ascent")

GENERIC = {
    "update": "trpo", "steps": 300_000, "gamma": 0.99, "lam": 0.97, "m": 16,
    "hidden": (64, 64), "normalize": False, "scale_rewards": False, "epsilon": 0.01, "clip": 0.2,
    "alpha": 3e-3, "k_max": 10,
    "minibatches": 1, "anneal": False, "fisher_subsample": 1, "value_lr": 1e-3,
    "value_epochs": 5, "value_minibatch": 256, "log_std": 0.0, "eval_every": 1,
}

# The policy kind `pgfast train ENV` uses when --policy is not given.
# A linear softmax on MountainCar tops out near -106 (CEM over its 9 parameters), too
# close to the -110 threshold for policy-gradient training to reach reliably.
POLICY = {"MountainCar-v0": "mlp", "Pendulum-v1": "mlp", "Hopper-v5": "mlp",
          "HalfCheetah-v5": "mlp"}

THRESHOLDS = {
    "CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0,
    "MountainCarContinuous-v0": 90.0, "Pendulum-v1": -200.0,
    # Gymnasium's, so no run stops early within 1M steps: these keep the best policy seen.
    "Hopper-v5": 3800.0, "HalfCheetah-v5": 4800.0,
}

# Measured with benchmarks/bench_training.py (seeds 0-4, 100 deterministic episodes).
TABLE = {
    "CartPole-v1": {
        # PPO solved seeds 0-14 in 31k-42k steps; TRPO solved them too, in 1k-395k.
        "linear": {"update": "ppo", "steps": 200_000, "trpo": {"steps": 400_000}},
        "mlp": {"update": "trpo", "steps": 100_000, "m": 10, "fisher_subsample": 5,
                "value_epochs": 10, "value_minibatch": 64,
                "ppo": {"minibatches": 4, "k_max": 5}},
    },
    "Acrobot-v1": {
        "linear": {"update": "ppo", "steps": 300_000, "normalize": True, "lam": 0.95,
                   "alpha": 1e-2},
        "mlp": {"update": "trpo", "steps": 300_000, "normalize": True,
                "fisher_subsample": 5},
    },
    "MountainCar-v0": {
        "linear": {"update": "trpo", "steps": 300_000, "normalize": True},
        # Solved seeds 0-29 in 17k-196k steps, median 70k, 26 of them within 100k
        # (rl-baselines3-zoo's TRPO budget); with λ = 0.97 and 5 value epochs, seeds
        # 0-34 took 90k-406k (median 154k).
        "mlp": {"update": "trpo", "steps": 1_000_000, "normalize": True, "m": 4,
                "fisher_subsample": 5, "lam": 0.95, "value_epochs": 20},
    },
    "MountainCarContinuous-v0": {
        # Solved 78 of seeds 0-79, median 18k-19k steps (seeds 0-4: 11.6k-14.2k); with
        # m = 8, σ = e^0.5 and Adam 3e-3, 78 of 80 with a median of 44k-50k. TRPO at
        # σ = 1, γ = 0.99, m = 16 solved 24 of seeds 0-29 and stalled at 0 on 4.
        "linear": {"update": "ppo", "steps": 300_000, "normalize": True, "m": 4,
                   "gamma": 0.999, "log_std": 1.0, "alpha": 5e-3},
        "mlp": {"update": "trpo", "steps": 300_000, "normalize": True,
                "fisher_subsample": 5},
    },
    "Pendulum-v1": {
        "linear": {"update": "trpo", "steps": 300_000, "normalize": True, "gamma": 0.9},
        "mlp": {"update": "trpo", "steps": 300_000, "normalize": True, "gamma": 0.9,
                "lam": 0.95, "epsilon": 0.02, "fisher_subsample": 5, "value_epochs": 10,
                "value_minibatch": 64,
                "ppo": {"alpha": 1e-3, "minibatches": 32, "anneal": True}},
    },
    # Measured with `pgfast train ENV [--update ppo] --seed S`, seeds 0-2, 100
    # deterministic episodes, 1M steps, on one core. Hopper TRPO: 3525, 3361, 3218 in
    # 91-106 CPU s (py-spy, seed 0: the training rollouts 58%, the value fit 13%, the
    # evaluations every 10th update 12%); PPO: 3137, 3139, 2995 in 119-123 CPU s.
    "Hopper-v5": {
        "mlp": {"update": "trpo", "steps": 1_000_000, "normalize": True, "lam": 0.95, "m": 8,
                "fisher_subsample": 5, "value_epochs": 10, "value_minibatch": 128,
                "eval_every": 10,
                "ppo": {"alpha": 3e-4, "minibatches": 32, "anneal": True}},
    },
    # TRPO: 3852, 4288, 3166 in 62-71 CPU s (rollouts 40%, value fit 19%, evaluations
    # 19%); PPO: 3634, 3976, 4632 in 87-89 CPU s. Episodes never end early: m=4 is 4000
    # steps an update.
    "HalfCheetah-v5": {
        "mlp": {"update": "trpo", "steps": 1_000_000, "normalize": True, "lam": 0.95, "m": 4,
                "fisher_subsample": 5, "value_epochs": 10, "value_minibatch": 128,
                "eval_every": 5,
                "ppo": {"alpha": 3e-4, "minibatches": 32, "anneal": True}},
    },
}


def threshold(env):
    """The mean return at which `env` counts as solved.

    Parameters
    ----------
    env : str
        An env id.

    Returns
    -------
    float or None
        :data:`THRESHOLDS`'s entry, else Gymnasium's ``reward_threshold``; None when
        neither knows one (then ``pgfast train`` trains its whole budget).

    Examples
    --------
    >>> from pgfast import defaults
    >>> defaults.threshold("CartPole-v1"), defaults.threshold("Pendulum-v1")
    (475.0, -200.0)
    >>> defaults.threshold("pgfast/SimpleRegulator-v0") is None
    True
    """
    if env in THRESHOLDS:
        return THRESHOLDS[env]
    try:
        import gymnasium

        value = gymnasium.spec(env).reward_threshold
    except Exception:   # an unregistered id: the env check reports it later
        return None
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
        ``"mlp"`` for the envs in :data:`POLICY`, else ``"linear"``.

    Examples
    --------
    >>> from pgfast import defaults
    >>> defaults.policy_kind("Pendulum-v1"), defaults.policy_kind("CartPole-v1")
    ('mlp', 'linear')
    """
    return POLICY.get(env, "linear")


def settings(env, policy="linear", overrides=None):
    """The settings ``pgfast train`` uses for `env` and `policy`, and where each came from.

    :data:`GENERIC`, then the table's entry for `env` and `policy` (with the entry
    for the chosen update, when there is one, over it), then `overrides`.

    Parameters
    ----------
    env : str
        An env id (any id: one not in :data:`TABLE` takes the generic settings).
    policy : {"linear", "mlp"}
        The kind of policy.
    overrides : dict, optional
        Settings of the caller (``--set``), by the keys of :data:`GENERIC`.

    Returns
    -------
    settings : dict
        Every key of :data:`GENERIC` with its value for this run.
    sources : dict
        For each key, ``"generic"``, ``"table"`` or ``"override"``.

    Raises
    ------
    ValueError
        An unknown policy kind, key of `overrides` or update name.

    Examples
    --------
    >>> from pgfast import defaults
    >>> config, sources = defaults.settings("Pendulum-v1", "mlp", {"update": "ppo"})
    >>> config["update"], config["alpha"], sources["alpha"], config["gamma"]
    ('ppo', 0.001, 'table', 0.9)
    >>> defaults.settings("CartPole-v1", "linear", {"m": 8})[1]["m"]
    'override'
    """
    if policy not in ("linear", "mlp"):
        raise ValueError(f"policy: expected 'linear' or 'mlp', got {policy!r}")
    merged = dict(GENERIC)
    sources = dict.fromkeys(GENERIC, "generic")
    entry = TABLE.get(env, {}).get(policy, {})
    overrides = dict(overrides or {})
    update = overrides.get("update", entry.get("update", GENERIC["update"]))
    entry = {**{k: v for k, v in entry.items() if k not in UPDATES}, **entry.get(update, {})}
    merged.update(entry)
    sources.update(dict.fromkeys(entry, "table"))
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
    >>> from pgfast import defaults
    >>> config, _ = defaults.settings("CartPole-v1", "mlp")
    >>> problem, policy, update = defaults.build("CartPole-v1", "mlp", config)
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
    baseline = ValueBaseline(value_fn, config["lam"], fit_iterations=config["value_epochs"],
                             lr=config["value_lr"], minibatch_size=config["value_minibatch"],
                             scale_rewards=bool(config["scale_rewards"]))
    name, m = config["update"], config["m"]
    if name in ("trpo", "natural"):
        cls = updates.TrustRegionUpdate if name == "trpo" else updates.NaturalPolicyUpdate
        update = cls(problem, policy, m, config["epsilon"], value_fn=baseline,
                     fisher_subsample=config["fisher_subsample"])
    elif name == "ppo":
        update = updates.ClampedSurrogateUpdate(
            problem, policy, m, config["clip"], alpha=config["alpha"], k_max=config["k_max"],
            value_fn=baseline, minibatches=config["minibatches"],
            anneal_steps=config["steps"] if config["anneal"] else None)
    elif name == "restricted":
        update = updates.RestrictedPolicyUpdate(problem, policy, m)
    else:
        update = updates.PolicyGradientUpdate(RewardToGoGradient(problem, policy, m))
    return problem, policy, update
