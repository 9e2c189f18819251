"""A run's state has one owner (pgfast.RunState), and a resumed run is the
uninterrupted one: the same θ, history, stop decision, kept policy, evaluation and
curve, whatever stopped it (Ctrl-C, SIGTERM, kill -9 after a checkpoint, the end of
its budget), and nothing a run found is lost."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pgfast
from pgfast.cli import main as cli_main

TIMING = {"wall_seconds", "cpu_seconds", "train_seconds"}


def run_files(folder):
    """What a run folder holds, without the wall-clock figures (which differ)."""
    _, saved = pgfast.load_checkpoint(folder)
    run = saved["run"]
    history = {k: v for k, v in run["history"].items() if k != "wall_time"}
    summary = json.loads((folder / "evaluation.json").read_text())
    with np.load(folder / "policy.npz") as kept:
        policy = kept["theta"].tobytes()
    curve = [line.split(",")[:2] + line.split(",")[3:]   # drop wall_time
             for line in (folder / "curve.csv").read_text().splitlines()]
    return {"theta": run["theta"].tobytes(), "update": state_bytes(run["update"]),
            "problem": state_bytes(run["problem"]),
            "history": {k: v.tobytes() for k, v in history.items()},
            "callback": state_bytes(run["callback"]), "stopped": run["stopped"],
            "summary": {k: v for k, v in summary.items() if k not in TIMING},
            "policy": policy, "curve": curve,
            "png": (folder / "curve.png").read_bytes()}


def state_bytes(state):
    """A nested state with its arrays as bytes, to compare bit for bit."""
    if isinstance(state, dict):
        return {k: state_bytes(v) for k, v in state.items()}
    return (state.dtype.str, state.tobytes()) if isinstance(state, np.ndarray) else state


def assert_same_run(a, b):
    fa, fb = run_files(a), run_files(b)
    for key in fa:
        assert fa[key] == fb[key], key


def train_cli(*args):
    assert cli_main(["train", "--quiet", *map(str, args)]) == 0


# --- the stop rule's state is part of the run ----------------------------------

def test_raising_the_budget_gives_the_longer_run_and_keeps_its_best(tmp_path, capsys):
    """The Pendulum seed-7 report: a resume with --steps raised printed a worse best
    score and overwrote policy.npz with a worse policy. The best θ, its score and the
    evaluations are in the checkpoint now, so the resumed run is the longer run."""
    short, full = tmp_path / "short", tmp_path / "full"
    train_cli("--out", short, "--steps", 6000, "--seed", 3)
    best_before = max(e[2] for e in pgfast.load_checkpoint(short)[1]["run"]["callback"]
                      ["evaluations"])
    train_cli("--resume", "--out", short, "--steps", 20000)
    train_cli("--out", full, "--steps", 20000, "--seed", 3)
    assert_same_run(short, full)
    callback = pgfast.load_checkpoint(short)[1]["callback"]
    assert callback["best_score"] >= best_before
    assert callback["evaluations"][0, 1] < 6000 < callback["evaluations"][-1, 1]  # whole run


def test_interrupt_then_resume_gives_the_same_stop_decision(tmp_path):
    """Ctrl-C in the middle of a run that goes on to be solved: the stop rule's
    screens, confirmations and best θ continue rather than start afresh."""
    problem = pgfast.Problem("CartPole-v1", gamma=0.99)
    policy = pgfast.LinearSoftmax(4, 2)

    def run(stop_at=None, resume=False, overwrite=False):
        update = pgfast.ClampedSurrogateUpdate(problem, policy, m=16, alpha=3e-3)
        stop = pgfast.StopWhenSolved(problem, policy, 475, np.random.default_rng([0, 1]))
        real_update, calls = update.update, []

        def update_or_interrupt(theta, rng):
            calls.append(1)
            if len(calls) == stop_at:
                raise KeyboardInterrupt
            return real_update(theta, rng)

        update.update = update_or_interrupt
        rng = np.random.default_rng(0)
        theta, history = pgfast.train(update, policy.init(rng), total_steps=200_000,
                                      rng=rng, callback=stop, progress=False,
                                      checkpoint_dir=tmp_path, resume=resume,
                                      overwrite=overwrite)
        return theta, history, stop

    theta, history, stop = run()
    assert stop.solved
    with pytest.raises(KeyboardInterrupt):
        run(stop_at=len(history["iteration"]) // 2, overwrite=True)
    theta2, history2, stop2 = run(resume=True)
    np.testing.assert_array_equal(theta2, theta)
    np.testing.assert_array_equal(history2["steps"], history["steps"])
    assert stop2.solved_at == stop.solved_at and stop2.evaluations == stop.evaluations
    np.testing.assert_array_equal(stop2.best_theta, stop.best_theta)


def test_resuming_a_solved_run_does_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    train_cli("--out", out, "--eval-episodes", 5)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    train_cli("--resume", "--out", out)
    assert "was solved after" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    update, theta = _cartpole_update()
    resumed = pgfast.train(update, theta, iterations=500, progress=False,
                           checkpoint_dir=out, resume=True, rng=0, callback=_stop_rule(update))
    assert len(resumed[1]["iteration"]) == len(pgfast.load_checkpoint(out)[1]["history"]
                                               ["iteration"])


def _cartpole_update():
    """`pgfast train`'s update for CartPole, and an initial θ."""
    config = pgfast.factory.settings("CartPole-v1", "linear", {})[0]
    _, policy, update = pgfast.factory.build("CartPole-v1", "linear", config)
    return update, policy.init(np.random.default_rng(0))


