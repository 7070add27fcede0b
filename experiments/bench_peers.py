"""keras_grow beside PyTorch and GroMo: training throughput of the same
nets, and one width-growth round (see experiments/runs/bench/peers.py).

    pip install -e ".[peers]"                 # PyTorch and GroMo
    python -m experiments.bench_peers         # full: about 15 minutes here
    python -m experiments.bench_peers --quick # about 3 minutes

Prints the Markdown tables and writes them with every pass's raw numbers
to out/bench_peers/. Every field of `peers.PeersConfig` is a flag
overriding the preset. Needs the full Fashion-MNIST for its batches
(Debian's `dataset-fashion-mnist`; otherwise the embedded sample).
"""

import dataclasses
import json
import os
import shlex
import sys
import time

from absl import app
from absl import flags

from experiments.runs import cli
from experiments.runs import workdir as workdir_lib
from experiments.runs.bench import peers

flags.DEFINE_bool("quick", False, "Run the quick preset (a few minutes).")
flags.DEFINE_string(
    "out", "out/bench_peers", "Where peers.md, peers.json and passes go."
)
flags.DEFINE_enum("child", None, ["keras", "torch"], "Internal: run one child pass.")
flags.DEFINE_list("child_variants", [], "Internal: the child's variants.")
flags.DEFINE_list("child_methods", [], "Internal: the child's growth methods.")
flags.DEFINE_integer("child_threads", 0, "Internal: the child's thread count.")
flags.DEFINE_string("child_batches", None, "Internal: the batches file.")
flags.DEFINE_string("child_config", None, "Internal: the config file.")
flags.DEFINE_string("child_result", None, "Internal: where the child writes.")
cli.define_config_flags(peers.PeersConfig)
FLAGS = flags.FLAGS


def _require_peers():
    try:
        import gromo  # noqa: F401
        import torch  # noqa: F401
    except ImportError as error:
        raise SystemExit(
            f"The peer benchmark needs PyTorch and GroMo ({error}); "
            'install them with: pip install -e ".[peers]"'
        ) from error


def _run_child():
    with open(FLAGS.child_config) as f:
        fields = {
            k: tuple(v) if isinstance(v, list) else v for k, v in json.load(f).items()
        }
    config = peers.PeersConfig(**fields)
    result = peers.child(
        FLAGS.child,
        tuple(FLAGS.child_variants),
        tuple(FLAGS.child_methods),
        FLAGS.child_threads,
        FLAGS.child_batches,
        config,
    )
    workdir_lib.write_json(FLAGS.child_result, result)


def main(argv):
    del argv
    if FLAGS.child:
        _run_child()
        return
    _require_peers()
    config = dataclasses.replace(
        peers.PRESETS["quick" if FLAGS.quick else "full"],
        **cli.overrides(peers.PeersConfig),
    )
    start = time.perf_counter()
    result = peers.run(config, FLAGS.out)
    minutes = (time.perf_counter() - start) / 60
    command = "python -m experiments.bench_peers " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    text = (
        f"{config.passes} alternating passes per framework, medians; "
        f"total {minutes:.1f} min.\n\n"
        + peers.markdown(result)
        + f"\n\n```sh\n{command.strip()}\n```\n"
    )
    workdir_lib.write_text(os.path.join(FLAGS.out, "peers.md"), text)
    workdir_lib.write_json(os.path.join(FLAGS.out, "peers.json"), result)
    print(text)


if __name__ == "__main__":
    app.run(main)
