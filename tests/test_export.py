"""pgfast.export: the ONNX and C exports compute pgfast's deterministic action.

The C export is compiled with the system's C compiler and compared with
``policy.mode``: bit for bit for linear policies (the same sums in the same
order), within a few ulps of the output layer's terms for MLPs (libm's tanh is
not pgfast's). The ONNX export is run by onnxruntime (skipped, saying so, without
the ``onnx`` extra). ``pgfast export`` is checked on run folders that
``pgfast train`` wrote, with observation normalisation among them.
"""
import importlib.util
import json
import shutil
import sys

import numpy as np
import pytest

import pgfast
from pgfast.cli import main as cli_main
from pgfast.export import c_actions, check_actions, export_c, export_onnx, onnx_actions

POLICIES = {
    "LinearSoftmax": lambda: pgfast.LinearSoftmax(4, 2),
    "LinearGaussian": lambda: pgfast.LinearGaussian(3, 2),
    "MLPSoftmax": lambda: pgfast.MLPSoftmax(6, 5, hidden=(64, 32)),
    "MLPGaussian": lambda: pgfast.MLPGaussian(11, 3, hidden=(64, 64)),
}
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
NEEDS_ONNX = pytest.mark.skipif(not HAS_ONNX, reason='needs onnx and onnxruntime: '
                                                    'pip install "pgfast[onnx]"')
NEEDS_CC = pytest.mark.skipif(shutil.which("cc") is None,
                              reason="needs a C compiler (cc) to build the C export")


def _case(kind, seed=0):
    """A policy with θ away from its initialisation (weights of all sizes) and
    observations of all sizes, tiny to large."""
    rng = np.random.default_rng(seed)
    policy = POLICIES[kind]()
    theta = policy.init(rng) + rng.normal(scale=0.5, size=policy.n_params)
    obs = rng.normal(size=(3000, policy.obs_dim)) * 10.0 ** rng.uniform(-3, 2, (3000, 1))
    return policy, theta, obs


def _scale(policy, theta, obs):
    """|b_k| + Σ_j |h_j W_jk| of the output layer, computed here from unpack()."""
    params = policy.unpack(theta)
    h = obs
    for l in range(len(policy.hidden)):
        h = np.tanh(h @ params[f"W{l}"] + params[f"b{l}"])
    last = len(policy.hidden)
    return np.abs(params[f"b{last}"]) + np.abs(h) @ np.abs(params[f"W{last}"])


@NEEDS_CC
@pytest.mark.parametrize("kind", POLICIES)
def test_c_export_computes_pgfasts_action(kind, tmp_path):
    policy, theta, obs = _case(kind)
    header, source = export_c(policy, theta, tmp_path, name="ctrl")
    assert (header.name, source.name) == ("ctrl.h", "ctrl.c")
    actions = c_actions(source, policy, obs)
    expected = policy.mode(theta, obs)
    assert actions.dtype == expected.dtype and actions.shape == expected.shape
    if not policy.hidden:   # the same sums in the same order: the same doubles
        np.testing.assert_array_equal(actions, expected)
    elif policy.discrete:
        assert (actions == expected).mean() > 0.999
    else:
        ulps = np.abs(actions - expected) / np.spacing(_scale(policy, theta, obs))
        assert ulps.max() <= 4, ulps.max()
    assert check_actions(policy, theta, obs, actions, ulps=4) <= 4


@NEEDS_CC
def test_c_export_header_is_plain_c_and_cpp_safe(tmp_path):
    policy, theta, _ = _case("MLPGaussian")
    header, source = export_c(policy, theta, tmp_path, name="hopper")
    text = header.read_text()
    assert "#define HOPPER_OBS_DIM 11" in text and "#define HOPPER_ACT_DIM 3" in text
    assert 'extern "C"' in text and "void hopper_act(const double *obs, double *action);" in text
    body = source.read_text()
    includes = [line for line in body.splitlines() if line.startswith("#include")]
    assert includes == ['#include "hopper.h"', "#include <math.h>"]
    assert "malloc" not in body
    # Strict C99 with every warning an error.
    strict = ("-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2")
    obs = np.random.default_rng(2).normal(size=(50, 11))
    assert check_actions(policy, theta, obs, c_actions(source, policy, obs, flags=strict),
                         ulps=4) <= 4


@NEEDS_CC
def test_c_export_ties_and_normalisation(tmp_path):
    policy = pgfast.LinearSoftmax(3, 4)
    theta = np.zeros(policy.n_params)   # every logit equal: pgfast takes the first
    _, source = export_c(policy, theta, tmp_path / "ties")
    obs = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(c_actions(source, policy, obs), np.zeros(5, np.int64))
    # A θ trained on normalised observations, exported with its statistics,
    # acts on raw ones as the folded θ does.
    policy = pgfast.MLPGaussian(3, 1, hidden=(8,))
    rng = np.random.default_rng(1)
    theta = policy.init(rng) + rng.normal(size=policy.n_params)
    normalizer = pgfast.ObservationNormalizer(3)
    normalizer.update(rng.normal(loc=[5.0, -2.0, 100.0], scale=[1.0, 0.1, 30.0], size=(500, 3)))
    _, source = export_c(policy, theta, tmp_path / "norm", obs_normalizer=normalizer)
    raw = rng.normal(loc=[5.0, -2.0, 100.0], scale=[1.0, 0.1, 30.0], size=(200, 3))
    folded = normalizer.fold(policy, theta)
    actions = c_actions(source, policy, raw)
    check_actions(policy, folded, raw, actions, ulps=4)
    # ... and the normalised θ itself does not (the statistics matter here).
    with pytest.raises(ValueError, match="actions: observation"):
        check_actions(policy, theta, raw, actions)


