"""The README's main job, run as a user runs it (a subprocess), shortened."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


@pytest.mark.slow
def test_grow_demo_grows_saves_and_exports(tmp_path):
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.grow_demo",
            f"--workdir={workdir}",
            "--epochs=3",
            "--every=1",
            "--growths=2",
            "--take=256",
            "--batch_size=64",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert "found net: Basic3ResNet-2-2-1" in result.stdout
    assert "test accuracy:" in result.stdout
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
    assert [e["to"] for e in log] == ["Basic3ResNet-2-1-1", "Basic3ResNet-2-2-1"]
    config = json.loads((workdir / "config.json").read_text())
    assert config["take"] == 256 and config["epochs"] == 3
    with open(workdir / "history.csv") as handle:
        assert len(handle.read().strip().splitlines()) == 1 + 3
