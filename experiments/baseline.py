"""Train a fixed spec from scratch (staircase learning rate), to compare a
found net with the same net trained plainly.

    python -m experiments.baseline --spec=Basic3ResNet-3-2-2 --widths=8,16,32 \
        --epochs=20 --workdir=out/baseline

Every field of `experiments.runs.baseline.BaselineConfig` is a flag.
"""

from absl import app
from absl import flags

from experiments.runs import baseline
from experiments.runs import cli

flags.DEFINE_string("workdir", "out/baseline", "Where results are written.")
cli.define_config_flags(baseline.BaselineConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    overrides = cli.overrides(baseline.BaselineConfig)
    config = baseline.BaselineConfig(**overrides)
    result = baseline.run(config, FLAGS.workdir)
    print(
        f"{result['spec']} from scratch: test accuracy {result['test_accuracy']:.4f}, "
        f"{result['epochs']} epochs, {result['wall_seconds']:.0f}s"
    )


if __name__ == "__main__":
    app.run(main)
