"""The growth-cost benchmark's timing loop counts what it claims."""

import keras
import numpy as np

import keras_grow as kg
from experiments.runs.bench import growth_cost


def _model(reserve):
    spec = kg.specs.parse("Basic3ResNet-1-1-1", (12, 12, 1), 4, widths=(4, 8, 8))
    model = kg.GrowableModel(spec)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    if reserve:
        model.reserve_depth((2, 2, 2))
    return model


def test_time_growths_reports_in_place_growths_and_traces():
    rng = np.random.default_rng(0)
    batch = (rng.random((8, 12, 12, 1), dtype=np.float32), rng.integers(0, 4, 8))

    def deeper(spec):
        return spec.with_block_added(0 if spec.depths[0] == 1 else 1)

    results = {
        reserve: growth_cost.time_growths(
            _model(reserve), batch, deeper, 2, 2, initializer="zero", seed=0
        )
        for reserve in (True, False)
    }
    assert results[True]["in_place"] and not results[False]["in_place"]
    assert results[True]["traces"]["train"] == 1
    assert results[False]["traces"]["train"] == 3  # the first, and one a growth
    assert results[True]["final"] == results[False]["final"]
    assert results[True]["final"] == "Basic3ResNet(4,8,8)-2-2-1"
    for result in results.values():
        assert result["step_ms"] > 0 and result["grow_ms"] > 0
        assert set(growth_cost.GROW_PARTS) <= {k[:-3] for k in result}
