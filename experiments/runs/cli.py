"""absl flags for a run config: one flag per field, overriding a preset."""

import dataclasses
import os
import types
import typing

import tensorflow as tf
from absl import app
from absl import flags


def _base_type(annotation):
    """(type without None, whether None is allowed)."""
    if (
        isinstance(annotation, types.UnionType)
        or typing.get_origin(annotation) is typing.Union
    ):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _number(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


def _number_or_text(text):
    try:
        return _number(text)
    except ValueError:
        return text


def parse_value(text, annotation):
    """Parses a flag's text for a field annotated `annotation`.

    `none` gives None where allowed; tuples are comma-separated items,
    numbers where they read as such (integers first), names otherwise, and
    an empty text is the empty tuple; booleans accept
    true/false/1/0/yes/no.

    Raises:
        ValueError: naming the text and the expected type.
    """
    base, nullable = _base_type(annotation)
    if nullable and text.strip().lower() == "none":
        return None
    try:
        if base is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return lowered in ("true", "1", "yes")
        if base is tuple:
            parts = [part.strip() for part in text.split(",")]
            return tuple(_number_or_text(part) for part in parts if part)
        return base(text)
    except ValueError:
        raise ValueError(
            f"Cannot read {text!r} as {getattr(base, '__name__', base)}"
            + (" (or 'none')" if nullable else "")
            + "."
        ) from None


def define_config_flags(config_class, flag_values=flags.FLAGS):
    """Defines `--<field>` for every field of `config_class` (default unset)."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        base, nullable = _base_type(hints[field.name])
        flags.DEFINE_string(
            field.name,
            None,
            f"Overrides the preset's {field.name} ({getattr(base, '__name__', base)}"
            + (", or none" if nullable else "")
            + ").",
            flag_values=flag_values,
        )


def overrides(config_class, flag_values=flags.FLAGS):
    """{field: parsed value} for every field flag given on the command line."""
    hints = typing.get_type_hints(config_class)
    result = {}
    for field in dataclasses.fields(config_class):
        text = flag_values[field.name].value
        if text is not None:
            result[field.name] = parse_value(text, hints[field.name])
    return result


def define_multi_worker_flag(flag_values=flags.FLAGS):
    """Defines `--multi_worker` (see `multi_worker_strategy`)."""
    flags.DEFINE_bool(
        "multi_worker",
        False,
        "Train under tf.distribute.MultiWorkerMirroredStrategy: run the same "
        "command on every worker, each with its TF_CONFIG; the chief writes "
        "the work dir, the others <workdir>/.worker<index> "
        "(docs/distributed.md).",
        flag_values=flag_values,
    )


def multi_worker_strategy(flag_values=flags.FLAGS):
    """The strategy `--multi_worker` asks for, or `None`.

    Raises:
        app.UsageError: `--multi_worker` without `TF_CONFIG` in the
            environment.
    """
    if not flag_values.multi_worker:
        return None
    if not os.environ.get("TF_CONFIG"):
        raise app.UsageError(
            "--multi_worker reads the cluster from TF_CONFIG, which is not set "
            "(docs/distributed.md shows one)."
        )
    return tf.distribute.MultiWorkerMirroredStrategy()


def run_binary(runs, config_class, default_workdir, summary):
    """Defines a run binary's flags and returns its `main`.

    The flags: `--preset` (one of `runs.PRESETS`), `--workdir`, one per
    field of `config_class` (overriding the preset) and `--multi_worker`.
    `main` resolves the config, calls `runs.run(config, workdir, strategy)`
    and prints `summary(result)` with where the results are.

    Args:
        runs: the run module (`experiments.runs.autogrow`, `.firefly`).
        config_class: its config dataclass.
        default_workdir: str.
        summary: callable `result -> str`: the line printed at the end.
    """
    from experiments.runs import training

    flags.DEFINE_string("preset", "fmnist_small", f"One of {sorted(runs.PRESETS)}.")
    flags.DEFINE_string("workdir", default_workdir, "Where results are written.")
    define_config_flags(config_class)
    define_multi_worker_flag()

    def main(argv):
        del argv
        strategy = multi_worker_strategy()  # before any other TensorFlow op
        config = runs.resolve(flags.FLAGS.preset, **overrides(config_class))
        result = runs.run(config, flags.FLAGS.workdir, strategy)
        where = training.worker_workdir(flags.FLAGS.workdir, strategy)
        print(f"{summary(result)}, {result['wall_seconds']:.0f}s; results in {where}")

    return main
