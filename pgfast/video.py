"""Videos of a policy acting in an environment: episodes rendered frame by frame, written
as MP4 or GIF (``pgfast eval DIR --video FILE``).

Frames come from the env's ``render_mode="rgb_array"`` (pgfast's classic-control
envs draw as Gymnasium does, any other Gymnasium env as it draws itself); the file
is written by imageio (``pip install "pgfast[video]"``: imageio, its ffmpeg for MP4,
and pygame for the drawing).
"""
from __future__ import annotations


import gymnasium
import numpy as np

from ._validation import check_bool, check_folder, check_positive_int, check_rng, check_theta
from .envs import PREFIX, is_native

__all__ = ["record_video", "VIDEO_HINT"]

VIDEO_HINT = 'pip install "pgfast[video]"'
_FORMATS = (".mp4", ".gif")


def record_video(env, policy, theta, path, episodes=1, rng=None, deterministic=True,
                 max_episode_steps=None):
    """Render `episodes` episodes of π_θ in `env` and write them to `path` (.mp4 or .gif).

    Each episode starts from ``reset`` (the first seeded from `rng`, the others
    continuing its stream) and runs until it terminates or is truncated; every
    state is one frame, at the env's ``render_fps``.

    Parameters
    ----------
    env : str
        An env id: a native one (``"CartPole-v1"`` or ``"pgfast/CartPole-v1"``) or any
        Gymnasium id that renders ``"rgb_array"``.
    policy : pgfast policy
        The policy acting.
    theta : array_like, shape (P,)
        Its parameters, acting on the env's raw observations (``policy.npz``).
    path : str or os.PathLike
        The file to write: ``.mp4`` (H.264 through imageio's ffmpeg) or ``.gif``.
    episodes : int, default 1
        Episodes recorded one after another.
    rng : numpy.random.Generator, int or None
        Seeds the first reset (and the actions when not deterministic).
    deterministic : bool, default True
        Act by the policy's mode (argmax / mean), as ``pgfast eval`` does; False samples.
    max_episode_steps : int, optional
        A time limit for envs without one (``--horizon``); default as registered.

    Returns
    -------
    numpy.ndarray, shape (episodes,)
        The episodes' undiscounted returns.

    Raises
    ------
    ImportError
        imageio (or, for MP4, imageio-ffmpeg) is not installed
        (``pip install "pgfast[video]"``).
    ValueError
        A `path` that is neither .mp4 nor .gif, an env that does not render, or a θ
        of the wrong length.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np, pgfast
    >>> from pgfast.video import record_video
    >>> policy = pgfast.LinearSoftmax(4, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "cartpole.gif")
    >>> record_video("CartPole-v1", policy, np.zeros(policy.n_params), path, rng=0)
    array([9.])
    >>> os.path.getsize(path) > 0
    True
    """
    if not isinstance(env, str):
        raise TypeError(f"env: expected an env id, got {type(env).__name__}")
    theta = check_theta(theta, policy.n_params)
    path = check_folder(path, "path")
    if path.suffix.lower() not in _FORMATS:
        raise ValueError(f"path: expected a .mp4 or .gif file, got {path.name!r}")
    episodes = check_positive_int(episodes, "episodes")
    deterministic = check_bool(deterministic, "deterministic")
    rng = check_rng(rng)
    if max_episode_steps is not None:
        max_episode_steps = check_positive_int(max_episode_steps, "max_episode_steps")
    iio = _imageio(path)
    name = env if env.startswith(PREFIX) or not is_native(env) else PREFIX + env
    options = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    try:
        scene = gymnasium.make(name, render_mode="rgb_array", **options)
    except gymnasium.error.DependencyNotInstalled as exc:
        raise ImportError(f"record_video needs pygame to draw {env} ({exc}): "
                          f"{VIDEO_HINT}") from None
    frames, returns = [], np.zeros(episodes)
    try:
        seed = int(rng.integers(2**31))
        for k in range(episodes):
            obs, _ = scene.reset(seed=seed if k == 0 else None)
            frames.append(_frame(scene, env))
            done = False
            while not done:
                action = _act(policy, theta, obs, rng, deterministic)
                obs, reward, terminated, truncated, _ = scene.step(action)
                returns[k] += float(reward)
                frames.append(_frame(scene, env))
                done = terminated or truncated
        fps = scene.metadata.get("render_fps") or 30
    finally:
        scene.close()
    _write(iio, path, np.stack(frames), fps)
    return returns


def _imageio(path):
    try:
        import imageio.v3 as iio
    except ImportError:
        raise ImportError(f"record_video needs imageio: {VIDEO_HINT}") from None
    if path.suffix.lower() == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401  (imageio's MP4 writer)
        except ImportError:
            raise ImportError(f"record_video needs imageio-ffmpeg for MP4: {VIDEO_HINT}") \
                from None
    return iio


def _frame(scene, env):
    frame = scene.render()
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ValueError(f"env: {env} does not render rgb_array frames")
    return frame


def _act(policy, theta, obs, rng, deterministic):
    obs = np.asarray(obs, dtype=np.float64).reshape(1, -1)
    action = policy.mode(theta, obs) if deterministic else policy.sample(theta, obs, rng)[0]
    return int(action[0]) if policy.discrete else action[0]


def _write(iio, path, frames, fps):
    if path.suffix.lower() == ".gif":
        # GIF frame times are in milliseconds; loop=0 repeats forever.
        iio.imwrite(path, frames, duration=1000.0 / fps, loop=0)
    else:
        # The frames' even sizes suit H.264's 4:2:0 sampling as they are: no rescaling
        # to ffmpeg's default blocks of 16.
        iio.imwrite(path, frames, fps=fps, macro_block_size=2)
