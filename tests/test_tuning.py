"""pgfast.tuning and ``pgfast tune``: a short Optuna study that can be resumed, whose
best settings come out as options ``pgfast train`` takes back (skipped, saying so,
without Optuna: pip install "pgfast[tune]")."""
import importlib.util
import json
import shlex
import sys

import pytest

from pgfast import defaults
from pgfast.cli import main as cli_main

NEEDS_OPTUNA = pytest.mark.skipif(importlib.util.find_spec("optuna") is None,
                                  reason='the search needs Optuna: pip install "pgfast[tune]"')


@NEEDS_OPTUNA
def test_a_short_study_resumes_and_prints_settings_train_takes(tmp_path, capsys):
    out = tmp_path / "study"
    base = ["tune", "CartPole-v1", "--steps", "1500", "--episodes", "2", "--out", str(out)]
    assert cli_main(base + ["--trials", "3"]) == 0
    first = capsys.readouterr().out
    assert [line.split(":")[0] for line in first.splitlines() if line.startswith("trial ")] \
        == ["trial 0", "trial 1", "trial 2"]
    # Run again: the study goes on from the file, to 5 trials in all.
    assert cli_main(base + ["--trials", "5"]) == 0
    again = capsys.readouterr().out
    assert [line.split(":")[0] for line in again.splitlines() if line.startswith("trial ")] \
        == ["trial 3", "trial 4"]
    import optuna

    study = optuna.load_study(study_name="pgfast", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 5
    # Every trial trained on seeds of its own.
    seeds = [s for t in study.trials for s in t.user_attrs.get("seeds", [])]
    assert len(seeds) == len(set(seeds))
    # The printed command is one pgfast train accepts, with the best trial's settings.
    command = next(line for line in again.splitlines() if line.startswith("pgfast train"))
    argv = shlex.split(command)[1:]
    assert cli_main(argv + ["--config"]) == 0
    listed = capsys.readouterr().out
    best = json.loads((out / "best.json").read_text())
    assert best["trial"] == study.best_trial.number
    config, sources = defaults.settings("CartPole-v1", "linear",
                                        {k: tuple(v) if isinstance(v, list) else v
                                         for k, v in best["settings"].items()})
    for key in study.best_trial.params:
        assert sources[key] == "override" and f"(override)" in listed
    assert config["update"] == "ppo" and config["steps"] == 1500
    assert (out / "study.png").stat().st_size > 1000


@NEEDS_OPTUNA
def test_suggest_draws_the_space_of_the_update_and_policy():
    import optuna

    from pgfast.tuning import SPACES, suggest

    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    drawn = suggest(trial, "trpo", "mlp", discrete=False)
    assert set(drawn) == set(SPACES["common"]) | {"epsilon", "log_std", "hidden"}
    assert isinstance(drawn["hidden"], tuple) and 1e-3 <= drawn["epsilon"] <= 0.1
    assert set(drawn) <= set(defaults.GENERIC)


def test_missing_optuna_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["tune", "CartPole-v1", "--trials", "1", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and 'pip install "pgfast[tune]"' in err
