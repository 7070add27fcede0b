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


def _as_dict(config):
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config


def check_config(workdir, config):
    """Raises unless `workdir` has no config.json or the same `config`
    (a dataclass or a dict): a run is resumed with the flags it started
    with. A field the saved config lacks (added since) counts as its
    default."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as handle:
        saved = {**_defaults(config), **json.load(handle)}
    now = json.loads(json.dumps(_as_dict(config)))
    changed = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
        raise ValueError(
            f"{workdir!r} holds checkpoints of a run with another config "
            f"({details}). Resume it with the same flags, or use another "
            "--workdir (or delete this one) to start a new run."
        )


def _defaults(config):
    """`{field: default}` of a dataclass config, as JSON reads them."""
    if not dataclasses.is_dataclass(config):
        return {}
    return json.loads(
        json.dumps(
            {
                f.name: f.default
                for f in dataclasses.fields(config)
                if f.default is not dataclasses.MISSING
            }
        )
    )


def prepare(workdir, config):
    """Creates `workdir` and writes the resolved config as `config.json`.

    Args:
        workdir: str. Created if missing.
        config: a dataclass instance or a dict.

    Returns:
        str. `workdir`.
    """
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "config.json"), _as_dict(config))
    return workdir
