"""Firefly against random growth and fixed nets, paired by seed (see
docs/results/firefly.md and ../shared/DESIGN.md section 6).

Per seed the seed net trains to the epoch before the first growth; every
arm (Firefly, RandomNew, RandomNew with Firefly's per-layer counts,
RandomSplit, no growth) branches from that checkpoint on the same batches;
the net Firefly found and the full-width net train from scratch.
Resumable: finished arms are skipped. Writes report.md, report.json and
curves.png into the work dir.

    python -m experiments.firefly_paired --preset=mlp --workdir=out/paired_mlp
    python -m experiments.firefly_paired --preset=vgg --seeds=0,1,2,3,4 ...
"""

import sys

from absl import app
from absl import flags

from experiments.runs import branching
from experiments.runs import branching_report
from experiments.runs import cli
from experiments.runs import firefly_paired as paired

flags.DEFINE_string("preset", "mlp", f"One of {sorted(paired.PRESETS)}.")
flags.DEFINE_string("workdir", "out/paired", "Where every arm writes.")
flags.DEFINE_list("seeds", [str(s) for s in range(10)], "Seeds (one pair set each).")
flags.DEFINE_bool("report_only", False, "Write the report from finished arms.")
flags.DEFINE_list(
    "extra_arms",
    [],
    f"Firefly variants and other methods to branch too, after the arms: "
    f"{sorted(paired.EXTRA_ARMS)}.",
)
cli.define_config_flags(paired.PairedConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = paired.resolve(FLAGS.preset, **cli.overrides(paired.PairedConfig))
    seeds = [int(s) for s in FLAGS.seeds]
    unknown = sorted(set(FLAGS.extra_arms) - set(paired.EXTRA_ARMS))
    if unknown:
        raise app.UsageError(
            f"Unknown --extra_arms {unknown}; known: {sorted(paired.EXTRA_ARMS)}."
        )
    arms = paired.ARMS + tuple(FLAGS.extra_arms)
    ran = () if FLAGS.report_only else seeds
    branching.run_seeds(config, FLAGS.workdir, ran, paired.run_seed, arms)
    results, complete, extras = paired.collect(FLAGS.workdir, seeds, FLAGS.extra_arms)
    if not complete:
        print("No seed has every arm yet: no report.")
        return
    command = branching_report.command("experiments.firefly_paired", sys.argv[1:])
    text = paired.report(results, complete, config, command, extras)
    branching_report.write(
        FLAGS.workdir,
        text,
        results,
        f"{config.initial}: every arm from the same checkpoint",
        # The extras' rows carry their seeds; the curves are of `results`.
        extras=extras[0] if extras else None,
    )


if __name__ == "__main__":
    app.run(main)
