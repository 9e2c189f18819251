"""Checkpoints: one file, written atomically, verified when read.

A checkpoint is ``DIR/checkpoint.npz``: a run's whole state (:class:`pgfast.RunState`:
θ, the update's state, the generator's state, the history and the stop rule's
state), with the policy's configuration, the update's class and the caller's
metadata. The nested state is stored flat: every array under its path
(``update/adam_m``, ``callback/best_theta``) and everything else as one JSON entry.
A SHA-256 of everything else is stored in the same file, so a checkpoint is written
in one ``os.replace`` (a kill leaves the old file or the new one, never a mix, and
no temporary file on Linux) and any damage is found when it is read.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from ._validation import as_array, check_folder, check_theta
from .run import RunState

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FILE"]

CHECKPOINT_FILE = "checkpoint.npz"
CHECKPOINT_FORMAT = 3   # 3: the run's nested state; 2 (read too): theta, update, history


def _digest(arrays, meta_text):
    h = hashlib.sha256(meta_text.encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def has_checkpoint(directory):
    """Whether `directory` holds a run's checkpoint."""
    return (Path(directory) / CHECKPOINT_FILE).exists()


def save_checkpoint(directory, theta, update, history, rng, metadata=None):
    """Write θ, the policy's configuration, the update's state, the history and the
    generator's state to ``directory/checkpoint.npz``, atomically.

    The data are written to an unnamed temporary file (Linux ``O_TMPFILE``; a named
    one elsewhere), synced, and renamed over the old checkpoint in one step, so a
    crash leaves the old checkpoint or the new one, never a mix. A SHA-256 of the
    contents is stored with them for :func:`load_checkpoint` to verify.
    :func:`pgfast.train` writes the whole run this way (the stop rule's state too).

    Parameters
    ----------
    directory : str or os.PathLike
        The run's folder; created if missing.
    theta : array_like, shape (P,)
        The policy's parameters.
    update : pgfast update
        Its class name, its policy's configuration (``update.policy.config()``) and its
        state (``update.state_dict()``: Adam moments, value baseline) are stored.
    history : dict of array_like
        The training history, as :func:`pgfast.train` returns it.
    rng : numpy.random.Generator
        Its bit generator's state is stored, so a resumed run draws what the
        uninterrupted one would have.
    metadata : dict, optional
        JSON-serialisable data of your own (e.g. the command line).

    Returns
    -------
    None

    Raises
    ------
    OSError
        The folder cannot be created or written.
    TypeError
        ``metadata`` that JSON cannot serialise.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> import pgfast
    >>> problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> update = pgfast.NaturalPolicyUpdate(problem, policy)
    >>> run = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> pgfast.save_checkpoint(run, policy.init(rng), update, {"iteration": [1]}, rng,
    ...                        metadata={"note": "example"})
    >>> theta, saved = pgfast.load_checkpoint(run)
    >>> saved["update"], saved["metadata"]
    ('NaturalPolicyUpdate', {'note': 'example'})
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if not hasattr(update, "state_dict") or not hasattr(update, "policy"):
        raise TypeError(f"update: expected a pgfast update, got {type(update).__name__}")
    if not isinstance(history, dict) or not all(isinstance(k, str) for k in history):
        raise TypeError(f"history: expected a dict of arrays by name, got "
                        f"{type(history).__name__}")
    run = RunState(update, check_theta(theta, update.policy.n_params), rng)
    state = run.state_dict()
    state["history"] = history
    write_checkpoint(directory, state, update, metadata)


def write_checkpoint(directory, state, update, metadata=None):
    """Write a run's nested `state` (:meth:`pgfast.RunState.state_dict`) for `update`
    to ``directory/checkpoint.npz`` atomically (see :func:`save_checkpoint`)."""
    directory = check_folder(directory, "directory")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
    try:
        json.dumps(metadata, default=int)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"metadata: expected JSON-serializable values ({exc})") from None
    history = {}
    for name, values in state["history"].items():
        column = _history_column(values, name)
        if column.dtype.kind not in "biuf":
            raise TypeError(f"history[{name!r}]: expected numbers, got dtype {column.dtype}")
        history[name] = column
    arrays, tree = _flatten({**state, "history": history})
    meta_text = json.dumps({
        "format": CHECKPOINT_FORMAT,
        "policy": update.policy.config(),
        "update": type(update).__name__,
        "run": tree,
        "metadata": metadata or {},
    }, default=int, sort_keys=True)
    arrays["meta"] = np.array(meta_text)
    arrays["sha256"] = np.array(_digest({k: v for k, v in arrays.items() if k != "sha256"},
                                        meta_text))
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / CHECKPOINT_FILE, lambda f: np.savez(f, **arrays))
    # Temporary names a killed save left behind are never read; clear them.
    for stale in directory.glob(".checkpoint-*.tmp"):
        stale.unlink(missing_ok=True)


def _history_column(values, name):
    return as_array(values, f"history[{name!r}]")


def _nested_format_2(flat):
    """Format 2's flat update state (prefixes ``adam_``, ``value_``, ``return_obs_``,
    ``obs_``) as format 3's nested ``update`` and ``problem``."""
    def strip(prefix):
        return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}

    update = {}
    if strip("adam_"):
        update["adam"] = strip("adam_")
    baseline = {k: v for k, v in (("params", flat.get("value_params")),
                                  ("adam", strip("value_adam_")),
                                  ("returns", strip("return_obs_"))) if v is not None and
                (not isinstance(v, dict) or v)}
    if baseline:
        update["baseline"] = baseline
    if "steps_done" in flat:
        update["steps_done"] = flat["steps_done"]
    observations = strip("obs_")
    return {"update": update, "problem": {"observations": observations} if observations
            else {}}


