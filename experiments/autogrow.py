"""AutoGrow: find the depth of a staged net while it trains.

    python -m experiments.autogrow --preset=fmnist_small --workdir=out/autogrow
    python -m experiments.autogrow --preset=fmnist_small --initializer=zero --seed=1 ...

Every field of `experiments.runs.autogrow.AutoGrowConfig` is a flag that
overrides the preset. The work dir receives config.json, history.csv,
growth_log.json, found_spec.json, autogrow.png, model.keras, serving/ and
result.json.
"""

from absl import app
from absl import flags

from experiments.runs import autogrow
from experiments.runs import cli

flags.DEFINE_string("preset", "fmnist_small", f"One of {sorted(autogrow.PRESETS)}.")
flags.DEFINE_string("workdir", "out/autogrow", "Where results are written.")
cli.define_config_flags(autogrow.AutoGrowConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = autogrow.resolve(FLAGS.preset, **cli.overrides(autogrow.AutoGrowConfig))
    result = autogrow.run(config, FLAGS.workdir)
    print(
        f"found net: {result['found']} ({result['params']:,} parameters), "
        f"test accuracy {result['test_accuracy']:.4f}, {result['epochs']} epochs, "
        f"{result['wall_seconds']:.0f}s; results in {FLAGS.workdir}"
    )


if __name__ == "__main__":
    app.run(main)
