"""experiments/bench_growth.py end to end, shrunk to the embedded sample."""

import json

import pytest

from tests.experiments.test_autogrow_binaries import _run

TINY = [
    "--dataset=fashion_mnist_sample",
    "--resnet=Basic3ResNet-1-1-1",
    "--resnet_widths=4,8,8",
    "--vgg=VGG11-4",
    "--firefly_vgg=VGG11-4",
    "--steps=3",
    "--repeats=1",
    "--growths=1",
    "--validation_steps=3",
    "--jit_modes=0",
    "--autogrow_take=512",
    "--autogrow_epochs=2",
    "--autogrow_period=1",
    "--firefly_rounds=1",
    "--delta_steps=2",
    "--score_batches=1",
    "--pipeline_batches=5",
]


# A benchmark end to end in a subprocess (100 s here): nightly, so that
# `make test` stays under 20 minutes on 2 cores.
@pytest.mark.nightly
def test_bench_binary_measures_every_section_and_keeps_notes(tmp_path):
    report = tmp_path / "bench.md"
    report.write_text(
        "stale tables\n<!-- notes: kept when the benchmark rewrites this file -->\n"
        "## Notes\nhand-written\n"
    )
    result = _run("experiments.bench_growth", "--quick", f"--report={report}", *TINY)
    assert "Wrote" in result.stdout
    text = report.read_text()
    for heading in (
        "Targets",
        "1. Wrapper",
        "2. Growth",
        "3. AutoGrow",
        "4. Firefly",
        "5. Input pipeline",
        "6. Memory",
    ):
        assert f"## {heading}" in text, heading
    assert "stale tables" not in text and text.endswith("## Notes\nhand-written\n")
    results = json.loads((tmp_path / "bench.json").read_text())
    assert results["preset"] == "quick" and results["config"]["steps"] == 3
    wrapper = results["wrapper"]
    assert [r["jit_compile"] for r in wrapper] == [False, False]
    assert all(r["plain_ops"] == r["growable_ops"] for r in wrapper)
    assert [g["events"][0]["to"] for g in results["growth"]] == [
        "Basic3ResNet(4,8,8)-2-1-1",
        "VGG(1,2,2,2,2)-4",
    ]
    autogrow = results["autogrow"]
    assert autogrow["growths"] == 2 and autogrow["to"] == "Basic3ResNet(4,8,8)-2-2-1"
    (firefly,) = results["firefly"]
    assert len(firefly["rounds"]) == 1
    assert firefly["rounds"][0]["to_params"] > firefly["rounds"][0]["from_params"]
    assert firefly["memory"]["growth_peak_mb"] > 0
    assert results["pipeline"]["pipeline_images_per_s"] > 0
