"""The Firefly reproduction study on real Fashion-MNIST (see
docs/results/firefly.md): Firefly against RandomSplit and RandomNew and the
full-width net from scratch, the split/new ablation, and n = 1 against
n = 4. Resumable: finished runs are skipped.

    python -m experiments.firefly_study --workdir=out/firefly_study
    python -m experiments.firefly_study --workdir=out/firefly_study --reverse
"""

import os

from absl import app
from absl import flags

from experiments.runs import firefly_study
from experiments.runs import study

flags.DEFINE_string("workdir", "out/firefly_study", "Where every run writes.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every row.")
flags.DEFINE_bool("reverse", False, "Take the runs last first (a second worker).")
flags.DEFINE_bool("report_only", False, "Write the report from finished runs.")
FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    del argv
    runs = firefly_study.grid(tuple(int(s) for s in FLAGS.seeds))
    if not FLAGS.report_only:
        study.execute(runs[::-1] if FLAGS.reverse else runs, FLAGS.workdir, ROOT)
    rows = study.summarise(runs, FLAGS.workdir)
    report = firefly_study.report(rows, FLAGS.workdir)
    study.write_outputs(rows, FLAGS.workdir, report)
    print(report)


if __name__ == "__main__":
    app.run(main)