def _stop_rule(update):
    return pgfast.StopWhenSolved(update.problem, update.policy, 475,
                                 np.random.default_rng([0, 1]))


# --- the command line and the Python API around a run folder ----------------------

def test_resume_needs_only_the_folder_and_refuses_other_settings(tmp_path, capsys):
    out = tmp_path / "run"
    train_cli("Acrobot-v1", "--out", out, "--steps", 2000, "--no-stop", "--seed", 4,
              "--set", "m=4")
    capsys.readouterr()
    train_cli("--resume", "--out", out, "--steps", 4000)
    printed = capsys.readouterr().out
    assert "resuming the run" in printed and "on Acrobot-v1" in printed
    assert "m=4" in printed
    for flags, named in ((["CartPole-v1"], "--env"), (["--seed", "5"], "--seed"),
                         (["--policy", "mlp"], "--policy"), (["--set", "m=8"], "--set"),
                         (["--update", "trpo"], "--update"), (["--overwrite"], "--resume")):
        with pytest.raises(SystemExit) as exit_info:
            cli_main(["train", "--resume", "--out", str(out), *flags])
        assert exit_info.value.code == 2
        assert f"error: {named}:" in capsys.readouterr().err, flags
    # Flags that match the checkpoint are welcome.
    train_cli("Acrobot-v1", "--resume", "--out", out, "--seed", 4, "--set", "m=4")


def test_python_train_refuses_a_folder_holding_another_run(tmp_path):
    update, theta = _cartpole_update()
    pgfast.train(update, theta, iterations=1, progress=False, checkpoint_dir=tmp_path, rng=0)
    with pytest.raises(ValueError, match="^checkpoint_dir: .* holds another run"):
        pgfast.train(update, theta, iterations=1, progress=False, checkpoint_dir=tmp_path,
                     rng=0)
    with pytest.raises(ValueError, match="^resume: "):
        pgfast.train(update, theta, iterations=1, progress=False, checkpoint_dir=tmp_path,
                     rng=0, resume=True, overwrite=True)
    pgfast.train(update, theta, iterations=2, progress=False, checkpoint_dir=tmp_path,
                 rng=0, overwrite=True)
    assert len(pgfast.load_checkpoint(tmp_path)[1]["history"]["iteration"]) == 2


@pytest.mark.parametrize("flags", [["NoSuchEnv-v9"], ["--set", "m=0"], ["--seed", "-1"],
                                   ["--policy", "mlp", "--set", "hidden=0"]])
def test_a_command_that_fails_leaves_no_folder(tmp_path, flags, capsys):
    out = tmp_path / "deep" / "run"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "--quiet", "--out", str(out), *flags])
    assert exit_info.value.code == 2
    assert not (tmp_path / "deep").exists()


def test_interrupt_message_gives_the_command_that_continues(tmp_path, capsys, monkeypatch):
    import pgfast.training

    calls = []
    real = pgfast.ClampedSurrogateUpdate.update

    def update_then_interrupt(self, theta, rng):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, theta, rng)

    monkeypatch.setattr(pgfast.ClampedSurrogateUpdate, "update", update_then_interrupt)
    out = tmp_path / "a run"
    assert cli_main(["train", "--quiet", "--out", str(out)]) == 130
    assert f"pgfast train --resume --out '{out}'" in capsys.readouterr().out
    assert len(pgfast.load_checkpoint(out)[1]["history"]["iteration"]) == 2


