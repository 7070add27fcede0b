"""KerasTuner's Hyperband over the depths AutoGrow grows (or the widths
Firefly grows), at the growth method's wall time, paired by seed with its
results (issue 33; see experiments/runs/tuner_paired.py).

Resumable: finished seeds are skipped. With --budget_from (an AutoGrow
paired study's report.json) each seed's budget is the reference arm's wall
time on that seed, and the report pairs Hyperband with that arm.

    python -m experiments.tuner_paired --preset=fmnist_depth \
        --workdir=out/tuner_depth --seeds=0,1,2,3,4 \
        --budget_from=docs/results/autogrow/paired/report.json
    python -m experiments.tuner_paired --preset=fmnist_mlp_width \
        --workdir=out/tuner_mlp --seeds=0,1,2,3,4,5,6,7,8,9 \
        --budget_from=docs/results/firefly/paired_mlp/report.json \
        --budget_arm=firefly
"""

import os

from absl import app
from absl import flags

from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import cli
from experiments.runs import tuner_paired as paired
from experiments.runs import workdir as workdir_lib

flags.DEFINE_string("preset", "fmnist_depth", f"One of {sorted(paired.PRESETS)}.")
flags.DEFINE_string("workdir", "out/tuner_depth", "Where the searches write.")
flags.DEFINE_list("seeds", [str(s) for s in range(5)], "Seeds.")
flags.DEFINE_string(
    "budget_from", None, "A paired study's report.json: per-seed wall budgets."
)
flags.DEFINE_string("budget_arm", "gaussian", "Its arm whose wall time is the budget.")
cli.define_config_flags(paired.TunerConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = paired.resolve(FLAGS.preset, **cli.overrides(paired.TunerConfig))
    seeds = [int(s) for s in FLAGS.seeds]
    branching.run_seeds(
        config,
        FLAGS.workdir,
        seeds,
        paired.run_seed,
        FLAGS.budget_from,
        FLAGS.budget_arm,
    )
    tuned, complete = branching_report.collect(FLAGS.workdir, seeds, [paired.ARM])
    if not complete or not FLAGS.budget_from:
        print(f"Searched seeds {complete}; pass --budget_from for the paired report.")
        return
    grown = [
        r
        for r in paired.load_rows(FLAGS.budget_from, FLAGS.budget_arm)
        if r["seed"] in complete
    ]
    text = paired.report(tuned[paired.ARM], grown, FLAGS.budget_arm)
    workdir_lib.write_text(os.path.join(FLAGS.workdir, "report.md"), text + "\n")
    print(text)


if __name__ == "__main__":
    app.run(main)
