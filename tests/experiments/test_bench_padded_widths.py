"""experiments/bench_padded_widths.py end to end, on a tiny MLP."""

import json

import pytest

from tests.experiments.test_autogrow_binaries import _run


@pytest.mark.slow
def test_each_net_is_timed_at_its_widths_and_scaled_up(tmp_path):
    _run(
        "experiments.bench_padded_widths",
        "--nets=MLP-6-5",
        "--factors=1.5,2",
        "--repeats=1",
        "--steps=1",
        "--batch_size=8",
        f"--out={tmp_path}",
    )
    with open(tmp_path / "result.json") as handle:
        result = json.load(handle)["MLP-6-5"]
    assert {k: v["notation"] for k, v in result.items()} == {
        "1.0": "MLP-6-5",
        "1.5": "MLP-9-8",  # widths rounded up
        "2.0": "MLP-12-10",
    }
    assert result["1.0"]["over_exact"] == 1.0
    assert all(v["step_ms"] > 0 for v in result.values())
