import keras_grow as kg
from experiments.runs import EpochLine
from experiments.runs import progress


def test_epoch_line_prints_the_spec_and_logs_the_architecture():
    model = kg.GrowableModel(
        kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
    )
    lines = []
    line = EpochLine(total_epochs=5, print_fn=lines.append)
    line.set_model(model)
    line.on_epoch_begin(0)
    model.grow(model.spec.with_block_added(2))  # a growth at the epoch's end
    logs = {"loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.4}
    line.on_epoch_end(0, logs)
    assert lines[0].startswith("epoch 1/5 Basic3ResNet(4,8,8)-1-1-1 (")
    assert "val_accuracy: 0.4000" in lines[0]
    # The architecture used *during* the epoch, not the grown one.
    assert logs["depth_stage3"] == 1 and logs["depth_stage1"] == 1
    assert logs["params"] < model.body.count_params()


def test_run_clock_counts_the_processes_before_a_resume():
    class Restored:  # a BackupAndRestore that restored two epochs
        history = [{"epoch": 0, "run_seconds": 40.0}, {"epoch": 1, "run_seconds": 95.5}]

    clock = progress.RunClock(Restored())
    clock.on_train_begin()
    logs = {}
    clock.on_epoch_end(2, logs)
    assert logs["run_seconds"] >= 95.5  # the restored run's, and this one's
    assert clock.seconds() >= logs["run_seconds"]
    fresh = progress.RunClock(type("Fresh", (), {"history": []})())
    fresh.on_train_begin()
    # Begun after `clock`, and without an offset: less than `clock`'s own part.
    fresh_seconds = fresh.seconds()
    assert 0 <= fresh_seconds <= clock.seconds() - 95.5
