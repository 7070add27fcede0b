"""The benchmark's probes and report (the measurements run in the binary)."""

import keras
import numpy as np

import keras_grow as kg
from experiments.runs.bench import measures
from experiments.runs.bench import probes
from experiments.runs.bench import report
from tests.conftest import compile_sgd


def test_step_times_start_a_generation_at_each_growth(sample_arrays):
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
    model = compile_sgd(kg.GrowableModel(spec))
    probe = probes.StepTimes()

    class GrowAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                self.model.grow(measures.successor(self.model.spec))

    x, y = sample_arrays
    model.fit(
        x[:64],
        y[:64],
        validation_data=(x[64:96], y[64:96]),
        batch_size=16,
        epochs=2,
        verbose=0,
        callbacks=[probe, GrowAfterFirstEpoch()],
    )
    assert model.spec.notation == "Basic3ResNet(4,8,8)-2-1-1"  # the shallowest stage
    assert [(e, g) for e, g, _ in probe.train] == [(0, 0)] * 4 + [(1, 1)] * 4
    assert [(e, g) for e, g, _ in probe.test] == [(0, 0)] * 2 + [(1, 1)] * 2
    first, steady = probe.first_and_steady(probe.train, 1)
    assert first > 0 and steady > 0


def test_successor_grows_around_the_start():
    info = kg.data.info("fashion_mnist_sample")
    spec = kg.specs.parse("Basic3ResNet-2-1-2", info.input_shape, 10)
    assert measures.successor(spec).depths == (2, 2, 2)
    vgg = kg.specs.parse("VGG11-4", info.input_shape, 10)
    assert measures.successor(vgg).stage_depths == (1, 2, 2, 2, 2)


def test_peak_memory_sees_an_allocation_inside_the_block():
    with probes.PeakMemory() as memory:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
    assert memory.peak - memory.start >= 60 * 2**20


def _results():
    ratio = {"ratio": 1.01, "net": "N", "jit_compile": False}
    return {
        "wrapper": [ratio],
        "growth": [{"net": "N", "median_epoch_fraction": 0.2}],
        "autogrow": {"from": "A", "to": "B", "ratio": 1.04},
        "firefly": [
            {
                "net": "V",
                "jit_compile": False,
                "median_epoch_equivalents": 0.3,
                "memory": {"ratio": 1.1},
            }
        ],
        "pipeline": {"models": {"N": {"ratio": 2.0}}},
    }


def test_report_verdicts_follow_the_targets():
    verdicts = {
        key: report._verdict(key, value)
        for key, value, _ in report.summary_rows(_results())
    }
    assert verdicts == {
        "wrapper": "met",
        "growth": "**missed**",
        "autogrow": "met",
        "firefly": "**missed**",
        "pipeline": "**missed**",  # 2x < 3x: higher is better here
        "memory": "met",
    }


def test_rewriting_the_report_keeps_the_notes_after_the_marker(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"old tables\n{report.NOTES_MARKER}\n\n## Notes\nkept\n")
    assert report.kept_notes(str(path)) == "## Notes\nkept\n"
    assert report.kept_notes(str(tmp_path / "missing.md")) == ""
