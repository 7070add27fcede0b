"""AutoGrow's settings side by side and against fixed nets, paired by seed
(see docs/results/autogrow.md and ../shared/DESIGN.md section 6).

Per seed every AutoGrow arm (gaussian, uniform, zero, adam initialisers;
convergent growth) starts from the same initial net on the same batches;
a grid of fixed depths and the found net train from scratch. Resumable:
finished arms are skipped. Writes report.md, report.json and curves.png
into the work dir.

    python -m experiments.autogrow_paired --workdir=out/autogrow_paired
    python -m experiments.autogrow_paired --seeds=0,1,2,3,4 ...
"""

import dataclasses
import os
import sys

from absl import app
from absl import flags

from experiments.runs import autogrow_paired as paired
from experiments.runs import branching_report
from experiments.runs import cli
from experiments.runs import workdir as workdir_lib

flags.DEFINE_string("preset", "fmnist", f"One of {sorted(paired.PRESETS)}.")
flags.DEFINE_string("workdir", "out/autogrow_paired", "Where every arm writes.")
flags.DEFINE_list("seeds", [str(s) for s in range(5)], "Seeds (one pair set each).")
flags.DEFINE_bool("report_only", False, "Write the report from finished arms.")
cli.define_config_flags(paired.AutoGrowPairedConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = paired.resolve(FLAGS.preset, **cli.overrides(paired.AutoGrowPairedConfig))
    seeds = [int(s) for s in FLAGS.seeds]
    os.makedirs(FLAGS.workdir, exist_ok=True)
    workdir_lib.check_config(FLAGS.workdir, dataclasses.replace(config, seed=0))
    workdir_lib.prepare(FLAGS.workdir, dataclasses.replace(config, seed=0))
    if not FLAGS.report_only:
        for seed in seeds:
            paired.run_seed(dataclasses.replace(config, seed=seed), FLAGS.workdir)
    arms = paired.arms(config)
    results, complete = branching_report.collect(FLAGS.workdir, seeds, arms)
    if not complete:
        print("No seed has every arm yet: no report.")
        return
    command = branching_report.command("experiments.autogrow_paired", sys.argv[1:])
    text = paired.report(results, complete, config, command)
    branching_report.write(
        FLAGS.workdir, text, results, f"{config.initial}: AutoGrow arms and fixed nets"
    )


if __name__ == "__main__":
    app.run(main)
