"""The state of one training run, owned in one place.

A run is θ, the update's state (optimiser moments, value baseline, return
statistics, step counters), the problem's (observation statistics), the generator's state, the history, and the stop
rule's state (the callback's, when it has ``state_dict``), plus whether that rule
ended the run. :class:`RunState` holds them; its nested :meth:`RunState.state_dict`
is what a checkpoint writes and :meth:`RunState.load_state_dict` what a resume
reads, so a resumed run is the uninterrupted one.
"""
from __future__ import annotations

import copy

import numpy as np

from ._validation import check_theta

__all__ = ["RunState", "HISTORY_KEYS"]

HISTORY_KEYS = ("iteration", "steps", "wall_time", "mean_return", "kl", "entropy")


def history_arrays(history, rows=None):
    """The history's columns as arrays (counts as int64, the rest float64), cut to
    its first `rows` rows."""
    return {k: np.asarray(v[:rows], dtype=np.int64 if k in ("iteration", "steps")
                          else np.float64)
            for k, v in history.items()}


def has_state(obj):
    """Whether `obj` (a callback, say) keeps state a checkpoint should carry."""
    return callable(getattr(obj, "state_dict", None)) and \
        callable(getattr(obj, "load_state_dict", None))


class RunState:
    """θ, the update, the generator, the history and the stop rule of a training run.

    Parameters
    ----------
    update : pgfast update
        Its ``state_dict()`` / ``load_state_dict()`` carry its state.
    theta : ndarray, shape (P,)
        The current parameters.
    rng : numpy.random.Generator
        The run's generator (its state is part of the run's).
    callback : callable, optional
        The stop rule; its state is part of the run's when it has ``state_dict`` and
        ``load_state_dict`` (as :class:`pgfast.StopWhenSolved` does).

    Attributes
    ----------
    history : dict of list
        One entry per finished update (see :data:`HISTORY_KEYS`).
    stopped : bool
        The callback ended the run (for a stop rule: the task is solved).

    Examples
    --------
    :func:`pgfast.train` keeps one; a checkpoint is its :meth:`state_dict`:

    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.ClampedSurrogateUpdate(problem, policy, m=2, k_max=1)
    >>> rng = np.random.default_rng(0)
    >>> run = pgfast.RunState(update, policy.init(rng), rng)
    >>> new_theta, info = update.update(run.theta, rng)
    >>> run.record(new_theta, info, seconds=0.01)
    >>> run.iterations, run.steps == info["steps"], sorted(run.state_dict())
    (1, True, ['callback', 'history', 'problem', 'rng', 'stopped', 'theta', 'update'])
    """

    def __init__(self, update, theta, rng, callback=None):
        self.update, self.theta, self.rng, self.callback = update, theta, rng, callback
        self.history = {k: [] for k in HISTORY_KEYS}
        self.stopped = False

    @property
    def iterations(self):
        """Updates finished so far."""
        return len(self.history["iteration"])

    @property
    def steps(self):
        """Environment steps of the finished updates."""
        return int(self.history["steps"][-1]) if self.iterations else 0

    @property
    def seconds(self):
        """Seconds spent in updates so far."""
        return float(self.history["wall_time"][-1]) if self.iterations else 0.0

    def finished(self, iterations=None, total_steps=None):
        """Whether the run is over: stopped by its callback, or at either budget.

        Parameters
        ----------
        iterations, total_steps : int, optional
            The budgets (None: no budget of that kind).

        Returns
        -------
        bool
        """
        return self.stopped or (iterations is not None and self.iterations >= iterations) \
            or (total_steps is not None and self.steps >= total_steps)

    def record(self, theta, info, seconds):
        """Take the update's new θ and add its row to the history.

        Parameters
        ----------
        theta : numpy.ndarray, shape (P,)
            The update's new parameters.
        info : dict
            The update's ``info`` (``steps``, ``mean_return``, ``kl``, ``entropy``).
        seconds : float
            The update's wall time.

        Returns
        -------
        None
        """
        self.theta = theta
        row = (self.iterations + 1, self.steps + int(info["steps"]), self.seconds + seconds,
               info["mean_return"], info["kl"], info["entropy"])
        for key, value in zip(HISTORY_KEYS, row):
            self.history[key].append(value)

    def state_dict(self):
        """The whole run as a nested dict of arrays and JSON values (copies).

        Returns
        -------
        dict
            ``theta``, ``update`` (the update's ``state_dict()``), ``problem`` (the
            problem's: observation statistics), ``rng`` (the bit generator's state),
            ``history`` (arrays), ``callback`` (its ``state_dict()``, or None) and
            ``stopped``.
        """
        return self.snapshot().state_dict()

    def snapshot(self):
        """A frozen copy of the state now, cheap enough to take after every update (the
        history, which only grows, is kept by its length).

        Returns
        -------
        object
            Its ``state_dict()`` is this run's :meth:`state_dict` at the moment taken.
        """
        return _Snapshot(self)

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (or a checkpoint's ``run``).

        Parameters
        ----------
        state : dict
            From :meth:`state_dict`.

        Raises
        ------
        ValueError
            A θ that does not fit the policy, or callback state without a callback
            that keeps state.
        """
        self.theta = check_theta(state["theta"], self.update.policy.n_params)
        self.update.load_state_dict(state["update"])
        self.update.problem.load_state_dict(state["problem"])
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.history = {k: list(np.asarray(state["history"].get(k, ())))
                        for k in HISTORY_KEYS}
        if state.get("callback") is not None:
            if not has_state(self.callback):
                raise ValueError("callback: the checkpoint holds the state of a stop rule "
                                 "(StopWhenSolved); pass one to resume the run")
            self.callback.load_state_dict(state["callback"])
        self.stopped = bool(state.get("stopped", False))


class _Snapshot:
    """RunState at one moment: copies of everything but the history's rows."""

    def __init__(self, run):
        self._history, self._rows = run.history, run.iterations
        self._state = {
            "theta": np.array(run.theta, dtype=np.float64),
            "update": copy.deepcopy(run.update.state_dict()),
            "problem": copy.deepcopy(run.update.problem.state_dict()),
            "rng": copy.deepcopy(run.rng.bit_generator.state),
            "callback": copy.deepcopy(run.callback.state_dict())
            if has_state(run.callback) else None,
            "stopped": run.stopped,
        }

    def state_dict(self):
        return {**self._state, "history": history_arrays(self._history, self._rows)}
