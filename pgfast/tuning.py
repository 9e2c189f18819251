"""Hyperparameter search with Optuna: the settings of a ``pgfast train`` run, found by TPE
and pruned on the evaluation curve (``pgfast tune ENV --trials N``).

A trial draws settings from :data:`SPACES` (the keys of :data:`pgfast.defaults.GENERIC`,
per update kind), trains ``seeds`` runs of ``steps`` environment steps each on seeds
of its own, reports the deterministic evaluations along the way (from halfway through
its first run, Optuna's median pruner stops a trial whose curve falls below the other
trials' median) and scores
the final policies' mean return. The study lives in ``DIR/study.db`` (SQLite): run
the same command again to add trials to it. Optuna is an optional extra:
``pip install "pgfast[tune]"``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import factory
from ._validation import check_folder, check_positive_int
from .training import train

__all__ = ["SPACES", "tune", "suggest", "best_settings", "TUNE_HINT"]

TUNE_HINT = 'pip install "pgfast[tune]"'
STUDY_NAME = "pgfast"
STUDY_FILE = "study.db"
# Evaluations per seed along a trial's run, reported to the pruner.
_REPORTS = 10

#: What a trial draws, per update kind ("common" for every kind that fits a value
#: function): ("log", low, high) log-uniform, ("int", low, high), ("float", low, high)
#: uniform, or ("choice", options). Keys are settings of pgfast.defaults.GENERIC.
SPACES = {
    "common": {"gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
               "lam": ("choice", [0.8, 0.9, 0.95, 0.97, 0.99, 1.0]),
               "m": ("choice", [2, 4, 8, 16, 32]),
               "normalize": ("choice", [False, True]),
               "value_lr": ("log", 1e-4, 1e-2),
               "value_epochs": ("choice", [5, 10, 20])},
    "trpo": {"epsilon": ("log", 1e-3, 1e-1)},
    "natural": {"epsilon": ("log", 1e-3, 1e-1)},
    "ppo": {"clip": ("choice", [0.1, 0.2, 0.3]), "alpha": ("log", 1e-4, 1e-2),
            "k_max": ("int", 3, 20), "minibatches": ("choice", [1, 2, 4, 8, 16, 32]),
            "anneal": ("choice", [False, True])},
    "restricted": {"gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
                   "m": ("choice", [2, 4, 8, 16, 32])},
    "ascent": {"gamma": ("choice", [0.9, 0.95, 0.98, 0.99, 0.995, 0.999]),
               "m": ("choice", [2, 4, 8, 16, 32])},
    # by the policy: the Gaussian's initial log σ, an MLP's widths
    "gaussian": {"log_std": ("float", -2.0, 1.0)},
    "mlp": {"hidden": ("choice", ["32,32", "64,64", "128,128"])},
}


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError(f"pgfast tune needs Optuna: {TUNE_HINT}") from None
    return optuna


def suggest(trial, update, policy_kind, discrete):
    """The settings `trial` draws for an update kind and policy (a dict by setting).

    Parameters
    ----------
    trial : optuna.Trial
        The trial drawing them.
    update : str
        One of :data:`pgfast.defaults.UPDATES`.
    policy_kind : {"linear", "mlp"}
        The kind of policy.
    discrete : bool
        Whether the actions are discrete (no log σ to draw).

    Returns
    -------
    dict
        Settings, as ``pgfast train --set`` takes them.

    Examples
    --------
    >>> import optuna
    >>> from pgfast.tuning import suggest
    >>> trial = optuna.create_study().ask()
    >>> sorted(suggest(trial, "ppo", "linear", discrete=True))   # doctest: +NORMALIZE_WHITESPACE
    ['alpha', 'anneal', 'clip', 'gamma', 'k_max', 'lam', 'm', 'minibatches', 'normalize',
     'value_epochs', 'value_lr']
    """
    spaces = {} if update in ("restricted", "ascent") else dict(SPACES["common"])
    spaces.update(SPACES[update])
    if not discrete:
        spaces.update(SPACES["gaussian"])
    if policy_kind == "mlp":
        spaces.update(SPACES["mlp"])
    drawn = {}
    for key, (kind, *bounds) in spaces.items():
        if kind == "log":
            drawn[key] = trial.suggest_float(key, *bounds, log=True)
        elif kind == "float":
            drawn[key] = trial.suggest_float(key, *bounds)
        elif kind == "int":
            drawn[key] = trial.suggest_int(key, *bounds)
        else:
            drawn[key] = trial.suggest_categorical(key, bounds[0])
    if "hidden" in drawn:
        drawn["hidden"] = tuple(int(w) for w in drawn["hidden"].split(","))
    return drawn


class _Reporter:
    """A train callback: evaluates θ at _REPORTS evenly spaced step counts and reports
    each score to the trial (step = the steps of this trial's runs so far)."""

    def __init__(self, trial, problem, policy, rng, steps, offset, episodes):
        self.trial, self.problem, self.policy, self.rng = trial, problem, policy, rng
        self.every, self.offset, self.episodes = max(1, steps // _REPORTS), offset, episodes
        self.done, self.next = 0, max(1, steps // _REPORTS)

    def __call__(self, iteration, theta, info):
        self.done += int(info["steps"])
        if self.done < self.next:
            return None
        self.next = (self.done // self.every + 1) * self.every
        traj = self.problem.rollouts(self.policy, theta, self.episodes, self.rng,
                                     deterministic=True)
        self.trial.report(float(traj.returns(1.0).mean()), self.offset + self.done)
        if self.trial.should_prune():
            raise _optuna().TrialPruned()
        return None


def _objective(trial, env, policy_kind, update, steps, seeds, episodes, horizon):
    try:
        return _score(trial, env, policy_kind, update, steps, seeds, episodes, horizon)
    except ValueError as exc:
        trial.set_user_attr("failed", str(exc))
        raise


def _score(trial, env, policy_kind, update, steps, seeds, episodes, horizon):
    """The mean return of the trial's runs (each reported to the pruner as it goes)."""
    discrete = _is_discrete(env, horizon)
    drawn = suggest(trial, update, policy_kind, discrete)
    config, _ = factory.settings(env, policy_kind, {**drawn, "update": update, "steps": steps})
    own_seeds = [trial.number * seeds + k for k in range(seeds)]   # no other trial's
    trial.set_user_attr("seeds", own_seeds)
    scores = []
    for k, seed in enumerate(own_seeds):
        problem, policy, run = factory.build(env, policy_kind, config, horizon)
        rng = np.random.default_rng(seed)
        judge = _Reporter(trial, problem, policy, np.random.default_rng([seed, 1]), steps,
                          k * steps, episodes)
        theta, _ = train(run, policy.init(rng), total_steps=steps, rng=rng, callback=judge,
                         progress=False)
        traj = problem.rollouts(policy, theta, episodes, np.random.default_rng([seed, 2]),
                                deterministic=True)
        scores.append(float(traj.returns(1.0).mean()))
    return float(np.mean(scores))


def _is_discrete(env, horizon):
    from .problem import Problem

    return hasattr(Problem(env, horizon=horizon).action_space, "n")


def _run_worker(folder, env, policy_kind, update, steps, seeds, episodes, horizon, trials,
                sampler_seed):
    """One process's share of the search: trials until the study holds `trials`."""
    optuna = _optuna()
    study = _study(folder, sampler_seed, steps)
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
               optuna.trial.TrialState.RUNNING)
    if len(study.get_trials(deepcopy=False, states=counted)) >= trials:
        return   # a resumed study that already holds them
    stop = optuna.study.MaxTrialsCallback(trials, states=counted)
    study.optimize(lambda t: _objective(t, env, policy_kind, update, steps, seeds, episodes,
                                        horizon),
                   # Settings an update refuses (e.g. more minibatches than a batch of
                   # short episodes has steps) fail that trial, not the search.
                   callbacks=[stop, _say], catch=(ValueError,))


def _say(study, trial):
    if trial.state.name == "COMPLETE":
        print(f"trial {trial.number}: {trial.value:.1f}", flush=True)
    else:
        reason = trial.user_attrs.get("failed")
        print(f"trial {trial.number}: {trial.state.name.lower()}"
              + (f" ({reason})" if reason else ""), flush=True)


def _study(folder, sampler_seed, steps):
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)   # _say reports each trial
    # Pruning starts halfway through a trial's first run: early evaluations are noise
    # (every Pendulum policy scores about -1200 then), and stopping on them pruned 14 of 20
    # trials of a search whose best then lost to the table entry.
    return optuna.create_study(
        study_name=STUDY_NAME, storage=f"sqlite:///{Path(folder) / STUDY_FILE}",
        load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=steps // 2))


def tune(env, folder, trials, steps=None, policy=None, update=None, seeds=1, episodes=10,
         horizon=None, workers=1, seed=0):
    """Search the settings of ``pgfast train ENV`` with Optuna; the study.

    Parameters
    ----------
    env : str
        An env id.
    folder : str or os.PathLike
        The study's folder: ``study.db`` is created there, or continued.
    trials : int
        The trials the study should hold when done (finished, pruned or running),
        counting those of earlier runs.
    steps : int, optional
        Environment steps of each training run (default: the env's table entry).
    policy : {"linear", "mlp"}, optional
        Default: the env's entry in :data:`pgfast.defaults.POLICY`.
    update : str, optional
        The update kind searched (default: the env's table entry).
    seeds : int, default 1
        Training runs per trial, each on a seed no other trial uses.
    episodes : int, default 10
        Deterministic episodes of each evaluation.
    horizon : int, optional
        The rollout depth, for envs without a time limit.
    workers : int, default 1
        Processes searching at once, sharing the study.
    seed : int, default 0
        Seeds TPE's sampler (each worker's: seed + its index).

    Returns
    -------
    optuna.Study
        The study, loaded from ``study.db``.

    Raises
    ------
    ImportError
        Optuna is not installed (``pip install "pgfast[tune]"``).
    ValueError
        A count below 1, or a policy or update kind pgfast does not know.

    Examples
    --------
    >>> import tempfile
    >>> from pgfast.tuning import best_settings, tune
    >>> study = tune("CartPole-v1", tempfile.mkdtemp(), trials=2, steps=500, episodes=2)
    trial 0: ...
    trial 1: ...
    >>> len(study.trials), sorted(best_settings(study))[:3]
    (2, ['alpha', 'anneal', 'clip'])
    """
    folder = check_folder(folder, "folder")
    trials = check_positive_int(trials, "trials")
    seeds = check_positive_int(seeds, "seeds")
    episodes = check_positive_int(episodes, "episodes")
    workers = check_positive_int(workers, "workers")
    policy = policy or factory.policy_kind(env)
    config, _ = factory.settings(env, policy, {"update": update} if update else None)
    update = config["update"]
    steps = check_positive_int(steps if steps is not None else config["steps"], "steps")
    _optuna()
    folder.mkdir(parents=True, exist_ok=True)
    args = (folder, env, policy, update, steps, seeds, episodes, horizon, trials)
    _study(folder, seed, steps)   # create it once, before workers race to
    if workers == 1:
        _run_worker(*args, seed)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # Spawned, not forked: a fork would copy this process's BLAS threads and locks.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            for done in [pool.submit(_run_worker, *args, seed + i) for i in range(workers)]:
                done.result()
    study = _study(folder, seed, steps)
    study.set_user_attr("search", {"env": env, "policy": policy, "update": update,
                                   "steps": steps, "seeds": seeds, "episodes": episodes})
    return study


def best_settings(study):
    """The best trial's settings, as ``pgfast train --set`` and the table take them.

    Parameters
    ----------
    study : optuna.Study
        A study :func:`tune` ran.

    Returns
    -------
    dict
        Settings by key (``hidden`` as a tuple of widths).

    Raises
    ------
    ValueError
        The study has no finished trial.

    Examples
    --------
    See :func:`tune`.
    """
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not finished:
        raise ValueError("study: no trial has finished (all pruned or failed)")
    params = dict(study.best_trial.params)
    if "hidden" in params:
        params["hidden"] = tuple(int(w) for w in params["hidden"].split(","))
    return params
