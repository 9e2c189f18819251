"""pgfast.loggers: TensorBoard event files that TensorBoard's own reader loads with
SB3's tags and the history's values (skipped, saying so, without tensorboardX or
tensorboard: pip install "pgfast[tensorboard]")."""
import importlib.util
import sys

import numpy as np
import pytest

import pgfast
from pgfast.loggers import TAGS, TensorBoardLogger

NEEDS_TENSORBOARD = pytest.mark.skipif(
    not (importlib.util.find_spec("tensorboardX") and importlib.util.find_spec("tensorboard")),
    reason='needs tensorboardX to write and tensorboard to read: pip install "pgfast[tensorboard]"')


def _read(log_dir):
    """{tag: (steps, values)} as TensorBoard's EventAccumulator loads the folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})   # 0: keep every point
    acc.Reload()
    return {tag: (np.array([e.step for e in acc.Scalars(tag)]),
                  np.array([e.value for e in acc.Scalars(tag)]))
            for tag in acc.Tags()["scalars"]}


def _history(iterations=4):
    problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    policy = pgfast.LinearSoftmax(4, 2)
    update = pgfast.ClampedSurrogateUpdate(problem, policy, m=4, k_max=2)
    rng = np.random.default_rng(0)
    _, history = pgfast.train(update, policy.init(rng), iterations=iterations, rng=rng,
                              progress=False)
    return history


def _rows(history):
    keys = list(history)
    return [{k: history[k][i].item() for k in keys} for i in range(len(history["steps"]))]


@NEEDS_TENSORBOARD
def test_history_rows_load_in_tensorboard_under_sb3_tags(tmp_path):
    history = _history()
    with TensorBoardLogger(tmp_path / "tb") as logger:
        for row in _rows(history):
            logger.log(row["steps"], row)
        logger.log(int(history["steps"][-1]), {"eval_mean_return": 187.5})
    scalars = _read(tmp_path / "tb")
    expected = {"rollout/ep_rew_mean", "train/approx_kl", "train/entropy_loss", "time/fps",
                "time/iterations", "time/time_elapsed", "eval/mean_reward"}
    assert set(scalars) == expected == set(logger.tags_written)
    steps = history["steps"]
    for key, tag, sign in [("mean_return", "rollout/ep_rew_mean", 1), ("kl", "train/approx_kl", 1),
                           ("entropy", "train/entropy_loss", -1),
                           ("iteration", "time/iterations", 1)]:
        got_steps, values = scalars[tag]
        np.testing.assert_array_equal(got_steps, steps)
        # Event files hold float32 values.
        np.testing.assert_allclose(values, sign * history[key], rtol=1e-6)
    np.testing.assert_allclose(scalars["time/fps"][1], steps / history["wall_time"], rtol=1e-6)
    assert scalars["eval/mean_reward"][0].tolist() == [steps[-1]]
    assert scalars["eval/mean_reward"][1].tolist() == [187.5]


@NEEDS_TENSORBOARD
def test_a_resumed_run_continues_the_same_curves(tmp_path):
    """Session 1 logs 5 updates but checkpoints after the 3rd; session 2 resumes
    from there (purge_step), redoes updates 4-5 and goes on: TensorBoard shows each
    step once, with session 2's values where the two overlap."""
    log_dir = tmp_path / "tb"
    with TensorBoardLogger(log_dir) as logger:
        for step in (100, 200, 300, 400, 500):
            logger.log(step, {"mean_return": float(step)})
    with TensorBoardLogger(log_dir, purge_step=301) as logger:
        for step in (400, 500, 600):
            logger.log(step, {"mean_return": step + 0.5})
    steps, values = _read(log_dir)["rollout/ep_rew_mean"]
    assert steps.tolist() == [100, 200, 300, 400, 500, 600]
    assert values.tolist() == [100.0, 200.0, 300.0, 400.5, 500.5, 600.5]


@NEEDS_TENSORBOARD
def test_tags_other_keys_and_skips(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        logger.log(10, {"steps": 10, "value_loss": 0.5, "backtracks": 2, "custom/x": 1.0,
                        "surrogate_improvement": None, "wall_time": 0.0})
        # wall_time 0 has no fps; None is skipped; "steps" is the step itself.
        assert logger.tags_written == ["custom/x", "time/time_elapsed", "train/backtracks",
                                       "train/value_loss"]
    assert TAGS["value_loss"] == "train/value_loss"


@NEEDS_TENSORBOARD
def test_bad_arguments_are_named(tmp_path):
    with TensorBoardLogger(tmp_path) as logger:
        with pytest.raises(TypeError, match="^step: expected an int"):
            logger.log(True, {})
        with pytest.raises(TypeError, match="^step:"):
            logger.log(1.5, {})
        with pytest.raises(TypeError, match="^scalars: expected a dict"):
            logger.log(1, [1.0])
        with pytest.raises(TypeError, match=r"^scalars\['kl'\]: expected a number"):
            logger.log(1, {"kl": "0.1"})
    with pytest.raises(TypeError, match="^log_dir:"):
        TensorBoardLogger(None)
    with pytest.raises(TypeError, match="^purge_step:"):
        TensorBoardLogger(tmp_path, purge_step=2.0)


def test_missing_tensorboardx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ImportError, match=r'^TensorBoardLogger needs tensorboardX: '
                                          r'pip install "pgfast\[tensorboard\]"$'):
        TensorBoardLogger(tmp_path)


@NEEDS_TENSORBOARD
def test_pgfast_train_tensorboard_logs_the_whole_run_across_a_resume(tmp_path, monkeypatch):
    """`pgfast train --tensorboard DIR` interrupted, then resumed: one curve per tag over
    the whole run (no step twice), the history's values, and the evaluations."""
    from pgfast.cli import main as cli_main

    run, board = tmp_path / "run", tmp_path / "tb"
    calls = []
    real = pgfast.ClampedSurrogateUpdate.update

    def update_then_interrupt(self, theta, rng):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, theta, rng)

    monkeypatch.setattr(pgfast.ClampedSurrogateUpdate, "update", update_then_interrupt)
    base = ["train", "--quiet", "--out", str(run), "--tensorboard", str(board),
            "--steps", "6000", "--eval-episodes", "2"]
    assert cli_main(base) == 130
    monkeypatch.setattr(pgfast.ClampedSurrogateUpdate, "update", real)
    assert cli_main(["train", "--quiet", "--resume", "--out", str(run),
                     "--tensorboard", str(board)]) == 0
    scalars = _read(board)
    _, saved = pgfast.load_checkpoint(run)
    history = saved["history"]
    steps, values = scalars["rollout/ep_rew_mean"]
    np.testing.assert_array_equal(steps, history["steps"])   # each update once, in order
    np.testing.assert_allclose(values, history["mean_return"], rtol=1e-6)
    eval_steps, eval_values = scalars["eval/mean_reward"]
    evaluations = saved["callback"]["evaluations"]
    np.testing.assert_array_equal(eval_steps, evaluations[:, 1])
    np.testing.assert_allclose(eval_values, evaluations[:, 2], rtol=1e-6)
    assert {"train/approx_kl", "train/entropy_loss", "time/fps"} <= set(scalars)
