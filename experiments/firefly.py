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
from absl import flags

from experiments.runs import cli
from experiments.runs import firefly
from experiments.runs import training

flags.DEFINE_string("preset", "fmnist_small", f"One of {sorted(firefly.PRESETS)}.")
flags.DEFINE_string("workdir", "out/firefly", "Where results are written.")
cli.define_config_flags(firefly.FireflyConfig)
cli.define_multi_worker_flag()
FLAGS = flags.FLAGS


def main(argv):
    del argv
    strategy = cli.multi_worker_strategy()  # before any other TensorFlow op
    config = firefly.resolve(FLAGS.preset, **cli.overrides(firefly.FireflyConfig))
    result = firefly.run(config, FLAGS.workdir, strategy)
    where = training.worker_workdir(FLAGS.workdir, strategy)
    print(
        f"{result['method']}: {result['found']} ({result['params']:,} parameters), "
        f"test accuracy {result['test_accuracy']:.4f}, {result['rounds']} rounds, "
        f"{result['wall_seconds']:.0f}s; results in {where}"
    )


if __name__ == "__main__":
    app.run(main)
