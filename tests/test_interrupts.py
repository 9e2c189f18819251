"""Ctrl-C at random moments, on each rollout back-end, with the CPU busy: training
stops within seconds and leaves a checkpoint that loads, whatever SIGINT's disposition
was when the test run started (the child installs Python's handler itself)."""
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pgfast

CHILD = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)   # whatever pytest inherited
import numpy as np, pgfast
env, workers, folder = sys.argv[1], int(sys.argv[2]) or None, sys.argv[3]
problem = pgfast.Problem(env, gamma=0.99, workers=workers)
policy = pgfast.LinearSoftmax(4, 2)
update = pgfast.ClampedSurrogateUpdate(problem, policy, m=8)
print("start", flush=True)
try:
    pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=10**6, rng=0,
                 progress=False, checkpoint_dir=folder)
except KeyboardInterrupt:
    print("stopped", flush=True)
"""

# The native loop and Gymnasium's envs, stepped in Python. With Ray actors as the
# back-end, tests/test_distributed.py interrupts a run the same way (a Ray cluster per
# trial would cost tens of seconds here).
BACKENDS = [("CartPole-v1", 0), ("CartPole-v0", 0)]


@pytest.fixture()
def busy_core():
    """Another process keeps one core busy for the test's length."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    burner.kill()
    burner.wait()


@pytest.mark.parametrize("env, workers", BACKENDS, ids=["native", "gymnasium"])
def test_ctrl_c_at_random_moments_stops_within_seconds_with_a_checkpoint(
        tmp_path, env, workers, busy_core):
    rng = np.random.default_rng(len(env) + workers)
    moments = rng.uniform(0.0, 1.0, size=4)   # after training starts, within its first second
    for trial, moment in enumerate(moments):
        folder = tmp_path / f"run{trial}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, env, str(workers), str(folder)],
                                 cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        assert child.stdout.readline().strip() == "start", child.stderr.read()
        time.sleep(moment)
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            out, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            pytest.fail(f"{env} (workers={workers}): still running 30 s after Ctrl-C")
        stopped_in = time.monotonic() - sent
        assert out.strip() == "stopped", err
        assert stopped_in < 2.0, stopped_in
        pgfast.load_checkpoint(folder)
