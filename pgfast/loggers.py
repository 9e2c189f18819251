"""Loggers of training scalars: TensorBoard event files under Stable-Baselines3's tag names.

A logger has two methods::

    logger.log(step, scalars)   # what a training loop calls, after each update (and evaluation)
    logger.close()              # what the logger's maker calls when done, Ctrl-C included

``step`` is the environment steps done so far (SB3's ``num_timesteps``, the x axis
of its TensorBoard curves) and ``scalars`` a dict of numbers: a row of the
training history, or an evaluation. :data:`TAGS` turns pgfast's keys into SB3's
tags where SB3 logs the same quantity (``mean_return`` → ``rollout/ep_rew_mean``,
``kl`` → ``train/approx_kl``, ...); other keys go under ``train/``, and a key
that already holds a ``/`` is used as given. TensorBoard is an optional extra:
``pip install "pgfast[tensorboard]"`` (tensorboardX writes the files).
"""
from __future__ import annotations

import numbers
import os
import time

from ._validation import check_folder

__all__ = ["TensorBoardLogger", "TAGS", "TENSORBOARD_HINT"]

TENSORBOARD_HINT = 'pip install "pgfast[tensorboard]"'

#: pgfast's history keys → the tag Stable-Baselines3 logs the same quantity under
#: (``stable_baselines3/common/on_policy_algorithm.py``, ``ppo/ppo.py``,
#: ``common/callbacks.py``'s EvalCallback). ``entropy`` is logged as SB3's
#: ``train/entropy_loss``, which is minus the mean entropy.
TAGS = {
    "mean_return": "rollout/ep_rew_mean",
    "mean_length": "rollout/ep_len_mean",
    "kl": "train/approx_kl",
    "entropy": "train/entropy_loss",
    "value_loss": "train/value_loss",
    "clip_fraction": "train/clip_fraction",
    "explained_variance": "train/explained_variance",
    "learning_rate": "train/learning_rate",
    "iteration": "time/iterations",
    "wall_time": "time/time_elapsed",
    "fps": "time/fps",
    "eval_mean_return": "eval/mean_reward",
    "eval_mean_length": "eval/mean_ep_length",
}
# Keys whose SB3 tag holds the negated value.
_NEGATED = {"entropy"}
# Keys that are the step itself: not logged as scalars.
_STEP_KEYS = {"steps"}


class TensorBoardLogger:
    """Write training scalars to a TensorBoard run folder, under SB3's tag names.

    ``log(step, scalars)`` writes each number of `scalars` at `step`, under its
    :data:`TAGS` name; with ``wall_time`` (the run's cumulative seconds in
    updates) among them it also writes ``time/fps``, step / wall_time: the run's
    environment steps per second of training. Values that are None are skipped;
    NaN and infinities are written as they are.

    Parameters
    ----------
    log_dir : str or os.PathLike
        The run folder (created if missing). TensorBoard reads every event file in
        it as one run, so a resumed run writing to the same folder continues the
        same curves.
    purge_step : int, optional
        For a resumed run: the first step of this session (the checkpoint's
        steps + 1). TensorBoard then drops what an earlier session wrote at this
        step or later (the updates after its last checkpoint, done again now), so
        no point appears twice.
    flush_secs : float, default 10
        At most this many seconds between writes to disk.

    Raises
    ------
    ImportError
        tensorboardX is not installed (``pip install "pgfast[tensorboard]"``).
    TypeError
        A `log_dir` that is not a path, or a `purge_step` that is not an int.

    Examples
    --------
    >>> import tempfile
    >>> from pgfast.loggers import TensorBoardLogger
    >>> logger = TensorBoardLogger(tempfile.mkdtemp())
    >>> logger.log(2048, {"iteration": 1, "steps": 2048, "wall_time": 0.5,
    ...                   "mean_return": 21.0, "kl": 0.01, "entropy": 0.69})
    >>> logger.tags_written   # doctest: +NORMALIZE_WHITESPACE
    ['rollout/ep_rew_mean', 'time/fps', 'time/iterations', 'time/time_elapsed',
     'train/approx_kl', 'train/entropy_loss']
    >>> logger.close()
    """

    def __init__(self, log_dir, purge_step=None, flush_secs=10):
        log_dir = check_folder(log_dir, "log_dir")
        if purge_step is not None and (isinstance(purge_step, bool)
                                       or not isinstance(purge_step, numbers.Integral)):
            raise TypeError(f"purge_step: expected an int, got {type(purge_step).__name__}")
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise ImportError(f"TensorBoardLogger needs tensorboardX: {TENSORBOARD_HINT}") \
                from None
        self.log_dir = log_dir
        # tensorboardX names a file by the second it was opened: the suffix keeps a
        # session resumed within the same second from overwriting the one before,
        # and sorts after it (TensorBoard reads a folder's files in name order).
        self._writer = SummaryWriter(os.fspath(log_dir), purge_step=purge_step,
                                     flush_secs=flush_secs,
                                     filename_suffix=f".{time.time_ns()}.{os.getpid()}")
        self._tags = set()

    @property
    def tags_written(self):
        """The tags written so far, sorted."""
        return sorted(self._tags)

    def log(self, step, scalars):
        """Write `scalars` (a dict of numbers by pgfast's keys or by tag) at `step`.

        Parameters
        ----------
        step : int
            Environment steps done so far.
        scalars : dict
            Numbers (or None, skipped) by key: history keys are renamed by
            :data:`TAGS`, other keys go under ``train/`` unless they hold a ``/``.

        Returns
        -------
        None

        Raises
        ------
        TypeError
            A `step` that is not an int, `scalars` that is not a dict, or a value
            that is not a number.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral):
            raise TypeError(f"step: expected an int (environment steps), "
                            f"got {type(step).__name__}")
        if not isinstance(scalars, dict):
            raise TypeError(f"scalars: expected a dict of numbers, got {type(scalars).__name__}")
        step = int(step)
        for key, value in scalars.items():
            if value is None or key in _STEP_KEYS:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"scalars[{key!r}]: expected a number, "
                                f"got {type(value).__name__}")
            value = -float(value) if key in _NEGATED else float(value)
            self._write(self._tag(key), value, step)
        wall = scalars.get("wall_time")
        if wall is not None and wall > 0:
            self._write("time/fps", step / float(wall), step)

    @staticmethod
    def _tag(key):
        if key in TAGS:
            return TAGS[key]
        return key if "/" in key else f"train/{key}"

    def _write(self, tag, value, step):
        self._writer.add_scalar(tag, value, step)
        self._tags.add(tag)

    def close(self):
        """Write what is pending to disk and close the event file.

        Returns
        -------
        None
        """
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
