"""The training loop (updates until a budget, with history and checkpoints) and
evaluation of a policy by whole episodes."""
from __future__ import annotations

import time

import numpy as np

from ._validation import check_positive_int, check_rng, check_theta
from .checkpoints import load_checkpoint, save_checkpoint
from .problem import Problem, check_problem

__all__ = ["train", "evaluate"]

HISTORY_KEYS = ("iteration", "steps", "wall_time", "mean_return", "kl", "entropy")


def train(update, theta, iterations=None, total_steps=None, rng=None, callback=None,
          progress=True, checkpoint_dir=None, resume=False, metadata=None):
    """Run ``update.update`` until `iterations` or `total_steps` is reached.

    Parameters
    ----------
    update : a pgfast update (``NaturalPolicyUpdate(problem, policy)`` ...)
    theta : (P,) initial parameters (ignored when resuming).
    iterations, total_steps : int, optional
        Stop after this many updates or environment steps, whichever comes first.
    rng : numpy.random.Generator, int or None
        All randomness; the same seed gives the same run. An int seeds a new
        Generator, None draws a fresh seed (as ``numpy.random.default_rng``).
    callback : callable(iteration, theta, info), optional
        Called after every update; returning a false value other than None
        (False, 0, np.False_) stops training.
    progress : bool
        Show a progress bar (tqdm) with the current mean return.
    checkpoint_dir : path, optional
        Write a checkpoint there at the end, and on Ctrl-C before re-raising.
    resume : bool
        Continue from the checkpoint in `checkpoint_dir`: θ, update state, history
        and the generator's state, so the run goes on exactly where it stopped.
    metadata : dict, optional
        JSON-serialisable data stored with the checkpoint (e.g. the command line).

    Returns
    -------
    theta : the final parameters
    history : dict of arrays, one entry per iteration: iteration, steps (cumulative),
        wall_time (cumulative seconds), mean_return, kl, entropy.
    """
    rng = check_rng(rng)
    if iterations is None and total_steps is None:
        raise ValueError("iterations: give iterations or total_steps (or both)")
    if iterations is not None:
        iterations = check_positive_int(iterations, "iterations")
    if total_steps is not None:
        total_steps = check_positive_int(total_steps, "total_steps")
    history = {k: [] for k in HISTORY_KEYS}
    if resume:
        if checkpoint_dir is None:
            raise ValueError("resume: needs checkpoint_dir")
        theta, saved = load_checkpoint(checkpoint_dir, update=update)
        rng.bit_generator.state = saved["rng_state"]
        history = {k: list(v) for k, v in saved["history"].items()}
    theta = check_theta(theta, update.policy.n_params)

    done_iterations = len(history["iteration"])
    steps = int(history["steps"][-1]) if done_iterations else 0
    elapsed = float(history["wall_time"][-1]) if done_iterations else 0.0
    bar = _progress_bar(progress, iterations, total_steps, done_iterations, steps)
    try:
        while (iterations is None or done_iterations < iterations) and \
                (total_steps is None or steps < total_steps):
            start = time.perf_counter()
            theta, info = update.update(theta, rng)
            elapsed += time.perf_counter() - start
            done_iterations += 1
            steps += int(info["steps"])
            for key, value in zip(HISTORY_KEYS, (done_iterations, steps, elapsed,
                                                 info["mean_return"], info["kl"],
                                                 info["entropy"])):
                history[key].append(value)
            if bar is not None:
                bar.update(1 if total_steps is None else int(info["steps"]))
                bar.set_postfix(mean_return=f"{info['mean_return']:.1f}")
            if callback is not None:
                verdict = callback(done_iterations, theta, info)
                if verdict is not None and not verdict:   # None (no verdict) goes on
                    break
    except KeyboardInterrupt:
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, theta, update, _arrays(history), rng, metadata)
        raise
    finally:
        if bar is not None:
            bar.close()
    history = _arrays(history)
    if checkpoint_dir is not None:
        save_checkpoint(checkpoint_dir, theta, update, history, rng, metadata)
    return theta, history


def _arrays(history):
    return {k: np.asarray(v, dtype=np.int64 if k in ("iteration", "steps") else np.float64)
            for k, v in history.items()}


def _progress_bar(progress, iterations, total_steps, done_iterations, steps):
    if not progress:
        return None
    from tqdm.auto import tqdm

    if total_steps is not None:
        return tqdm(total=total_steps, initial=steps, unit="step", unit_scale=True)
    return tqdm(total=iterations, initial=done_iterations, unit="it")


def evaluate(env, policy, theta, episodes=100, rng=None, deterministic=True, horizon=None):
    """Per-episode (undiscounted) returns of `episodes` episodes under θ.

    `env` is an id or an env, as for :class:`pgfast.Problem`; episodes run to
    termination or the env's time limit (or `horizon`). ``deterministic`` acts by the
    policy's mode (argmax / mean) instead of sampling. `rng` is a Generator, an int
    seed or None for a fresh seed (as ``numpy.random.default_rng``).
    """
    rng = check_rng(rng)
    episodes = check_positive_int(episodes, "episodes")
    problem = env if isinstance(env, Problem) else Problem(env, gamma=1.0, horizon=horizon)
    check_problem(problem, policy)
    problem.check_batch(episodes, "episodes")
    theta = check_theta(theta, policy.n_params)
    traj = problem.rollouts(policy, theta, episodes, rng, deterministic=deterministic)
    return traj.returns(1.0)
