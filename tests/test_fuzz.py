"""Adversarial inputs over the public API (hypothesis strategies in fuzz_targets.py),
each target in a child process: a crash or a hang fails the test and names the
last input, instead of taking the test run down with it."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the fuzz targets draw their inputs with hypothesis")

HERE = Path(__file__).parent
EXAMPLES = {"returns": 100, "policies": 100, "gradients": 60, "sizes": 20, "envs": 100}
TIMEOUT = 120   # seconds per target; a hang beyond it is a failure


@pytest.mark.parametrize("target", sorted(EXAMPLES))
def test_public_api_survives_adversarial_input(target, tmp_path):
    last = tmp_path / "last_case.txt"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "fuzz_targets.py"), target, str(EXAMPLES[target]),
             str(last)], capture_output=True, text=True, timeout=TIMEOUT, env=env,
            cwd=tmp_path)   # not the repository root: the source tree would shadow the install
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target}: no answer within {TIMEOUT} s; last case: "
                    f"{last.read_text() if last.exists() else '?'}")
    case = last.read_text() if last.exists() else "?"
    assert proc.returncode >= 0, f"{target}: crashed (signal {-proc.returncode}) on {case}"
    assert proc.returncode == 0, f"{target}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
