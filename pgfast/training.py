"""The training loop (updates until a budget, with history and checkpoints), the
stop-when-solved evaluation callback, and evaluation of a policy by whole episodes.

The loop runs with BLAS limited to the threads it was given (``blas_threads``,
through threadpoolctl): BLAS threads that spin against other processes on a busy
machine make MLP training many times slower, and a result that depends on the
thread count breaks "same seed, same result".
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import ArrayLike
from threadpoolctl import threadpool_limits

from ._signals import Interrupts
from ._validation import (FolderLike, RngLike, callback_verdict, check_bool, check_callback,
                          check_finite_float, check_folder, check_positive_int, check_rng,
                          check_theta)
from .checkpoints import check_written_for, has_checkpoint, load_checkpoint, write_checkpoint
from .policies import Policy
from .problem import Problem, check_problem
from .run import RunState, history_arrays
from .updates import SupportsUpdate

__all__ = ["train", "evaluate", "StopWhenSolved"]


def train(update: SupportsUpdate, theta: ArrayLike, iterations: int | None = None,
          total_steps: int | None = None, rng: RngLike = None,
          callback: Callable[[int, np.ndarray, dict[str, Any]], object] | None = None,
          progress: bool = True, checkpoint_dir: FolderLike | None = None,
          resume: bool = False, metadata: dict[str, Any] | None = None,
          checkpoint_every: int | None = None, blas_threads: int | None = 1,
          overwrite: bool = False, logger: Any | None = None,
          num_threads: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``update.update`` until `iterations` or `total_steps` is reached.

    Parameters
    ----------
    update : pgfast update
        ``NaturalPolicyUpdate(problem, policy)``, ``TrustRegionUpdate``, ...: anything
        with ``update(theta, rng) -> (theta, info)``, a ``policy`` and ``state_dict()``.
    theta : array_like, shape (P,)
        The initial parameters (ignored when resuming).
    iterations, total_steps : int, optional
        Stop after this many updates or environment steps, whichever comes first
        (at least one of the two).
    rng : numpy.random.Generator, int or None
        All randomness; the same seed gives the same run. An int seeds a new
        Generator, None draws a fresh seed (as ``numpy.random.default_rng``).
    callback : callable(iteration, theta, info), optional
        Called after every update; returning a false value other than None
        (False, 0, ``np.False_``) stops training.
        A callback with ``state_dict()`` / ``load_state_dict()`` (a stop rule such
        as :class:`StopWhenSolved`) is part of the run's state: checkpointed and
        resumed with it.
    progress : bool
        Show a progress bar (tqdm) with the current mean return.
    checkpoint_dir : str or os.PathLike, optional
        Write a checkpoint there at the end, every `checkpoint_every` updates, and
        on Ctrl-C or SIGTERM (both raise KeyboardInterrupt after the checkpoint; a
        second signal during the write is ignored: the
        run stops right after it anyway). The folder is created at the
        first checkpoint.
    resume : bool
        Continue the run in `checkpoint_dir` (:class:`pgfast.RunState`: θ, update
        state, history, the generator's and the callback's state), so the result is
        the uninterrupted run's, bit for bit. A run its callback stopped is returned
        as it is, without another update.
    overwrite : bool
        Replace a run already in `checkpoint_dir` (without it, and without
        `resume`, a folder holding a run is refused).
    logger : object with ``log(step, scalars)``, optional
        Given each update's history row (at its cumulative environment steps) and each
        new evaluation of a :class:`StopWhenSolved` callback (``eval_mean_return``),
        e.g. :class:`pgfast.loggers.TensorBoardLogger`; whoever made it closes it.
    num_threads : int, optional
        Threads for the update's rollouts (sets its problem's ``num_threads``): the
        same run bit for bit on any count.
    metadata : dict, optional
        JSON-serialisable data stored with the checkpoint (e.g. the command line).
    checkpoint_every : int, optional
        Updates between periodic checkpoints (needs `checkpoint_dir`).
    blas_threads : int or None
        BLAS threads during training (default 1: the kernels are sized for one
        core, and the result is then the same whatever the machine's BLAS
        defaults); None leaves BLAS as it is.

    Returns
    -------
    theta : numpy.ndarray, shape (P,)
        The final parameters.
    history : dict of numpy.ndarray
        One entry per update: ``iteration``, ``steps`` (cumulative environment
        steps), ``wall_time`` (cumulative seconds in updates), ``mean_return``,
        ``kl`` and ``entropy`` (from each update's ``info``).

    Raises
    ------
    ValueError
        Neither `iterations` nor `total_steps`, a count below 1, `resume` without
        `checkpoint_dir` or with `overwrite`, a `checkpoint_dir` holding another run,
        or a `theta` of the wrong length.
    KeyboardInterrupt
        On Ctrl-C or SIGTERM, after the checkpoint is written.

    See Also
    --------
    StopWhenSolved : a callback that stops once the policy solves the task.
    evaluate : whole-episode returns of the trained policy.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.ClampedSurrogateUpdate(problem, policy, m=4, k_max=2)
    >>> rng = np.random.default_rng(0)
    >>> theta, history = pgfast.train(update, policy.init(rng), iterations=3, rng=rng,
    ...                               progress=False)
    >>> theta.shape, history["iteration"]
    ((10,), array([1, 2, 3]))
    >>> bool(np.all(np.diff(history["steps"]) > 0))
    True
    """
    rng = check_rng(rng)
    if iterations is None and total_steps is None:
        raise ValueError("iterations: give iterations or total_steps (or both)")
    if iterations is not None:
        iterations = check_positive_int(iterations, "iterations")
    if total_steps is not None:
        total_steps = check_positive_int(total_steps, "total_steps")
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if blas_threads is not None:
        blas_threads = check_positive_int(blas_threads, "blas_threads")
    progress, resume = check_bool(progress, "progress"), check_bool(resume, "resume")
    overwrite = check_bool(overwrite, "overwrite")
    callback = check_callback(callback)
    if num_threads is not None:
        update.problem.num_threads = check_positive_int(num_threads, "num_threads")
    if logger is not None and not callable(getattr(logger, "log", None)):
        raise TypeError(f"logger: expected an object with log(step, scalars), got "
                        f"{type(logger).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
    if checkpoint_dir is not None:
        checkpoint_dir = check_folder(checkpoint_dir, "checkpoint_dir")
        if resume and overwrite:
            raise ValueError("resume: continues the run in checkpoint_dir, overwrite "
                             "replaces it; give one of the two")
        if has_checkpoint(checkpoint_dir) and not (resume or overwrite):
            raise ValueError(f"checkpoint_dir: {checkpoint_dir} holds another run; pass "
                             f"resume=True to continue it or overwrite=True to replace it")
    elif resume:
        raise ValueError("resume: needs checkpoint_dir")

    run = RunState(update, theta, rng, callback)
    if resume:
        _, saved = load_checkpoint(checkpoint_dir)
        check_written_for(saved, update)
        run.load_state_dict(saved["run"])   # the update's and problem's state among it
    else:
        run.theta = check_theta(theta, update.policy.n_params)

    def save(snapshot):
        write_checkpoint(checkpoint_dir, snapshot.state_dict(), update, metadata)

    bar = _progress_bar(progress, iterations, total_steps, run.iterations, run.steps)
    limits = threadpool_limits(blas_threads, user_api="blas") if blas_threads else None
    # The state after the last whole iteration (update and callback): what an
    # interrupt saves, so that a resumed run replays the cut one exactly.
    last = run.snapshot()
    try:
        with Interrupts() as interrupts:   # one KeyboardInterrupt; later signals wait
            try:
                while not run.finished(iterations, total_steps):
                    start = time.perf_counter()
                    new_theta, info = update.update(run.theta, rng)
                    run.record(new_theta, info, time.perf_counter() - start)
                    if bar is not None:
                        bar.update(1 if total_steps is None else int(info["steps"]))
                        bar.set_postfix(mean_return=f"{info['mean_return']:.1f}")
                    evaluated = len(getattr(callback, "evaluations", ()))
                    if callback is not None:
                        verdict = callback(run.iterations, run.theta, info)
                        run.stopped = not callback_verdict(verdict)
                    if logger is not None:
                        _log(logger, run, callback, evaluated)
                    last = run.snapshot()
                    if checkpoint_every and checkpoint_dir is not None \
                            and run.iterations % checkpoint_every == 0:
                        save(last)
            except KeyboardInterrupt:
                interrupts.raised = True   # however it came: hold the next signal
                if checkpoint_dir is not None:
                    save(last)
                raise
    finally:
        if limits is not None:
            limits.restore_original_limits()
        if bar is not None:
            bar.close()
    if checkpoint_dir is not None:
        save(last)
    return run.theta, history_arrays(run.history)


def _log(logger, run, callback, evaluated):
    """The update's history row, and an evaluation the callback has just added."""
    logger.log(run.steps, {k: v[-1] for k, v in run.history.items() if k != "steps"})
    evaluations = getattr(callback, "evaluations", ())
    if len(evaluations) > evaluated:
        logger.log(run.steps, {"eval_mean_return": evaluations[-1][2]})


def _progress_bar(progress, iterations, total_steps, done_iterations, steps):
    if not progress:
        return None
    from tqdm.auto import tqdm

    if total_steps is not None:
        return tqdm(total=total_steps, initial=steps, unit="step", unit_scale=True)
    return tqdm(total=iterations, initial=done_iterations, unit="it")


def evaluate(env: str | gym.Env | Problem, policy: Policy, theta: ArrayLike, episodes: int = 100,
             rng: RngLike = None, deterministic: bool = True,
             horizon: int | None = None) -> np.ndarray:
    """Per-episode (undiscounted) returns of `episodes` episodes under θ.

    Episodes run to termination or the env's time limit (or `horizon`), all in one
    batched rollout.

    Parameters
    ----------
    env : str, gymnasium.Env or pgfast.Problem
        An env id or an env, as for :class:`pgfast.Problem` (which is built with
        γ = 1); a Problem is used as it is, observation normalisation included.
    policy : pgfast policy
        ``LinearSoftmax(4, 2)``, ``MLPGaussian(...)``, ...
    theta : array_like, shape (P,)
        The policy's parameters.
    episodes : int
        How many episodes.
    rng : numpy.random.Generator, int or None
        The episodes' randomness (initial states, and actions unless deterministic);
        an int seeds a new Generator, None draws a fresh seed.
    deterministic : bool
        Act by the policy's mode (argmax / mean) instead of sampling.
    horizon : int, optional
        The longest episode, for envs without a time limit.

    Returns
    -------
    numpy.ndarray, shape (episodes,)
        The sum of each episode's rewards.

    Raises
    ------
    ValueError
        `episodes` below 1, a `theta` of the wrong length, an env without a time
        limit and no `horizon`, or a policy that does not fit the env's spaces.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> theta = np.zeros(policy.n_params)      # uniform policy; its mode is action 0
    >>> returns = pgfast.evaluate("CartPole-v1", policy, theta, episodes=5,
    ...                           rng=np.random.default_rng(0))
    >>> returns.shape, bool(returns.max() < 20)   # always pushing left falls fast
    ((5,), True)
    """
    rng = check_rng(rng)
    episodes = check_positive_int(episodes, "episodes")
    deterministic = check_bool(deterministic, "deterministic")
    problem = env if isinstance(env, Problem) else Problem(env, gamma=1.0, horizon=horizon)
    check_problem(problem, policy)
    problem.check_batch(episodes, "episodes")
    theta = check_theta(theta, policy.n_params)
    traj = problem.rollouts(policy, theta, episodes, rng, deterministic=deterministic)
    return traj.returns(1.0)


class StopWhenSolved:
    """A ``train`` callback: every `every` updates, evaluate θ by `episodes`
    deterministic episodes; stop once the mean return reaches `threshold`, and keep
    the best parameters seen.

    A screening mean at or above the threshold is confirmed on `confirm_episodes`
    episodes before training stops (a 10-episode mean is too noisy to call a task
    solved): the confirmation's mean minus `confidence` standard errors must reach
    the threshold. Stopping at the first pass otherwise keeps policies whose true
    mean is just below it (Pendulum's returns have a spread of ~130 per episode,
    13 on a 100-episode mean). Evaluation draws from its own generator `rng`, so
    the training run itself does not depend on how often it is evaluated.
    Evaluation episodes run on `problem` with its observation statistics frozen.

    After training: ``solved``; ``best_theta`` and ``best_score``; ``best_raw_theta``,
    ``best_theta`` folded with the observation statistics it was evaluated under (the
    same array without normalisation: the statistics drift, so folding the best θ
    with the final ones gives another policy); ``solved_at`` = (update, environment
    steps); ``evaluations``, one (update, steps, score) per evaluation, for learning
    curves.

    Parameters
    ----------
    problem : pgfast.Problem
        The problem being trained (its returns are summed undiscounted here).
    policy : pgfast policy
        The policy being trained.
    threshold : float or None
        The mean return at which the task counts as solved; None (an env without
        one) evaluates and keeps the best θ without ever stopping.
    rng : numpy.random.Generator
        The evaluations' own generator.
    every : int
        Updates between evaluations.
    episodes : int
        Episodes of the screening evaluation.
    confirm_episodes : int
        Episodes of the confirmation.
    confidence : float
        Standard errors the confirmation's mean must clear the threshold by
        (0 compares the mean alone).

    Raises
    ------
    ValueError
        A non-finite threshold, a count below 1 or a negative `confidence`.

    Examples
    --------
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.ClampedSurrogateUpdate(problem, policy, m=4, k_max=2)
    >>> stop = pgfast.StopWhenSolved(problem, policy, threshold=20.0,
    ...                              rng=np.random.default_rng(1), episodes=5,
    ...                              confirm_episodes=10)
    >>> rng = np.random.default_rng(0)
    >>> theta, history = pgfast.train(update, policy.init(rng), iterations=20, rng=rng,
    ...                               callback=stop, progress=False)
    >>> len(stop.evaluations) == len(history["iteration"])
    True
    >>> stop.solved == (len(history["iteration"]) < 20)   # stopped early iff solved
    True
    """

    def __init__(self, problem, policy, threshold, rng, every=1, episodes=10,
                 confirm_episodes=100, confidence=1.0):
        check_problem(problem, policy)
        self.problem, self.policy = problem, policy
        self.threshold = None if threshold is None else check_finite_float(threshold,
                                                                            "threshold")
        self.rng = check_rng(rng)
        self.every = check_positive_int(every, "every")
        self.episodes = check_positive_int(episodes, "episodes")
        self.confirm_episodes = check_positive_int(confirm_episodes, "confirm_episodes")
        self.confidence = check_finite_float(confidence, "confidence", minimum=0.0)
        self.best_theta, self.best_raw_theta, self.best_score = None, None, -np.inf
        self.solved, self.solved_at = False, None
        self.evaluations = []
        self._steps = 0

    def state_dict(self):
        """The rule's state, for checkpoints (a resumed run stops as the uninterrupted
        one would, and keeps the same best θ).

        Returns
        -------
        dict
            ``rng`` (the evaluations' generator state), ``steps`` (environment steps
            seen), ``evaluations`` (array of rows: update, steps, score),
            ``best_theta``, ``best_raw_theta`` and ``best_score`` (None before any
            evaluation), ``solved`` and ``solved_at``.
        """
        best = self.best_theta is not None
        return {"rng": copy.deepcopy(self.rng.bit_generator.state), "steps": self._steps,
                "evaluations": np.array(self.evaluations, dtype=np.float64).reshape(-1, 3),
                "best_theta": np.array(self.best_theta) if best else None,
                "best_raw_theta": np.array(self.best_raw_theta) if best else None,
                "best_score": self.best_score if best else None,
                "solved": self.solved,
                "solved_at": list(self.solved_at) if self.solved_at else None}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state : dict
            From :meth:`state_dict` (or a checkpoint's ``callback``).

        Raises
        ------
        ValueError
            A best θ that does not fit the policy.
        """
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self._steps = int(state["steps"])
        self.evaluations = [(int(i), int(s), float(score))
                            for i, s, score in np.asarray(state["evaluations"]).reshape(-1, 3)]
        if state["best_theta"] is None:
            self.best_theta, self.best_raw_theta, self.best_score = None, None, -np.inf
        else:
            n = self.policy.n_params
            self.best_theta = check_theta(state["best_theta"], n, "best_theta")
            self.best_raw_theta = check_theta(state["best_raw_theta"], n, "best_raw_theta")
            self.best_score = float(state["best_score"])
        self.solved = bool(state["solved"])
        at = state["solved_at"]
        self.solved_at = None if at is None else (int(at[0]), int(at[1]))

    def returns(self, theta, episodes):
        """The undiscounted returns of `episodes` deterministic episodes under θ.

        Parameters
        ----------
        theta : array_like, shape (P,)
            The policy's parameters.
        episodes : int
            How many episodes, drawn from the callback's own generator.

        Returns
        -------
        numpy.ndarray, shape (episodes,)
            Each episode's sum of rewards.
        """
        traj = self.problem.rollouts(self.policy, theta, episodes, self.rng, deterministic=True)
        return traj.returns(1.0)

    def __call__(self, iteration, theta, info):
        self._steps += int(info["steps"])
        if iteration % self.every:
            return None
        returns = self.returns(theta, self.episodes)
        solved = False
        if self.threshold is not None and returns.mean() >= self.threshold:
            returns = self.returns(theta, self.confirm_episodes)
            error = returns.std() / np.sqrt(returns.size)
            solved = returns.mean() - self.confidence * error >= self.threshold
        score = float(returns.mean())
        self.evaluations.append((iteration, self._steps, score))
        if score > self.best_score:
            self.best_theta, self.best_score = np.array(theta), score
            normalizer = self.problem.obs_normalizer
            self.best_raw_theta = self.best_theta if normalizer is None \
                else normalizer.fold(self.policy, theta)
        if solved:
            self.solved, self.solved_at = True, (iteration, self._steps)
            return False
        return None
