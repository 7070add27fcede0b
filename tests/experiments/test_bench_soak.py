"""The soak benchmark's census: what growth leaves alive (issue 17)."""

import pytest

from experiments.runs.bench import soak


@pytest.mark.slow
def test_growth_and_rollback_leave_no_bodies_layers_or_variables_behind():
    config = soak.SoakConfig(events=12, early=4, rollback_every=4, steps=2)
    result = soak.run(config, log=lambda *_: None)
    assert (result["grows"], result["rollbacks"]) == (9, 3)
    assert result["final"] == "MLP-14"  # 8 + 9 units grown - 3 rolled back
    early, end = result["early"], result["end"]
    for what in (
        "bodies (keras Functional)",
        "keras layers",
        "traced functions (ConcreteFunction)",
        "variables (keras Variable)",
    ):
        assert end[what] == early[what], what
    # The census counts the whole process (other tests' models included):
    # what matters is that growth added none.
    bodies = early["bodies (keras Functional)"]
    text = soak.table(result, config)
    assert (
        f"| bodies (keras Functional) | {bodies} | {bodies} | 1.000 | 0.00 | - | "
        "1.1 | met |"
    ) in text
