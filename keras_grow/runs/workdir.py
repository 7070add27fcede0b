"""Work directories of experiment runs: config, JSON results, atomic writes."""

import dataclasses
import json
import os


def write_text(path, text):
    """Writes `text` to `path` atomically (write, then rename)."""
    staging = f"{path}.tmp"
    with open(staging, "w") as handle:
        handle.write(text)
    os.replace(staging, path)


def write_json(path, value):
    """Writes `value` as indented JSON, atomically (write, then rename)."""
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def prepare(workdir, config):
    """Creates `workdir` and writes the resolved config as `config.json`.

    Args:
        workdir: str. Created if missing.
        config: a dataclass instance or a dict.

    Returns:
        str. `workdir`.
    """
    os.makedirs(workdir, exist_ok=True)
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    write_json(os.path.join(workdir, "config.json"), config)
    return workdir
