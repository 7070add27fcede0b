"""XLA compiles a growing run's steps once per shape: never again for a
growth into the reserve, once per in-place width growth (counted from the
modules XLA dumps, in a child process)."""

import pytest

from experiments import bench_xla_compiles


@pytest.mark.slow
def test_a_growth_into_the_reserve_compiles_nothing():
    result = bench_xla_compiles.run_in_child(
        "reserve", epochs=2, take=128, batch_size=64, widths=(2, 4, 4)
    )
    assert result["growths"] == 2 and result["in_place"] == 2
    assert result["final"] == "Basic3ResNet(2,4,4)-2-2-1"
    # Epoch 1 compiles the train step once (one batch shape); epoch 2,
    # after a growth into the reserve, compiles nothing.
    assert [e["train"] for e in result["epochs"]] == [1, 0]
    # Validation's 600 images: full batches and a last partial one.
    assert [e["test"] for e in result["epochs"]] == [2, 0]
    assert result["traces"] == {"train": 1, "test": 1}


# Nightly: tests/test_in_place.py keeps one trace across growths fast.
@pytest.mark.nightly
def test_an_in_place_width_growth_recompiles_without_a_retrace():
    result = bench_xla_compiles.run_in_child(
        "width", epochs=3, take=128, batch_size=64, widths=(2, 4, 4)
    )
    assert result["in_place"] == result["growths"] == 3
    assert result["final"] == "MLP-67-64"
    # New variable shapes: XLA compiles the kept steps again each epoch.
    assert [e["train"] for e in result["epochs"]] == [1, 1, 1]
    assert [e["test"] for e in result["epochs"]] == [2, 2, 2]
    assert result["traces"] == {"train": 1, "test": 1}


def test_compiled_modules_counts_one_file_per_compilation(tmp_path):
    for name in (
        "module_0000.a.before_optimizations.txt",
        "module_0001.b.before_optimizations.txt",
    ):
        (tmp_path / name).write_text("")
    (tmp_path / "module_0000.a.cpu_after_optimizations.txt").write_text("")
    assert bench_xla_compiles.compiled_modules(str(tmp_path)) == 2
