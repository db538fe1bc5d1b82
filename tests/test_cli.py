"""Tests of the command line (blackout_tutorial.__main__, Chapters 7-10)."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blackout_tutorial import __main__ as cli
from blackout_tutorial import runs

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("argv", [
    [],
    ["train"],
    ["train", "--preset", "imagenet", "--out", "x"],
    ["train", "--preset", "digits", "--out", "x", "--scale", "huge"],
    ["train", "--preset", "digits", "--out", "x", "--steps", "-3"],
    ["train", "--preset", "digits", "--out", "x", "--lr", "fast"],
    ["sample", "--run", "r", "--out", "x.jpg"],
    ["sample", "--run", "r", "--out", "x.png", "--method", "euler"],
    ["sample", "--run", "r", "--out", "x.png", "--n", "0"],
    ["evaluate"],
])
def test_bad_arguments_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_help_documents_every_option():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions
                      if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help text"
        text = sub.format_help()
        for action in sub._actions:
            for option in action.option_strings:
                assert option in text


def test_module_entry_point_in_a_subprocess():
    run = subprocess.run([sys.executable, "-m", "blackout_tutorial", "sample", "--run"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "usage:" in run.stderr
    assert "Traceback" not in run.stderr


def test_train_sample_evaluate_end_to_end(tmp_path, capsys):
    run = tmp_path / "digits"
    cli.main(["train", "--preset", "digits", "--scale", "smoke", "--out", str(run),
              "--steps", "6", "--no-progress"])
    assert "6 steps" in capsys.readouterr().out
    cli.main(["train", "--preset", "digits", "--scale", "smoke", "--out", str(run),
              "--steps", "8", "--no-progress"])  # resumes: 2 more steps
    assert "8 steps" in capsys.readouterr().out
    assert len((run / "history.csv").read_text().splitlines()) == 9

    cli.main(["sample", "--run", str(run), "--n", "5", "--steps", "4", "--out",
              str(tmp_path / "s.npz"), "--no-progress", "--batch-size", "3"])
    samples, n_max = runs.load_samples_npz(tmp_path / "s.npz")
    assert samples.shape == (5, 1, 8, 8) and n_max == 16 and int(samples.max()) <= 16
    cli.main(["sample", "--run", str(run), "--n", "4", "--steps", "3", "--method",
              "binomial_bridge", "--out", str(tmp_path / "grid.png"), "--out",
              str(tmp_path / "png") + "/", "--fid-npz", str(tmp_path / "fid.npz"),
              "--shards", str(tmp_path / "shards"), "--no-progress"])
    assert (tmp_path / "grid.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "png").glob("*.png"))) == 4
    assert np.load(tmp_path / "fid.npz")["arr_0"].shape == (4, 8, 8, 3)
    assert len(list((tmp_path / "shards").glob("shard_*.npz"))) == 1

    cli.main(["evaluate", "--run", str(run), "--n-test", "4", "--elbo-terms", "3",
              "--n-samples", "20", "--steps", "3",
              "--json", str(tmp_path / "eval.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert "bits/dim" in out and "confident_fraction" in out
    numbers = json.loads((tmp_path / "eval.json").read_text())
    assert numbers["elbo_bits_per_dim"] > 0 and 0 <= numbers["confident_fraction"] <= 1
    assert numbers["elbo_terms"] == 3
    cli.main(["evaluate", "--run", str(run), "--n-test", "4", "--elbo-terms", "2",
              "--samples", str(tmp_path / "s.npz"), "--no-progress"])
    assert "confident_fraction" in capsys.readouterr().out


def test_broken_checkpoint_is_a_clean_error(tmp_path, capsys):
    (tmp_path / runs.CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sample", "--run", str(tmp_path), "--out", str(tmp_path / "s.png")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "corrupted or not a checkpoint" in err and "Traceback" not in err


def test_missing_run_is_a_one_line_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sample", "--run", str(tmp_path / "nowhere"), "--out", "x.png"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--run" in err and "nowhere" in err
