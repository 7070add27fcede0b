"""The AutoGrow reproduction study on real Fashion-MNIST (see
docs/results/autogrow.md): initialisers, growth period, subsampling, and
the found nets trained from scratch. Resumable: finished runs are skipped.

    python -m experiments.autogrow_study --workdir=out/autogrow_study
"""

import os

from absl import app
from absl import flags

from experiments.runs import study

flags.DEFINE_string("workdir", "out/autogrow_study", "Where every run writes.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the initialiser table.")
flags.DEFINE_list("few_seeds", ["0", "1"], "Seeds of the other tables.")
flags.DEFINE_bool("reverse", False, "Take the runs last first (a second worker).")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    del argv
    seeds = tuple(int(s) for s in FLAGS.seeds)
    few = tuple(int(s) for s in FLAGS.few_seeds)

    def order(runs):
        return list(reversed(runs)) if FLAGS.reverse else list(runs)

    runs = study.grid(seeds, few)
    study.execute(order(runs), FLAGS.workdir, ROOT)
    runs += study.baseline_runs(FLAGS.workdir, seeds)
    study.execute(order(runs), FLAGS.workdir, ROOT)
    rows = study.summarise(runs, FLAGS.workdir)
    report = study.report(rows, FLAGS.workdir)
    study.write_outputs(rows, FLAGS.workdir, report)
    print(report)


if __name__ == "__main__":
    app.run(main)
