"""experiments/autogrow.py and experiments/baseline.py, run as a user runs
them, on the tiny preset."""

import csv
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )


@pytest.mark.slow
def test_autogrow_binary_writes_every_file(autogrow_tiny_run):
    workdir, result = autogrow_tiny_run
    assert "found net: Basic3ResNet(4,8,8)-" in result.stdout
    assert "epoch 1/12 Basic3ResNet(4,8,8)-1-1-1" in result.stdout  # progress lines
    expected = [
        "config.json",
        "history.csv",
        "growth_log.json",
        "found_spec.json",
        "autogrow.png",
        "model.keras",
        "result.json",
        os.path.join("serving", "1", "saved_model.pb"),
    ]
    for name in expected:
        assert os.path.getsize(workdir / name) > 0, name
    assert any(
        name.startswith("events.out") for name in os.listdir(workdir / "tensorboard")
    )
    config = json.loads((workdir / "config.json").read_text())
    assert config["seed"] == 1 and config["take"] == 256  # resolved preset + flag
    run = json.loads((workdir / "result.json").read_text())
    found = json.loads((workdir / "found_spec.json").read_text())
    assert run["found"] == found["notation"] and run["finished"] is True
    log = json.loads((workdir / "growth_log.json").read_text())
    assert [e["kind"] for e in log].count("stop_stage") == 3
    with open(workdir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == run["epochs"]
    assert {"depth_stage1", "depth_stage3", "params", "val_accuracy"} <= set(rows[0])
    assert rows[0]["depth_stage1"] == "1"


# Nightly: fixed nets train fast in tests/experiments/runs/test_autogrow_paired.py.
@pytest.mark.nightly
def test_baseline_binary_trains_a_fixed_spec(tmp_path):
    workdir = tmp_path / "base"
    result = _run(
        "experiments.baseline",
        "--spec=Basic3ResNet-2-1-1",
        "--widths=4,8,8",
        "--take=128",
        "--epochs=2",
        "--batch_size=64",
        f"--workdir={workdir}",
    )
    assert "Basic3ResNet(4,8,8)-2-1-1 from scratch" in result.stdout
    run = json.loads((workdir / "result.json").read_text())
    assert run["epochs"] == 2 and run["spec"] == "Basic3ResNet(4,8,8)-2-1-1"
    assert (workdir / "model.keras").exists()
    with open(workdir / "history.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2


@pytest.mark.parametrize("verbose", [False, True])
def test_binaries_start_without_tensorflow_noise_unless_verbose(verbose):
    args = [sys.executable, "-m", "experiments.autogrow", "--help"]
    result = subprocess.run(
        args + (["--verbose"] if verbose else []),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    noisy = any(n in result.stderr for n in ("I0000", "cudart", "cpu_feature"))
    assert noisy == verbose, result.stderr[-1000:]
