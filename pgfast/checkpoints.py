"""Checkpoints: one file, written atomically, verified when read.

A checkpoint is ``DIR/checkpoint.npz``: θ, the update's state (Adam moments, value
baseline), the training history and, as one JSON entry, the policy's configuration,
the update's class, the generator's state and the caller's metadata. A SHA-256 of
everything else is stored in the same file, so a checkpoint is written in one
``os.replace`` (a kill leaves the old file or the new one, never a mix) and any
damage is found when it is read.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "CHECKPOINT_FILE"]

CHECKPOINT_FILE = "checkpoint.npz"
CHECKPOINT_FORMAT = 2


def _digest(arrays, meta_text):
    h = hashlib.sha256(meta_text.encode())
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def save_checkpoint(directory, theta, update, history, rng, metadata=None):
    """Write θ, the policy's configuration, the update's state, the history and the
    generator's state to ``directory/checkpoint.npz``, atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {"theta": np.asarray(theta, dtype=np.float64)}
    arrays.update({f"history/{k}": np.asarray(v) for k, v in history.items()})
    arrays.update({f"state/{k}": np.asarray(v) for k, v in update.state_dict().items()})
    meta_text = json.dumps({
        "format": CHECKPOINT_FORMAT,
        "policy": update.policy.config(),
        "update": type(update).__name__,
        "rng_state": rng.bit_generator.state,
        "metadata": metadata or {},
    }, default=int, sort_keys=True)
    arrays["meta"] = np.array(meta_text)
    arrays["sha256"] = np.array(_digest({k: v for k, v in arrays.items() if k != "sha256"},
                                        meta_text))
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / CHECKPOINT_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # Temporary files a killed save left behind are never read; clear them.
    for stale in directory.glob(".checkpoint-*.tmp"):
        stale.unlink(missing_ok=True)


def load_checkpoint(directory, update=None):
    """Read and verify a checkpoint: returns (theta, saved) with saved = {"policy":
    config, "update": class name, "history": dict, "state": dict, "rng_state",
    "metadata"}.

    With `update`, checks that the checkpoint was written for the same update class
    and policy configuration and loads the update's state into it.

    Raises
    ------
    ValueError
        No checkpoint in `directory`, or one that is damaged (checksum, format,
        shapes, non-finite values) or written for another update or policy.
    """
    directory = Path(directory)
    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        raise ValueError(f"checkpoint: no checkpoint in {directory} ({path.name} missing)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta_text = str(arrays.pop("meta"))
        stored = str(arrays.pop("sha256"))
        meta = json.loads(meta_text)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            json.JSONDecodeError) as exc:
        raise ValueError(f"checkpoint: {path} is corrupt or unreadable ({exc})") from exc
    if _digest({**arrays, "meta": np.array(meta_text)}, meta_text) != stored:
        raise ValueError(f"checkpoint: {path} is corrupt (checksum mismatch)")
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT \
            or "theta" not in arrays:
        raise ValueError(f"checkpoint: {path} is not a pgfast checkpoint of format "
                         f"{CHECKPOINT_FORMAT}")
    saved = {
        "policy": meta["policy"], "update": meta["update"], "rng_state": meta["rng_state"],
        "metadata": meta.get("metadata", {}),
        "history": {k.split("/", 1)[1]: v for k, v in arrays.items()
                    if k.startswith("history/")},
        "state": {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("state/")},
    }
    theta = arrays["theta"]
    if theta.ndim != 1 or theta.dtype != np.float64 or not np.isfinite(theta).all():
        raise ValueError(f"checkpoint: {path} holds a theta that is not a finite vector")
    lengths = {len(v) for v in saved["history"].values()}
    if len(lengths) > 1:
        raise ValueError(f"checkpoint: {path} holds a history of uneven length")
    if update is not None:
        if saved["update"] != type(update).__name__:
            raise ValueError(f"checkpoint: written by {saved['update']}, "
                             f"not {type(update).__name__}")
        if saved["policy"] != json.loads(json.dumps(update.policy.config())):
            raise ValueError(f"checkpoint: policy {saved['policy']} does not match "
                             f"{update.policy.config()}")
        if theta.shape != (update.policy.n_params,):
            raise ValueError("checkpoint: theta does not fit the policy")
        update.load_state_dict(saved["state"])
    return theta, saved
