"""Plots accept what a user has at hand: fit's History and the growth log."""

import os

import keras_grow as kg
from experiments.runs import plots
from tests.conftest import compile_sgd


def test_plot_autogrow_takes_the_history_fit_returns(tmp_path):
    data = kg.data.load("fashion_mnist_sample", "train", 64, take=64, seed=0)
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 4, 4))
    model = compile_sgd(kg.GrowableModel(spec))
    autogrow = kg.callbacks.AutoGrow(growth_period=1, monitor="loss", verbose=0)
    history = model.fit(data, epochs=3, callbacks=[autogrow], verbose=0)
    depths = plots.depths_per_epoch(model.growth_log, 3)
    # Grown at the end of epochs 1 and 2 (stage 1, then stage 2).
    assert depths == {
        "depth_stage1": [1, 2, 2],
        "depth_stage2": [1, 1, 2],
        "depth_stage3": [1, 1, 1],
    }
    path = str(tmp_path / "autogrow.png")
    assert plots.plot_autogrow(history, model.growth_log, path, title="t")
    assert os.path.getsize(path) > 0
    assert plots.plot_autogrow(history.history, model.growth_log, path)
