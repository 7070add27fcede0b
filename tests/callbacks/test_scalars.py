"""Growth scalars: one helper for every growth callback."""

import glob

import pytest
import tensorflow as tf

import keras_grow as kg
from keras_grow.callbacks import scalars


@pytest.mark.parametrize(
    "make",
    [
        lambda log_dir: kg.callbacks.AutoGrow(log_dir=log_dir),
        lambda log_dir: kg.callbacks.RandomNew(log_dir=log_dir),
    ],
    ids=["AutoGrow", "RandomNew"],
)
def test_log_dir_without_tensorboard_is_refused_at_construction(
    make, monkeypatch, tmp_path
):
    monkeypatch.setattr(scalars, "tensorboard_available", lambda: False)
    with pytest.raises(ValueError, match="pip install tensorboard"):
        make(str(tmp_path))
    make(None)  # no log_dir: nothing needed


def test_scalars_are_written_under_growth_and_flushed(tmp_path):
    writer = scalars.GrowthScalars(str(tmp_path), "Test")
    writer.write(0, lambda: {"params": 10, "width_0": 4})
    writer.write(1, lambda: {"params": 12})
    tags = {}
    for path in glob.glob(str(tmp_path / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(
                    (event.step, float(tf.make_ndarray(value.tensor)))
                )
    assert tags == {
        "growth/params": [(0, 10.0), (1, 12.0)],
        "growth/width_0": [(0, 4.0)],
    }

    def never():
        raise AssertionError("computed without a log dir")

    scalars.GrowthScalars(None, "Test").write(0, never)  # writes nothing
