"""Progressive training against the target from scratch, paired by seed
(issue 31; see experiments/runs/progressive_paired.py for the arms and
measures, ../shared/DESIGN.md section 6 for the protocol).

Resumable: finished arms are skipped. Writes report.md, report.json and
curves.png into the work dir.

    python -m experiments.progressive_paired --preset=fmnist_cnn \
        --workdir=out/progressive_cnn --seeds=0,1,2,3,4
    python -m experiments.progressive_paired --preset=fmnist_cnn \
        --workdir=out/progressive_cnn --report_only
"""

import sys

from absl import app
from absl import flags

from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import cli
from experiments.runs import progressive_paired as paired

flags.DEFINE_string("preset", "fmnist_cnn", f"One of {sorted(paired.PRESETS)}.")
flags.DEFINE_string("workdir", "out/progressive", "Where every arm writes.")
flags.DEFINE_list("seeds", [str(s) for s in range(5)], "Seeds (one pair set each).")
flags.DEFINE_list(
    "arms",
    list(paired.ARMS),
    f"The arms to run and report, of {list(paired.ARMS)}; `target` always runs.",
)
flags.DEFINE_bool("report_only", False, "Write the report from finished arms.")
cli.define_config_flags(paired.ProgressiveConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = paired.resolve(FLAGS.preset, **cli.overrides(paired.ProgressiveConfig))
    seeds = [int(s) for s in FLAGS.seeds]
    arms = paired.check_arms(FLAGS.arms)
    ran = () if FLAGS.report_only else seeds
    branching.run_seeds(config, FLAGS.workdir, ran, paired.run_seed, arms)
    results, complete = branching_report.collect(FLAGS.workdir, seeds, arms)
    if not complete:
        print("No seed has every arm yet: no report.")
        return
    command = branching_report.command("experiments.progressive_paired", sys.argv[1:])
    start, target = paired.specs_of(config)
    branching_report.write(
        FLAGS.workdir,
        paired.report(results, complete, config, command),
        results,
        f"{start.notation} -> {target.notation}: every arm, same batches",
    )


if __name__ == "__main__":
    app.run(main)
