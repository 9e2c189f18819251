"""The pgfast command line: train, eval, bench and returns, and their usage errors
(the run folder's resume and overwrite rules are in test_resume.py)."""
import json

import pytest

from pgfast.cli import main as cli_main


def test_cli_train_and_eval_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_main(["train", "CartPole-v1", "--update", "ppo", "--steps", "2000",
                     "--seed", "1", "--out", str(out), "--quiet",
                     "--eval-episodes", "5"]) == 0
    for name in ("checkpoint.npz", "curve.csv", "evaluation.json"):
        assert (out / name).exists(), name
    summary = json.loads((out / "evaluation.json").read_text())
    assert summary["episodes"] == 5 and summary["train_steps"] >= 2000
    assert cli_main(["eval", str(out), "--episodes", "3"]) == 0
    assert "mean return" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["train", "--steps", "0"],
    ["train", "--update", "sgd"],
    ["train", "NoSuchEnv-v9", "--steps", "10"],
    ["eval", "/nonexistent/run"],
])
def test_cli_bad_arguments_give_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_bench_table_puts_references_next_to_ours(capsys):
    from pgfast.cli import print_bench_table

    report = {"benchmarks": [
        {"group": "gae", "name": "test_gae_pgfast", "stats": {"median": 1e-4}},
        {"group": "gae", "name": "test_gae_numpy_loop", "stats": {"median": 5e-3}},
    ]}
    print_bench_table(report)
    out = capsys.readouterr().out
    assert "test_gae_numpy_loop" in out and "50.00x" in out and "1.00x" in out


def test_cli_bench_without_suite_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["bench", "--path", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    assert "no benchmark suite" in capsys.readouterr().err


def test_train_writes_a_short_video_of_the_kept_policy(tmp_path, capsys):
    pytest.importorskip("imageio", reason='the video needs pip install "pgfast[video]"')
    pytest.importorskip("pygame", reason='drawing CartPole needs pip install "pgfast[video]"')
    out = tmp_path / "run"
    assert cli_main(["train", "--quiet", "--out", str(out), "--eval-episodes", "3"]) == 0
    video = [p for p in out.iterdir() if p.stem == "video"]
    assert len(video) == 1 and video[0].stat().st_size > 1000
    import imageio.v3 as iio

    frames = iio.imread(video[0])
    assert 1 < len(frames) <= 201 and frames.shape[-1] == 3   # the reset, then 200 steps
    assert cli_main(["train", "--quiet", "--out", str(tmp_path / "plain"), "--no-video",
                     "--eval-episodes", "3"]) == 0
    assert not any(p.stem == "video" for p in (tmp_path / "plain").iterdir())
    # An env that does not render: one line, and the run is whole.
    assert cli_main(["train", "pgfast/SimpleRegulator-v0", "--horizon", "20", "--steps", "500",
                     "--quiet", "--out", str(tmp_path / "regulator"),
                     "--eval-episodes", "3"]) == 0
    assert "no video.mp4 (render_mode" in capsys.readouterr().out
    assert (tmp_path / "regulator" / "evaluation.json").exists()


def test_train_threads_gives_the_same_run(tmp_path):
    summaries = []
    for threads in ("1", "2"):
        out = tmp_path / threads
        assert cli_main(["train", "--quiet", "--no-video", "--out", str(out), "--threads",
                         threads, "--eval-episodes", "5"]) == 0
        summary = json.loads((out / "evaluation.json").read_text())
        summaries.append({k: v for k, v in summary.items() if "seconds" not in k})
    assert summaries[0] == summaries[1]
