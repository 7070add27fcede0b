"""Firefly: grow the width of a net while it trains (or a random baseline).

    python -m experiments.firefly --preset=fmnist_small --workdir=out/firefly
    python -m experiments.firefly --preset=fmnist_small --method=random_split ...
    python -m experiments.firefly --preset=fmnist_small --initial=VGG11-16 \
        --max_rounds=0 ...     # the full-width net from scratch

Every field of `experiments.runs.firefly.FireflyConfig` is a flag that
overrides the preset. The work dir receives config.json, history.csv,
growth_log.json, found_spec.json, firefly.png, model.keras, serving/ and
result.json. With `--multi_worker` it runs as one worker of
MultiWorkerMirroredStrategy (TF_CONFIG; docs/distributed.md).
"""

from absl import app

from experiments.runs import cli
from experiments.runs import firefly

main = cli.run_binary(
    firefly,
    firefly.FireflyConfig,
    "out/firefly",
    lambda r: (
        f"{r['method']}: {r['found']} ({r['params']:,} parameters), "
        f"test accuracy {r['test_accuracy']:.4f}, {r['rounds']} rounds"
    ),
)

if __name__ == "__main__":
    app.run(main)
