"""The README's main job, run as a user runs it (a subprocess), shortened."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.slow
def test_grow_demo_grows_saves_and_exports_quietly(tmp_path):
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.grow_demo",
            f"--workdir={workdir}",
            "--max_epochs=6",
            "--max_depths=2,2,2",
            "--min_delta=0",  # the running best never falls: only max_depths stop
            "--fine_tune_epochs=1",
            "--take=256",
            "--batch_size=64",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        # As a user's shell has it: without the log level tests/conftest.py
        # sets (or one the caller set), so the quiet start is the demo's own.
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"},
    )
    assert "found net: Basic3ResNet(8,16,32)-2-2-2" in result.stdout
    assert "test accuracy:" in result.stdout
    assert "serving export:" in result.stdout.splitlines()[-1]
    # No TensorFlow start-up or export log lines.
    for noise in ("I0000", "W0000", "E0000", "cudart", "INFO:tensorflow", "I1"):
        assert noise not in result.stderr, result.stderr[-2000:]
    for name in (
        "config.json",
        "history.csv",
        "growth_log.json",
        "found_spec.json",
        "model.keras",
        os.path.join("serving", "1", "saved_model.pb"),
    ):
        assert os.path.exists(workdir / name), name
    log = json.loads((workdir / "growth_log.json").read_text())
    assert [e["to"] for e in log if e["kind"] == "grow"] == [
        "Basic3ResNet(8,16,32)-2-1-1",
        "Basic3ResNet(8,16,32)-2-2-1",
        "Basic3ResNet(8,16,32)-2-2-2",
    ]
    assert [e["kind"] for e in log][-2:] == ["fine_tune", "done"]
    config = json.loads((workdir / "config.json").read_text())
    assert config["take"] == 256 and config["max_depths"] == [2, 2, 2]
    with open(workdir / "history.csv") as handle:  # 3 growing, 1 to stop, 1 tune
        assert len(handle.read().strip().splitlines()) == 1 + 5
