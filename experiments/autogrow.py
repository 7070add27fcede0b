"""AutoGrow: find the depth of a staged net while it trains.

    python -m experiments.autogrow --preset=fmnist_small --workdir=out/autogrow
    python -m experiments.autogrow --preset=fmnist_small --initializer=zero --seed=1 ...

Every field of `experiments.runs.autogrow.AutoGrowConfig` is a flag that
overrides the preset. The work dir receives config.json, history.csv,
growth_log.json, found_spec.json, autogrow.png, model.keras, serving/ and
result.json. With `--multi_worker` it runs as one worker of
MultiWorkerMirroredStrategy (TF_CONFIG; docs/distributed.md).
"""

from absl import app

from experiments.runs import autogrow
from experiments.runs import cli

main = cli.run_binary(
    autogrow,
    autogrow.AutoGrowConfig,
    "out/autogrow",
    lambda r: (
        f"found net: {r['found']} ({r['params']:,} parameters), "
        f"test accuracy {r['test_accuracy']:.4f}, {r['epochs']} epochs"
    ),
)

if __name__ == "__main__":
    app.run(main)
