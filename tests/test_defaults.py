"""The per-env defaults table and the `pgfast train` command built on it."""
import json

import numpy as np
import pytest

import pgfast
from pgfast import defaults, factory
from pgfast.cli import main as cli_main


def test_table_entries_are_known_settings_and_updates():
    for env, by_policy in defaults.TABLE.items():
        assert pgfast.envs.is_native(env), env   # every entry is one of pgfast's envs
        for kind, entry in by_policy.items():
            assert kind in ("linear", "mlp")
            assert set(entry) <= set(defaults.GENERIC) | set(defaults.UPDATES), (env, kind)
            for update in set(entry) & set(defaults.UPDATES):
                assert set(entry[update]) <= set(defaults.GENERIC), (env, kind, update)
            assert entry.get("update", "trpo") in defaults.UPDATES


def test_settings_merge_generic_table_and_overrides_and_say_where_from():
    config, sources = factory.settings("Pendulum-v1", "mlp", {"steps": 123})
    assert config["steps"] == 123 and sources["steps"] == "override"
    assert config["gamma"] == defaults.TABLE["Pendulum-v1"]["mlp"]["gamma"]
    assert sources["gamma"] == "table" and sources["value_lr"] == "generic"
    ppo, sources = factory.settings("CartPole-v1", "mlp", {"update": "ppo"})
    assert ppo["k_max"] == defaults.TABLE["CartPole-v1"]["mlp"]["ppo"]["k_max"]
    assert sources["k_max"] == "table" and sources["update"] == "override"
    unknown, sources = factory.settings("SomeOther-v0")
    assert unknown == defaults.GENERIC and set(sources.values()) == {"generic"}
    with pytest.raises(ValueError, match="nonsense"):
        factory.settings("CartPole-v1", "linear", {"nonsense": 1})
    with pytest.raises(ValueError, match="policy"):
        factory.settings("CartPole-v1", "cnn")


def test_threshold_falls_back_to_gymnasium():
    assert factory.threshold("CartPole-v1") == 475
    assert factory.threshold("CartPole-v0") == 195   # Gymnasium's reward_threshold
    assert factory.threshold("Pendulum-v1") == -200
    assert factory.threshold("NoSuchEnv-v9") is None
    assert factory.threshold("pgfast/Pendulum-v1") == -200   # a target, prefix or not
    assert factory.threshold("Walker2d-v5") is None           # Gymnasium registers none


@pytest.mark.parametrize("update", defaults.UPDATES)
def test_build_makes_every_update(update):
    config, _ = factory.settings("CartPole-v1", "mlp", {"update": update})
    problem, policy, upd = factory.build("CartPole-v1", "mlp", config)
    rng = np.random.default_rng(0)
    theta, info = upd.update(policy.init(rng), rng)
    assert theta.shape == (policy.n_params,) and info["steps"] > 0


def test_bare_train_solves_cartpole_and_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["solved"] and summary["mean_return"] >= 475
    assert summary["train_steps"] < defaults.TABLE["CartPole-v1"]["linear"]["steps"]
    for name in ("checkpoint.npz", "policy.npz", "curve.csv", "curve.png"):
        assert (out / name).exists(), name
    printed = capsys.readouterr().out
    assert "solved after" in printed and "settings: update=ppo" in printed
    # eval evaluates the kept parameters (policy.npz), not the checkpoint's last θ.
    assert cli_main(["eval", str(out), "--episodes", "20", "--seed", "7"]) == 0
    with np.load(out / "policy.npz") as data:
        kept, config = data["theta"], json.loads(str(data["config"]))
    returns = pgfast.evaluate("CartPole-v1", pgfast.from_config(config), kept, 20,
                              np.random.default_rng(7))
    assert f"mean return {returns.mean():.2f}" in capsys.readouterr().out


def test_train_refuses_another_run_unless_resumed_or_overwritten(tmp_path, capsys):
    out = str(tmp_path / "run")
    base = ["train", "--out", out, "--quiet", "--steps", "500", "--no-stop",
            "--eval-episodes", "2"]
    assert cli_main(base) == 0
    with pytest.raises(SystemExit) as exit_info:
        cli_main(base)
    assert exit_info.value.code == 2
    assert "holds another run" in capsys.readouterr().err
    # --resume needs only the folder; --steps may raise the budget.
    assert cli_main(["train", "--out", out, "--quiet", "--resume", "--steps", "1000"]) == 0
    assert "resuming the run" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(base + ["--resume", "--set", "m=4"])
    assert "trained with m=16, not m=4" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["train", "--out", out, "--resume", "--seed", "3"])
    assert "--seed: the run in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["train", "--out", out, "--resume", "--overwrite"])
    assert "give one of the two" in capsys.readouterr().err
    assert cli_main(base + ["--overwrite"]) == 0


def test_observation_normalisation_is_saved_and_frozen_for_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "MountainCarContinuous-v0", "--out", str(out), "--quiet",
                     "--steps", "3000", "--no-stop", "--eval-episodes", "2"]) == 0
    theta, saved = pgfast.load_checkpoint(out)
    statistics = saved["problem"]["observations"]
    assert statistics["count"] > 0 and saved["metadata"]["settings"]["normalize"]
    with np.load(out / "policy.npz") as data:
        raw = data["theta"]
    normalizer = pgfast.ObservationNormalizer(2)
    normalizer.load_state_dict(statistics)
    np.testing.assert_allclose(raw, normalizer.fold(pgfast.from_config(saved["policy"]), theta))
    assert cli_main(["eval", str(out), "--episodes", "2"]) == 0