def test_a_second_interrupt_during_the_checkpoint_write_is_held(tmp_path, monkeypatch):
    """Ctrl-C twice: the second arrives while the first's checkpoint is written; the
    write completes and the run stops with one KeyboardInterrupt."""
    import pgfast.training

    real_write = pgfast.training.write_checkpoint

    def write_with_a_second_interrupt(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)   # the handler is held: nothing happens
        real_write(*args, **kwargs)

    def interrupt(iteration, theta, info):
        if iteration == 2:
            monkeypatch.setattr(pgfast.training, "write_checkpoint",
                                write_with_a_second_interrupt)
            raise KeyboardInterrupt

    update, theta = _cartpole_update()
    with pytest.raises(KeyboardInterrupt):
        pgfast.train(update, theta, iterations=5, progress=False, callback=interrupt,
                     checkpoint_dir=tmp_path, rng=0)
    assert len(pgfast.load_checkpoint(tmp_path)[1]["history"]["iteration"]) == 1


# --- kill -9 at random moments ------------------------------------------------------

def test_kill_at_random_moments_then_resume_gives_the_uninterrupted_run(tmp_path):
    """`pgfast train` killed with SIGKILL at several moments (each after its first
    checkpoint), then resumed with only --out: the files of the run never stopped."""
    cmd = [sys.executable, "-m", "pgfast.cli", "train", "Acrobot-v1", "--quiet",
           "--steps", "30000", "--seed", "2", "--checkpoint-every", "1",
           "--eval-episodes", "10"]
    full = tmp_path / "full"
    subprocess.run(cmd + ["--out", str(full)], check=True, cwd=tmp_path,
                   stdout=subprocess.DEVNULL)
    rng = np.random.default_rng(0)
    for trial in range(4):
        out = tmp_path / f"killed{trial}"
        proc = subprocess.Popen(cmd + ["--out", str(out)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.npz").exists() and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(rng.uniform(0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        subprocess.run([sys.executable, "-m", "pgfast.cli", "train", "--quiet", "--resume",
                        "--out", str(out)], check=True, cwd=tmp_path,
                       stdout=subprocess.DEVNULL)
        assert_same_run(out, full)


TWO_CTRL_C = """
import sys, numpy as np, pgfast
config = pgfast.factory.settings("CartPole-v1", "mlp", {"steps": 10**8})[0]
_, policy, update = pgfast.factory.build("CartPole-v1", "mlp", config)
def ready(iteration, theta, info):
    if iteration == 1:
        print("ready", flush=True)
try:
    pgfast.train(update, policy.init(np.random.default_rng(0)), total_steps=10**8, rng=0,
                 progress=False, callback=ready, checkpoint_dir=sys.argv[1])
except KeyboardInterrupt:
    print("stopped", flush=True)
"""


def update_size():
    return pgfast.MLPSoftmax(4, 2, hidden=(64, 64)).n_params


@pytest.mark.parametrize("gap_ms", [1, 5, 30])
def test_ctrl_c_twice_stops_once_with_a_checkpoint(tmp_path, gap_ms):
    """A user pressing Ctrl-C twice, 1-30 ms apart: train() writes its checkpoint before
    it honours the second signal (held while it writes), whatever the moment. After
    train() has returned, the second Ctrl-C is the calling script's to handle: here
    it may end the script by the signal, once the checkpoint is whole."""
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", TWO_CTRL_C, str(run)], cwd=tmp_path,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGINT)
    time.sleep(gap_ms / 1000)
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=60)
    assert (child.returncode, out.strip()) in ((0, "stopped"), (-signal.SIGINT, "stopped"),
                                               (-signal.SIGINT, ""))
    theta, saved = pgfast.load_checkpoint(run)   # whole, at the last whole update
    assert theta.shape == (update_size(),) and saved["history"]["iteration"].ndim == 1


def test_cli_ctrl_c_twice_gives_one_line_and_exit_130(tmp_path):
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-m", "pgfast.cli", "train", "Pendulum-v1",
                              "--quiet", "--out", str(run), "--no-stop",
                              "--checkpoint-every", "1"], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run / "checkpoint.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.01)   # training is under way
    child.send_signal(signal.SIGINT)
    time.sleep(0.005)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err + out
    assert f"pgfast train --resume --out {run}" in out
    pgfast.load_checkpoint(run)