def test_check_actions_rejects_what_differs():
    policy, theta, obs = _case("MLPGaussian")
    actions = policy.mode(theta, obs)
    assert check_actions(policy, theta, obs, actions) == 0.0
    bad = actions.copy()
    bad[17, 1] += 1e-9 * max(1.0, abs(bad[17, 1]))
    with pytest.raises(ValueError, match="actions: observation 17"):
        check_actions(policy, theta, obs, bad)
    policy, theta, obs = _case("MLPSoftmax")
    actions = policy.mode(theta, obs)
    actions[3] = (actions[3] + 1) % policy.n_actions
    with pytest.raises(ValueError, match="actions: observation 3"):
        check_actions(policy, theta, obs, actions)


def test_bad_arguments_are_named(tmp_path):
    policy = pgfast.LinearSoftmax(2, 2)
    theta = policy.init(0)
    with pytest.raises(ValueError, match="^name: expected a C identifier"):
        export_c(policy, theta, tmp_path, name="my-policy")
    with pytest.raises(TypeError, match="^name:"):
        export_c(policy, theta, tmp_path, name=3)
    with pytest.raises(TypeError, match="^policy: expected a pgfast policy"):
        export_c(pgfast.LinearValue(2), np.zeros(3), tmp_path)
    with pytest.raises(ValueError, match="^theta:"):
        export_c(policy, theta[:-1], tmp_path)
    with pytest.raises(ValueError, match="^theta:"):
        export_c(policy, np.full_like(theta, np.nan), tmp_path)
    with pytest.raises(TypeError, match="^directory:"):
        export_c(policy, theta, None)


@NEEDS_ONNX
@pytest.mark.parametrize("kind", POLICIES)
def test_onnx_export_computes_pgfasts_action(kind, tmp_path):
    import onnx

    policy, theta, obs = _case(kind)
    path = export_onnx(policy, theta, tmp_path / "policy.onnx")
    actions = onnx_actions(path, obs)
    expected = policy.mode(theta, obs)
    assert actions.dtype == expected.dtype and actions.shape == expected.shape
    # onnxruntime sums in its own order: within the error bound of a reordered sum
    # (check_actions' default; measured up to 10 ulps of the output layer's terms).
    assert check_actions(policy, theta, obs, actions) <= (0.001 if policy.discrete else 32)
    model = onnx.load(str(path))
    assert json.loads({p.key: p.value for p in model.metadata_props}["pgfast_policy"]) \
        == policy.config()
    assert [i.name for i in model.graph.input] == ["obs"]
    assert [o.name for o in model.graph.output] == ["action"]
    # A batch of one, and an export of another θ that the check tells apart.
    check_actions(policy, theta, obs[:1], onnx_actions(path, obs[:1]))
    moved = theta + np.random.default_rng(5).normal(scale=0.3, size=theta.shape)
    other = export_onnx(policy, moved, tmp_path / "other.onnx")
    with pytest.raises(ValueError, match="^actions:"):
        check_actions(policy, theta, obs, onnx_actions(other, obs))


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)   # import onnx now raises ImportError
    policy = pgfast.LinearSoftmax(2, 2)
    with pytest.raises(ImportError, match=r'^export_onnx needs onnx: pip install "pgfast\[onnx\]"$'):
        export_onnx(policy, policy.init(0), tmp_path / "p.onnx")


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory):
    """Two short runs of pgfast train: an MLP softmax on CartPole, and a linear
    Gaussian on MountainCarContinuous with observation normalisation."""
    root = tmp_path_factory.mktemp("runs")
    runs = {"cartpole": ["train", "CartPole-v1", "--policy", "mlp", "--steps", "1500"],
            "mountaincar": ["train", "MountainCarContinuous-v0", "--steps", "3000"]}
    for name, argv in runs.items():
        assert cli_main(argv + ["--out", str(root / name), "--quiet", "--no-stop",
                                "--eval-episodes", "2"]) == 0
    return root


@NEEDS_CC
@pytest.mark.parametrize("run", ["cartpole", "mountaincar"])
def test_cli_export_c(run_folders, run, tmp_path, capsys):
    folder = run_folders / run
    assert cli_main(["export", str(folder), "--format", "c", "--out", str(tmp_path),
                     "--name", run, "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / run}.h" in out and "checked with the C compiler on" in out
    assert "the same actions as pgfast's" in out
    # The kept θ of policy.npz, normalisation folded in: what the C file holds.
    with np.load(folder / "policy.npz") as data:
        theta = data["theta"]
    policy = pgfast.from_config(pgfast.load_checkpoint(folder)[1]["policy"])
    obs = np.random.default_rng(3).normal(size=(100, policy.obs_dim))
    np.testing.assert_array_equal(c_actions(tmp_path / f"{run}.c", policy, obs),
                                  policy.mode(theta, obs))


@NEEDS_ONNX
def test_cli_export_onnx(run_folders, capsys):
    folder = run_folders / "mountaincar"
    assert cli_main(["export", str(folder), "--format", "onnx", "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    assert str(folder / "policy.onnx") in out and "checked with onnxruntime on" in out
    assert (folder / "policy.onnx").is_file()


def test_cli_export_without_onnx_is_one_line(run_folders, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["export", str(run_folders / "cartpole"), "--format", "onnx"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and 'pip install "pgfast[onnx]"' in err


def test_cli_export_needs_a_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["export", str(tmp_path), "--format", "c"])
    assert "no checkpoint" in capsys.readouterr().err