def test_set_takes_any_finite_log_std_and_eval_every_is_a_setting(capsys):
    assert cli_main(["train", "Pendulum-v1", "--config", "--set", "log_std=-0.5",
                     "--eval-every", "3"]) == 0
    out = capsys.readouterr().out
    assert "log_std            -0.5         (override)" in out
    assert "eval_every         3            (override)" in out
    for bad in ("log_std=inf", "m=-1"):
        with pytest.raises(SystemExit):
            cli_main(["train", "Pendulum-v1", "--config", "--set", bad])
        assert bad.split("=")[0] in capsys.readouterr().err


def test_config_lists_the_settings_and_their_sources(capsys):
    assert cli_main(["train", "Pendulum-v1", "--config", "--set", "m=8"]) == 0
    out = capsys.readouterr().out
    assert "--policy mlp" in out   # Pendulum's default policy kind
    assert "gamma              0.95         (table)" in out
    assert "m                  8            (override)" in out
    assert "threshold          -200.0" in out


def test_gymnasium_ids_and_horizon(tmp_path, capsys):
    # CartPole-v0 is not native: it goes through the Python rollout path.
    assert cli_main(["train", "CartPole-v0", "--out", str(tmp_path / "a"), "--quiet",
                     "--steps", "300", "--no-stop", "--eval-episodes", "2"]) == 0
    with pytest.raises(SystemExit):
        cli_main(["train", "SimpleRegulator-v0", "--out", str(tmp_path / "b"), "--quiet"])
    assert "--horizon" in capsys.readouterr().err
    assert cli_main(["train", "SimpleRegulator-v0", "--horizon", "5", "--steps", "50",
                     "--out", str(tmp_path / "b"), "--quiet", "--eval-episodes", "2"]) == 0


@pytest.mark.parametrize("argv, expected", [
    (["train", "NoSuchEnv-v9"], "env: 'NoSuchEnv-v9'"),
    (["train", "FrozenLake-v1"], "env: FrozenLake-v1 cannot be trained"),
    (["train", "--steps", "-5"], "--steps"),
    (["train", "--set", "m"], "--set"),
    (["train", "--set", "m=-3"], "--set m"),
    (["train", "--resume", "--out", "{tmp}/none"], "--resume: no run"),
    (["train", "--out", "{tmp}/file"], "--out"),
    (["train", "--out", "{tmp}/file/below"], "--out"),
])
def test_bad_input_is_one_line_naming_the_argument(argv, expected, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv + ["--quiet"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]   # argparse's own errors follow its usage
    assert last.startswith("pgfast train: error:") and expected in last
    assert "Traceback" not in err


def test_train_help_lists_the_builtin_envs_and_marks_the_tuned(capsys):
    from pgfast import mujoco

    with pytest.raises(SystemExit):
        cli_main(["train", "--help"])
    epilog = capsys.readouterr().out.split("built-in environments")[1]
    listed = epilog.split("):", 1)[1].split()
    names = [env_id.removeprefix("pgfast/") for env_id in pgfast.native_ids()]
    assert {n.rstrip("*") for n in listed} == set(names) | set(mujoco.ENV_NAMES)
    assert {n[:-1] for n in listed if n.endswith("*")} == set(defaults.TABLE)
    assert "generic settings" in epilog


def test_set_batch_steps_is_a_count_or_none(capsys):
    assert cli_main(["train", "Pendulum-v1", "--config", "--set", "batch_steps=2e3"]) == 0
    assert "batch_steps        2000         (override)" in capsys.readouterr().out
    assert cli_main(["train", "Pendulum-v1", "--config", "--set", "batch_steps=none"]) == 0
    assert "batch_steps        None         (override)" in capsys.readouterr().out
    for bad in ("batch_steps=0", "batch_steps=2.5"):
        with pytest.raises(SystemExit):
            cli_main(["train", "Pendulum-v1", "--config", "--set", bad])
        assert "batch_steps" in capsys.readouterr().err


def test_set_takes_zero_where_zero_means_something(capsys):
    """No damping, λ = 0 and γ = 0 are settings the updates accept; counts are not."""
    assert cli_main(["train", "Pendulum-v1", "--config", "--set", "damping=0",
                     "--set", "lam=0"]) == 0
    assert "lam                0.0          (override)" in capsys.readouterr().out
    for bad in ("damping=-1e-3", "lam=nan", "m=0", "epsilon=0"):
        with pytest.raises(SystemExit):
            cli_main(["train", "Pendulum-v1", "--config", "--set", bad])
        assert bad.split("=")[0] in capsys.readouterr().err


def test_batch_steps_and_damping_reach_the_update():
    config, sources = factory.settings("Pendulum-v1", "mlp", {"batch_steps": 2048, "damping": 0.1})
    _, _, update = factory.build("Pendulum-v1", "mlp", config)
    assert (update.batch_steps, update.damping) == (2048, 0.1)
    assert sources["damping"] == sources["batch_steps"] == "override"
    config, _ = factory.settings("Pendulum-v1", "mlp", {"update": "ppo", "batch_steps": 512})
    assert factory.build("Pendulum-v1", "mlp", config)[2].batch_steps == 512
