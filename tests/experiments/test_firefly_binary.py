"""experiments/firefly.py run as a user runs it, on the tiny preset."""

import csv
import json
import os

import pytest

from tests.experiments.test_autogrow_binaries import _run


@pytest.mark.slow
@pytest.mark.parametrize(
    "method",
    # Nightly, where the kill-and-resume chain runs the binary too. The
    # method switch itself is pinned fast in
    # tests/experiments/runs/test_cli_and_presets.py; a Firefly paired
    # study's arms run fast in tests/experiments/runs/test_firefly_paired.py.
    [
        pytest.param(method, marks=pytest.mark.nightly)
        for method in ("firefly", "random_split")
    ],
)
def test_firefly_binary_writes_every_file(tmp_path, method):
    workdir = tmp_path / method
    result = _run(
        "experiments.firefly",
        "--preset=fmnist_tiny",
        f"--method={method}",
        f"--workdir={workdir}",
        "--seed=1",
    )
    assert f"{method}: VGG11-" in result.stdout
    for name in [
        "config.json",
        "history.csv",
        "growth_log.json",
        "found_spec.json",
        "firefly.png",
        "model.keras",
        "result.json",
        os.path.join("serving", "1", "saved_model.pb"),
    ]:
        assert os.path.getsize(workdir / name) > 0, name
    assert any(
        name.startswith("events.out") for name in os.listdir(workdir / "tensorboard")
    )
    config = json.loads((workdir / "config.json").read_text())
    assert config["seed"] == 1 and config["method"] == method
    run = json.loads((workdir / "result.json").read_text())
    log = json.loads((workdir / "growth_log.json").read_text())
    assert run["rounds"] == 2 == sum(e["kind"] == "grow" for e in log)
    assert len(run["points"]) == 3  # two rounds and the end
    assert run["points"][-1]["params"] == run["params"]
    with open(workdir / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {"params", "epoch_seconds"} <= set(rows[0])
