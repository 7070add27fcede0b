"""AutoGrow's settings side by side and against fixed nets, paired by seed
(see docs/results/autogrow.md and ../shared/DESIGN.md section 6).

Per seed every AutoGrow arm (gaussian, uniform, zero, adam initialisers;
convergent growth; fewer training images) starts from the same initial
net on the same batches; a grid of fixed depths and the found net train
from scratch. The arms come in parts (`--part`: grid, initialisers,
convergent, data), run and reported on their own. Resumable: finished
arms are skipped. Writes report.md (a section per part with a finished
seed), report.json and curves.png into the work dir.

    python -m experiments.autogrow_paired --part=grid --seeds=0,1,2,3,4
    python -m experiments.autogrow_paired --report_only
"""

import sys

from absl import app
from absl import flags

from experiments.runs import autogrow_paired as paired
from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import cli

flags.DEFINE_string("preset", "fmnist", f"One of {sorted(paired.PRESETS)}.")
flags.DEFINE_string("workdir", "out/autogrow_paired", "Where every arm writes.")
flags.DEFINE_list("seeds", [str(s) for s in range(5)], "Seeds (one pair set each).")
flags.DEFINE_string(
    "part", "grid", "Which arms run: grid, initialisers, convergent, data or all."
)
flags.DEFINE_bool("report_only", False, "Write the report from finished arms.")
cli.define_config_flags(paired.AutoGrowPairedConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = paired.resolve(FLAGS.preset, **cli.overrides(paired.AutoGrowPairedConfig))
    seeds = [int(s) for s in FLAGS.seeds]
    all_parts = paired.parts(config)
    if FLAGS.part not in (*all_parts, "all"):
        raise ValueError(
            f"Unknown part {FLAGS.part!r}; known: {sorted(all_parts)} or 'all'."
        )
    part = None if FLAGS.part == "all" else FLAGS.part
    ran = () if FLAGS.report_only else seeds
    branching.run_seeds(config, FLAGS.workdir, ran, paired.run_seed, part)
    args = [a for a in sys.argv[1:] if not a.startswith(("--part", "--report_only"))]
    sections, everything = [], {}
    for name, arms in all_parts.items():
        results, complete = branching_report.collect(FLAGS.workdir, seeds, arms)
        if not complete:
            continue
        command = branching_report.command(
            "experiments.autogrow_paired", [f"--part={name}"] + args
        )
        sections.append(paired.part_report(name, results, complete, config, command))
        everything.update(results)
    if not sections:
        print("No seed has every arm of a part yet: no report.")
        return
    branching_report.write(
        FLAGS.workdir,
        paired.report(sections, config),
        everything,
        f"{config.initial}: AutoGrow arms and fixed nets",
    )


if __name__ == "__main__":
    app.run(main)
