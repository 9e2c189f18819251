"""Checkpoints: one file, written atomically, verified on load; kills mid-save."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pgfast


@pytest.fixture()
def setup():
    problem = pgfast.Problem("CartPole-v1", gamma=0.99, horizon=60)
    policy = pgfast.LinearSoftmax(4, 2)
    return problem, policy


def test_bad_checkpoints_give_clear_errors(setup, tmp_path):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    with pytest.raises(ValueError, match="no checkpoint"):
        pgfast.load_checkpoint(tmp_path / "missing")
    pgfast.train(update, policy.init(np.random.default_rng(0)), iterations=1,
                 rng=np.random.default_rng(0), progress=False, checkpoint_dir=tmp_path)
    other = pgfast.NaturalPolicyUpdate(problem, policy, m=4)
    with pytest.raises(ValueError, match="written by TrustRegionUpdate"):
        pgfast.load_checkpoint(tmp_path, update=other)
    mlp = pgfast.TrustRegionUpdate(problem, pgfast.MLPSoftmax(4, 2, hidden=(8,)), m=4)
    with pytest.raises(ValueError, match="policy"):
        pgfast.load_checkpoint(tmp_path, update=mlp)
    good = (tmp_path / "checkpoint.npz").read_bytes()
    (tmp_path / "checkpoint.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="corrupt"):
        pgfast.load_checkpoint(tmp_path)
    (tmp_path / "checkpoint.npz").write_bytes(good[: len(good) // 2])   # a torn write
    with pytest.raises(ValueError, match="corrupt"):
        pgfast.load_checkpoint(tmp_path)


def test_a_damaged_checkpoint_fails_its_checksum(setup, tmp_path):
    """Any change to the stored arrays or the JSON entry is caught on load, even one
    that leaves a readable file (here θ rewritten in place)."""
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    theta = policy.init(np.random.default_rng(0))
    pgfast.save_checkpoint(tmp_path, theta, update, {"steps": np.array([1])},
                           np.random.default_rng(0), {"env": "CartPole-v1"})
    path = tmp_path / "checkpoint.npz"
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["theta"] = arrays["theta"] + 1.0
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="checksum"):
        pgfast.load_checkpoint(tmp_path)
    arrays["theta"] -= 1.0
    arrays["meta"] = np.array(str(arrays["meta"]).replace("CartPole", "CartPolf"))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="checksum"):
        pgfast.load_checkpoint(tmp_path)


def test_saving_leaves_one_file_and_no_temporaries(setup, tmp_path):
    problem, policy = setup
    update = pgfast.TrustRegionUpdate(problem, policy, m=4)
    (tmp_path / ".checkpoint-stale.tmp").write_bytes(b"left by a killed save")
    for seed in range(3):
        pgfast.save_checkpoint(tmp_path, policy.init(np.random.default_rng(seed)), update,
                               {}, np.random.default_rng(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
    theta, _ = pgfast.load_checkpoint(tmp_path, update=update)
    np.testing.assert_array_equal(theta, policy.init(np.random.default_rng(2)))


KILLED_SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    import pgfast
    problem = pgfast.Problem("CartPole-v1", horizon=20)
    policy = pgfast.MLPSoftmax(4, 2, hidden=(64, 64))   # a file of some size
    update = pgfast.TrustRegionUpdate(problem, policy, m=2)
    for k in range(1, 10**6):
        theta = np.full(policy.n_params, float(k))
        pgfast.save_checkpoint(sys.argv[1], theta, update, {"steps": np.arange(k)},
                               np.random.default_rng(k), {"k": k})
        if k == 1:
            print("saved", flush=True)   # the kill comes during the saves after this
""")


def update_for_cleanup():
    problem = pgfast.Problem("CartPole-v1", horizon=20)
    return pgfast.TrustRegionUpdate(problem, pgfast.MLPSoftmax(4, 2, hidden=(64, 64)), m=2)


def test_a_killed_save_leaves_the_old_checkpoint_or_the_new_one(tmp_path):
    """SIGKILL at arbitrary moments of a save loop: what is on disk always loads and
    is one save's state (θ, history and metadata agree); no temporary file outlives
    the next save."""
    rng = np.random.default_rng(0)
    for trial in range(12):
        folder = tmp_path / f"run{trial}"
        child = subprocess.Popen([sys.executable, "-c", KILLED_SAVER, str(folder)],
                                 stdout=subprocess.PIPE, cwd=tmp_path)
        assert child.stdout.readline().strip() == b"saved"
        time.sleep(rng.uniform(0.0, 0.2))
        child.send_signal(signal.SIGKILL)
        child.wait()
        theta, saved = pgfast.load_checkpoint(folder)
        k = saved["metadata"]["k"]
        assert np.all(theta == k) and len(saved["history"]["steps"]) == k
        # The unnamed file gets a temporary name only between linkat and rename: a
        # kill in that instant may leave it, and the next save removes it.
        leftovers = sorted(set(os.listdir(folder)) - {"checkpoint.npz"})
        assert len(leftovers) <= 1 and all(n.startswith(".checkpoint-") for n in leftovers)
        if leftovers:
            pgfast.save_checkpoint(folder, theta, update_for_cleanup(), saved["history"],
                                   np.random.default_rng(0))
            assert os.listdir(folder) == ["checkpoint.npz"]
