"""What ``pgfast train`` leaves in a run folder beside the checkpoint: the kept
policy (``policy.npz``), its evaluation (``evaluation.json``), the learning curve
(``curve.csv``, ``curve.png``) and a short video (``video.mp4``, written by
:mod:`pgfast.video`). Each is written atomically and read back checked.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np

from .checkpoints import CHECKPOINT_FILE, write_atomically

__all__ = ["POLICY_FILE", "EVALUATION_FILE", "RUN_FILES", "write_kept_policy",
           "load_kept_policy", "write_evaluation", "write_curve"]

POLICY_FILE = "policy.npz"          # the kept parameters, acting on raw observations
EVALUATION_FILE = "evaluation.json"
RUN_FILES = (CHECKPOINT_FILE, POLICY_FILE, EVALUATION_FILE, "curve.csv", "curve.png",
             "video.mp4", "video.gif")


def write_kept_policy(folder, policy, theta):
    """Write θ (acting on raw observations) with the policy's configuration to
    ``folder/policy.npz``, atomically.

    Parameters
    ----------
    folder : pathlib.Path
        The run folder.
    policy : pgfast policy
        Its ``config()`` is stored beside θ.
    theta : numpy.ndarray, shape (P,)
        The kept parameters.

    Returns
    -------
    None

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> import pgfast
    >>> from pgfast.artifacts import load_kept_policy, write_kept_policy
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> write_kept_policy(folder, policy, np.arange(10.0))
    >>> load_kept_policy(folder / "policy.npz", policy)[:3]
    array([0., 1., 2.])
    """
    write_atomically(folder / POLICY_FILE,
                     lambda f: np.savez(f, theta=theta, config=json.dumps(policy.config())))


def load_kept_policy(path, policy):
    """The parameters ``pgfast train`` kept in `path`, checked to be the policy's.

    Parameters
    ----------
    path : pathlib.Path
        A ``policy.npz``.
    policy : pgfast policy
        The policy they must belong to.

    Returns
    -------
    numpy.ndarray, shape (P,)
        Finite float64 parameters acting on raw observations.

    Raises
    ------
    ValueError
        A damaged file, or parameters of another policy.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import pgfast
    >>> from pgfast.artifacts import load_kept_policy
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "policy.npz"
    >>> _ = path.write_bytes(b"not a policy")
    >>> load_kept_policy(path, pgfast.LinearSoftmax(4, 2))
    Traceback (most recent call last):
        ...
    ValueError: policy: ... is corrupt or unreadable (...)
    """
    try:
        with np.load(path, allow_pickle=False) as data:   # an .npy header: no `with`
            theta, config = data["theta"], json.loads(str(data["config"]))
    except Exception as exc:   # damaged bytes fail in any of zipfile's and numpy's ways
        raise ValueError(f"policy: {path} is corrupt or unreadable ({exc})") from None
    if config != json.loads(json.dumps(policy.config())) or theta.dtype != np.float64 \
            or theta.shape != (policy.n_params,) or not np.isfinite(theta).all():
        raise ValueError(f"policy: {path} does not hold finite parameters of {policy!r}")
    return theta


def write_evaluation(folder, summary):
    """Write the evaluation summary to ``folder/evaluation.json``, atomically
    (``pgfast train`` writes it last: its presence says the run's files are whole).

    Parameters
    ----------
    folder : pathlib.Path
        The run folder.
    summary : dict
        JSON values.

    Returns
    -------
    None

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> from pgfast.artifacts import write_evaluation
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_evaluation(folder, {"mean_return": 500.0})
    >>> json.loads((folder / "evaluation.json").read_text())
    {'mean_return': 500.0}
    """
    text = json.dumps(summary, indent=2)
    write_atomically(folder / EVALUATION_FILE, lambda f: f.write(text.encode()))


def write_curve(folder, history, evaluations, title, threshold=None):
    """``curve.csv`` (the history, one row per update) and, with matplotlib,
    ``curve.png`` (training returns and the evaluations), each written atomically.

    Parameters
    ----------
    folder : pathlib.Path
        The run folder.
    history : dict of numpy.ndarray
        As :func:`pgfast.train` returns it (``steps`` and ``mean_return`` are drawn).
    evaluations : list of (int, int, float)
        (update, steps, score) of each evaluation (:class:`pgfast.StopWhenSolved`).
    title : str
        The figure's title.
    threshold : float, optional
        Drawn as a dashed line.

    Returns
    -------
    bool
        Whether the figure was drawn (False without matplotlib).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> from pgfast.artifacts import write_curve
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> history = {"steps": np.array([10, 20]), "mean_return": np.array([1.0, 2.0])}
    >>> _ = write_curve(folder, history, [(2, 20, 3.0)], "example")
    >>> (folder / "curve.csv").read_text().splitlines()
    ['steps,mean_return', '10,1.0', '20,2.0']
    """
    keys = list(history)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(keys)
    writer.writerows(zip(*(history[k].tolist() for k in keys)))
    write_atomically(folder / "curve.csv", lambda f: f.write(text.getvalue().encode()))
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.plot(history["steps"], history["mean_return"], lw=1, label="training batch (mean return)")
    if evaluations:
        _, steps, scores = zip(*evaluations)
        ax.plot(steps, scores, "o", ms=3, label="deterministic evaluation")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"solved ({threshold:g})")
    ax.set_title(title)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    write_atomically(folder / "curve.png",
                     lambda f: fig.savefig(f, format="png", dpi=100,
                                           metadata={"Software": None}))
    plt.close(fig)
    return True
