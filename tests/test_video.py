"""pgfast.video and ``pgfast eval --video``: the files decode, hold one frame per state
of the recorded episodes, and show what Gymnasium's env shows (skipped, saying so,
without imageio, imageio-ffmpeg or pygame: pip install "pgfast[video]")."""
import importlib.util
import sys

import gymnasium as gym
import numpy as np
import pytest

import pgfast
from pgfast.cli import main as cli_main
from pgfast.video import record_video

NEEDS_VIDEO = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("imageio", "imageio_ffmpeg", "pygame")),
    reason='videos need imageio, imageio-ffmpeg and pygame: pip install "pgfast[video]"')


def _zero_policy():
    policy = pgfast.LinearSoftmax(4, 2)
    return policy, np.zeros(policy.n_params)   # always action 0: short episodes


def _gymnasium_frames(name, seed, actions_of, episodes=1):
    """The frames Gymnasium's own env renders for the same episodes."""
    env = gym.make(name, render_mode="rgb_array")
    frames = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed if k == 0 else None)
        frames.append(env.render())
        done = False
        while not done:
            obs, _, terminated, truncated, _ = env.step(actions_of(obs))
            frames.append(env.render())
            done = terminated or truncated
    env.close()
    return np.stack(frames)


@NEEDS_VIDEO
def test_gif_holds_gymnasiums_frames(tmp_path):
    import imageio.v3 as iio

    policy, theta = _zero_policy()
    path = tmp_path / "cartpole.gif"
    returns = record_video("CartPole-v1", policy, theta, path, episodes=2, rng=3)
    seed = int(np.random.default_rng(3).integers(2**31))   # the first reset's seed
    expected = _gymnasium_frames("CartPole-v1", seed, lambda obs: 0, episodes=2)
    assert returns.sum() + 2 == len(expected)   # reward 1 a step, plus the two resets
    # Pillow's GIF writer keeps one of consecutive equal frames (showing it for their
    # summed durations); GIF's 256 colours per frame hold CartPole's picture exactly.
    changed = np.r_[True, [not np.array_equal(a, b) for a, b in zip(expected, expected[1:])]]
    np.testing.assert_array_equal(iio.imread(path), expected[changed])


@NEEDS_VIDEO
def test_mp4_decodes_with_the_envs_frame_rate(tmp_path):
    import imageio.v3 as iio

    policy = pgfast.LinearGaussian(3, 1)
    path = tmp_path / "pendulum.mp4"
    returns = record_video("Pendulum-v1", policy, policy.init(0), path, rng=0,
                           max_episode_steps=30)
    frames = iio.imread(path)
    assert frames.shape == (31, 500, 500, 3) and returns.shape == (1,)
    assert iio.immeta(path)["fps"] == gym.make("Pendulum-v1").metadata["render_fps"]
    # Lossy, but the same pictures: close to Gymnasium's on average.
    seed = int(np.random.default_rng(0).integers(2**31))
    theta = policy.init(0)
    expected = _gymnasium_frames(
        "Pendulum-v1", seed,
        lambda obs: policy.mode(theta, np.asarray(obs, np.float64)[None])[0])[:31]
    assert np.abs(frames.astype(float) - expected).mean() < 2.0


@NEEDS_VIDEO
def test_eval_writes_a_video_of_the_kept_policy(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "CartPole-v1", "--steps", "600", "--out", str(out), "--quiet",
                     "--no-stop", "--eval-episodes", "2"]) == 0
    video = tmp_path / "run.gif"
    assert cli_main(["eval", str(out), "--episodes", "2", "--video", str(video),
                     "--video-episodes", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"video: {video}, 2 episode(s)" in printed
    import imageio.v3 as iio

    shown = [float(r) for r in printed.split("returns ")[-1].split(", ")]
    assert len(shown) == 2 and all(r >= 8 for r in shown)
    frames = iio.imread(video)
    assert frames.shape[1:] == (400, 600, 3) and 2 <= len(frames) <= sum(shown) + 2


def test_bad_arguments_are_named(tmp_path):
    policy, theta = _zero_policy()
    with pytest.raises(ValueError, match=r"^path: expected a \.mp4 or \.gif file"):
        record_video("CartPole-v1", policy, theta, tmp_path / "x.avi")
    with pytest.raises(TypeError, match="^env:"):
        record_video(3, policy, theta, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="^theta:"):
        record_video("CartPole-v1", policy, theta[:3], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="^episodes:"):
        record_video("CartPole-v1", policy, theta, tmp_path / "x.gif", episodes=0)


def test_missing_imageio_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio", None)
    monkeypatch.setitem(sys.modules, "imageio.v3", None)
    policy, theta = _zero_policy()
    with pytest.raises(ImportError, match=r'^record_video needs imageio: '
                                          r'pip install "pgfast\[video\]"$'):
        record_video("CartPole-v1", policy, theta, tmp_path / "x.gif")
