"""Work directories of experiment runs: config, JSON results, atomic writes,
and claims that let several processes share one directory."""

import contextlib
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


def _boot_id():
    """This machine's boot, or `None` where the system does not say: a
    process id means a process only within one boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def holder(claim_path):
    """The process id holding `claim_path`, or `None` where the claim is
    absent or stale (its process is gone, or the machine rebooted since)."""
    try:
        with open(claim_path) as handle:
            held = json.load(handle)
    except (OSError, ValueError):
        return None
    if held.get("boot_id") != _boot_id() or not _alive(held["pid"]):
        return None
    return held["pid"]


@contextlib.contextmanager
def claim(path):
    """Claims the result `path` for this process while the block runs.

    Yields `True` where the claim is this process's, `False` where another
    live process holds it: two processes that share a work directory then
    never compute the same result. A claim left by a process that died is
    taken over. The claim file (`<path>.claim`) is removed on exit.

    Args:
        path: str. The result the block computes.
    """
    claim_path = f"{path}.claim"
    for _ in range(2):  # the second try follows removing a stale claim
        if _create(claim_path):
            try:
                yield True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(claim_path)
            return
        if holder(claim_path) is not None:
            break
        with contextlib.suppress(FileNotFoundError):
            os.remove(claim_path)
    yield False


def _create(claim_path):
    """Creates `claim_path` holding this process's id, whole or not at all
    (a hard link fails where the file exists), so a reader never sees a
    half-written claim. Returns whether this process created it."""
    staging = f"{claim_path}.{os.getpid()}"
    with open(staging, "w") as handle:
        json.dump({"pid": os.getpid(), "boot_id": _boot_id()}, handle)
    try:
        os.link(staging, claim_path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(staging)
