"""Soak benchmark: 100 growth events (and rollbacks) in one process, and
what is still alive after them (see experiments/runs/bench/soak.py).

    python -m experiments.bench_soak                      # about 2 minutes
    python -m experiments.bench_soak --events=300 --early=30

Prints a Markdown table (live objects and resident memory after `early`
events and at the end, their ratio against the target) and writes it with
the raw numbers to out/bench_soak/.
"""

import dataclasses
import os
import shlex
import sys

from absl import app
from absl import flags

from experiments.runs import cli
from experiments.runs import workdir as workdir_lib
from experiments.runs.bench import soak

flags.DEFINE_string("out", "out/bench_soak", "Where soak.md and soak.json go.")
flags.DEFINE_bool(
    "plain", True, "Also run plain Keras (a new model per event) as the reference."
)
cli.define_config_flags(soak.SoakConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    config = soak.SoakConfig(**cli.overrides(soak.SoakConfig))
    result = soak.run(config)
    plain = soak.run_plain(config) if FLAGS.plain else None
    command = "python -m experiments.bench_soak " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    text = (
        f"{result['events']} events ({result['grows']} growths, "
        f"{result['rollbacks']} rollbacks) from {config.initial} to "
        f"{result['final']} ({result['params']:,} parameters), "
        f"{config.steps} training steps and a validation pass after each, "
        f"{result['seconds']:.0f} s.\n\n"
        + soak.table(result, config, plain)
        + f"\n\n```sh\n{command.strip()}\n```\n"
    )
    os.makedirs(FLAGS.out, exist_ok=True)
    workdir_lib.write_text(os.path.join(FLAGS.out, "soak.md"), text)
    workdir_lib.write_json(
        os.path.join(FLAGS.out, "soak.json"),
        {"config": dataclasses.asdict(config), "plain": plain, **result},
    )
    print(text)


if __name__ == "__main__":
    app.run(main)
