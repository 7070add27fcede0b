"""Benchmarks of what growth costs: wrapper, growth events, AutoGrow end to
end, Firefly rounds, the input pipeline, memory.

    python -m experiments.bench_growth            # full: docs/benchmarks.md
    python -m experiments.bench_growth --quick    # a few minutes

Writes a Markdown report (hand-written notes after its marker are kept)
and a JSON file with every number. Every field of
`experiments.runs.bench.measures.BenchConfig` is a flag overriding the
preset. Needs the full Fashion-MNIST (Debian's `dataset-fashion-mnist`).
"""

import os
import shlex
import sys

from absl import app
from absl import flags

from experiments.runs import cli
from experiments.runs.bench import measures
from experiments.runs.bench import report
from experiments.runs.bench import suite

flags.DEFINE_bool("quick", False, "Run the quick preset (a few minutes).")
flags.DEFINE_string(
    "report",
    None,
    "Markdown report; defaults to docs/benchmarks.md (full) or "
    "out/bench_growth/benchmarks_quick.md (--quick).",
)
flags.DEFINE_string("json", None, "JSON results; defaults beside the report.")
cli.define_config_flags(measures.BenchConfig)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    preset = "quick" if FLAGS.quick else "full"
    config = suite.resolve(preset, **cli.overrides(measures.BenchConfig))
    markdown_path = FLAGS.report or (
        "out/bench_growth/benchmarks_quick.md" if FLAGS.quick else "docs/benchmarks.md"
    )
    json_path = FLAGS.json or os.path.splitext(markdown_path)[0] + ".json"
    results = suite.run(config, preset)
    command = "python -m experiments.bench_growth " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    text = report.write(results, command.strip(), markdown_path, json_path)
    print(text.split(report.NOTES_MARKER)[0])
    print(f"Wrote {markdown_path} and {json_path}.")


if __name__ == "__main__":
    app.run(main)
