"""What of a growth log a resumed run must repeat exactly."""

from keras_grow import growth_events


def test_reproducible_drops_wall_times_and_trace_counts_only():
    log = [
        {
            "kind": "grow",
            "round": 2,
            "seconds": 1.5,
            "seconds_build": 0.2,
            "descent_traces": 1,
            "measure_traces": 3,
            "timing": {"retrace": 0.4},
            "widths_after": [9, 7],
            "unit_values": {"layer1": [0.5]},
            "traces_of_nothing": 0,
            "seconds_per_epoch": 3.0,
        },
        {"epoch": "3", "epoch_seconds": "12.5", "val_accuracy": "0.81"},
    ]
    assert growth_events.reproducible(log) == [
        {
            "kind": "grow",
            "round": 2,
            "widths_after": [9, 7],
            "unit_values": {"layer1": [0.5]},
        },
        {"epoch": "3", "val_accuracy": "0.81"},
    ]
