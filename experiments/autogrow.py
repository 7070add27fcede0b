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
from absl import flags

from experiments.runs import autogrow
from experiments.runs import cli
from experiments.runs import training

flags.DEFINE_string("preset", "fmnist_small", f"One of {sorted(autogrow.PRESETS)}.")
flags.DEFINE_string("workdir", "out/autogrow", "Where results are written.")
cli.define_config_flags(autogrow.AutoGrowConfig)
cli.define_multi_worker_flag()
FLAGS = flags.FLAGS


def main(argv):
    del argv
    strategy = cli.multi_worker_strategy()  # before any other TensorFlow op
    config = autogrow.resolve(FLAGS.preset, **cli.overrides(autogrow.AutoGrowConfig))
    result = autogrow.run(config, FLAGS.workdir, strategy)
    where = training.worker_workdir(FLAGS.workdir, strategy)
    print(
        f"found net: {result['found']} ({result['params']:,} parameters), "
        f"test accuracy {result['test_accuracy']:.4f}, {result['epochs']} epochs, "
        f"{result['wall_seconds']:.0f}s; results in {where}"
    )


if __name__ == "__main__":
    app.run(main)
