"""Adversarial inputs over the public API (hypothesis strategies in fuzz_targets.py),
each target in a child process: a crash or a hang fails the test and names the
last input, instead of taking the test run down with it.

CI runs a sample; ``PGFAST_FUZZ_SCALE=25 pytest tests/test_fuzz.py`` runs a broad
set (25 times the examples, each target's count of calls printed with ``-s``)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the fuzz targets draw their inputs with hypothesis")

HERE = Path(__file__).parent
EXAMPLES = {"returns": 100, "policies": 100, "gradients": 60, "sizes": 20, "envs": 100,
            "estimators": 40, "updates": 40, "checkpoints": 100, "optim": 100,
            "cli": 30, "training": 100, "arrays": 300, "pyenvs": 100, "returns_cli": 60}
SCALE = int(os.environ.get("PGFAST_FUZZ_SCALE", "1"))
TIMEOUT = 120 * SCALE   # seconds per target; a hang beyond it is a failure


@pytest.mark.parametrize("target", sorted(EXAMPLES))
def test_public_api_survives_adversarial_input(target, tmp_path):
    last = tmp_path / "last_case.txt"
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "fuzz_targets.py"), target, str(EXAMPLES[target] * SCALE),
             str(last)], capture_output=True, text=True, timeout=TIMEOUT, env=env,
            cwd=tmp_path)   # not the repository root: the source tree would shadow the install
    except subprocess.TimeoutExpired:
        pytest.fail(f"{target}: no answer within {TIMEOUT} s; last case: "
                    f"{last.read_text() if last.exists() else '?'}")
    case = last.read_text() if last.exists() else "?"
    assert proc.returncode >= 0, f"{target}: crashed (signal {-proc.returncode}) on {case}"
    assert proc.returncode == 0, f"{target}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(proc.stdout.strip().splitlines()[-1])   # "TARGET: N calls, …"