def _flatten(state, prefix=""):
    """Split a nested dict into its arrays, by path, and a JSON tree of the rest."""
    arrays, tree = {}, {}
    for key, value in state.items():
        if not isinstance(key, str) or "/" in key:
            raise ValueError(f"state: expected keys of names without '/', got {key!r}")
        if isinstance(value, dict):
            arrays_below, tree[key] = _flatten(value, f"{prefix}{key}/")
            arrays.update(arrays_below)
        elif isinstance(value, np.ndarray):
            arrays[f"{prefix}{key}"] = value
        else:
            tree[key] = value
    return arrays, tree


def _unflatten(arrays, tree):
    """The nested dict :func:`_flatten` split."""
    state = json.loads(json.dumps(tree))   # a copy
    for path, value in arrays.items():
        *parents, leaf = path.split("/")
        node = state
        for name in parents:
            node = node.setdefault(name, {})
            if not isinstance(node, dict):
                raise ValueError(f"array {path!r} sits below a value")
        node[leaf] = value
    return state


def _link_open_file(fd, name):
    """Give the unnamed file open as `fd` the name `name` (linkat through /proc,
    following the magic link: Python's os.link does not pass AT_SYMLINK_FOLLOW)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
    if libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD,
                   os.fsencode(name), AT_SYMLINK_FOLLOW) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), name)


def write_atomically(path, write):
    """Write a file with `write(file)` and put it at `path` in one rename.

    The data go first to an unnamed file (Linux O_TMPFILE), which a kill simply
    discards; it gets a temporary name only for the instant before the rename.
    Where that is not available a named temporary file stands in (a kill may leave
    it behind; the next save removes it, and nothing reads it).
    """
    tmp = path.parent / f".checkpoint-{os.getpid()}.tmp"
    try:
        fd = os.open(path.parent, os.O_TMPFILE | os.O_WRONLY, 0o644)
    except (AttributeError, OSError):
        fd = None
    try:
        if fd is not None:
            try:
                with os.fdopen(fd, "wb") as f:
                    _write_synced(f, write)
                    tmp.unlink(missing_ok=True)
                    _link_open_file(f.fileno(), tmp)
            except OSError:
                fd = None   # no linkat through /proc here: the named way below
        if fd is None:
            with open(tmp, "wb") as f:
                _write_synced(f, write)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_synced(f, write):
    write(f)
    f.flush()
    os.fsync(f.fileno())


def load_checkpoint(directory, update=None):
    """Read and verify a checkpoint written by :func:`save_checkpoint`.

    With `update`, checks that the checkpoint was written for the same update class
    and policy configuration and loads the update's state into it (and its problem's:
    the observation statistics).

    Parameters
    ----------
    directory : str or os.PathLike
        The folder holding ``checkpoint.npz``.
    update : pgfast update, optional
        The update to restore the state of (Adam moments, value baseline).

    Returns
    -------
    theta : ndarray, shape (P,)
        The saved parameters, float64.
    saved : dict
        ``"policy"`` (the configuration :func:`pgfast.from_config` rebuilds the policy
        from), ``"update"`` (the class name), ``"history"`` and ``"state"`` (dicts of
        arrays: the update's), ``"problem"`` (the problem's state: observation
        statistics), ``"rng_state"`` (the bit generator's state), ``"metadata"``,
        ``"callback"`` (the stop rule's state, or None), ``"stopped"`` (the stop rule
        ended the run) and ``"run"``, all of it as :meth:`pgfast.RunState.state_dict`
        returns it.

    Raises
    ------
    ValueError
        No checkpoint in `directory`, or one that is damaged (checksum, format,
        shapes, non-finite values) or written for another update or policy.

    Examples
    --------
    >>> import tempfile
    >>> import pgfast
    >>> pgfast.load_checkpoint(tempfile.mkdtemp())
    Traceback (most recent call last):
        ...
    ValueError: checkpoint: no checkpoint in ... (checkpoint.npz missing)

    See :func:`save_checkpoint` for a round trip, and :func:`pgfast.train`
    (``checkpoint_dir``, ``resume``) for the usual way in.
    """
    directory = check_folder(directory, "directory")
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        raise ValueError(f"checkpoint: no checkpoint in {directory} ({path.name} missing)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):   # damage can leave a .npy header
            raise ValueError("not an .npz archive")
        with loaded as data:
            arrays = {k: data[k] for k in data.files}
        meta_text = str(arrays.pop("meta"))
        stored = str(arrays.pop("sha256"))
        meta = json.loads(meta_text)
    except Exception as exc:   # damaged bytes fail in any of zipfile's and numpy's ways
        raise ValueError(f"checkpoint: {path} is corrupt or unreadable ({exc})") from exc
    if _digest({**arrays, "meta": np.array(meta_text)}, meta_text) != stored:
        raise ValueError(f"checkpoint: {path} is corrupt (checksum mismatch)")
    fmt = meta.get("format") if isinstance(meta, dict) else None
    try:
        if fmt == CHECKPOINT_FORMAT:
            run = _unflatten(arrays, meta["run"])
        elif fmt == 2:   # before the stop rule was saved: the same run, its rule afresh
            run = {"theta": arrays["theta"], "rng": meta["rng_state"], "callback": None,
                   "stopped": False,
                   "history": {k.split("/", 1)[1]: v for k, v in arrays.items()
                               if k.startswith("history/")},
                   **_nested_format_2({k.split("/", 1)[1]: v for k, v in arrays.items()
                                       if k.startswith("state/")})}
        else:
            raise ValueError(f"format {fmt!r}")
        saved = {"policy": meta["policy"], "update": meta["update"],
                 "metadata": meta.get("metadata", {}), "run": run,
                 "rng_state": run["rng"], "history": run["history"], "state": run["update"],
                 "problem": run.get("problem", {}),
                 "callback": run["callback"], "stopped": bool(run["stopped"])}
        theta = run["theta"]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"checkpoint: {path} is not a pgfast checkpoint of format "
                         f"{CHECKPOINT_FORMAT} or 2 ({exc})") from None
    if not isinstance(theta, np.ndarray) or theta.ndim != 1 or theta.dtype != np.float64 \
            or not np.isfinite(theta).all():
        raise ValueError(f"checkpoint: {path} holds a theta that is not a finite vector")
    lengths = {len(v) for v in saved["history"].values()}
    if len(lengths) > 1:
        raise ValueError(f"checkpoint: {path} holds a history of uneven length")
    if update is not None:
        check_written_for(saved, update)
        update.load_state_dict(saved["state"])
        update.problem.load_state_dict(saved["problem"])
    return theta, saved


def check_written_for(saved, update):
    """Raise unless the checkpoint `saved` (from :func:`load_checkpoint`) was written
    for `update`'s class and policy."""
    if saved["update"] != type(update).__name__:
        raise ValueError(f"checkpoint: written by {saved['update']}, "
                         f"not {type(update).__name__}")
    if saved["policy"] != json.loads(json.dumps(update.policy.config())):
        raise ValueError(f"checkpoint: policy {saved['policy']} does not match "
                         f"{update.policy.config()}")
    if saved["run"]["theta"].shape != (update.policy.n_params,):
        raise ValueError("checkpoint: theta does not fit the policy")
