"""What `GrowableModel.fit` checks in its callback list before training."""

import keras

from keras_grow.callbacks.backup_and_restore import BackupAndRestore


def _stateful(callback):
    return (
        hasattr(callback, "get_state")
        and hasattr(callback, "set_state")
        and not isinstance(callback, BackupAndRestore)
    )


def check_fit_callbacks(callbacks):
    """Checks (and completes) the callbacks of one `fit` of a growing model.

    - Keras' own `BackupAndRestore` restores weights into a graph of the
      size it saved: after a growth it cannot resume. It is refused, naming
      `kg.callbacks.BackupAndRestore`.
    - A `kg.callbacks.BackupAndRestore` given no `callbacks` carries the
      state of every growth callback of this fit (AutoGrow's phase,
      Firefly's rounds, ...): without it a resumed run would start growing
      from scratch.
    - One given some growth callbacks but not all of this fit's is refused:
      the others would restart on resume.

    Args:
        callbacks: the list passed to `fit` (or `None`).

    Raises:
        ValueError: as above, naming the callbacks.
    """
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks = callbacks.callbacks
    callbacks = list(callbacks or [])
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.BackupAndRestore):
            raise ValueError(
                "keras.callbacks.BackupAndRestore cannot resume a growing model "
                "(it restores weights into the graph it saved, which growth "
                "replaces). Use kg.callbacks.BackupAndRestore(backup_dir), which "
                "saves the spec, weights, optimizer and growth state."
            )
    stateful = [c for c in callbacks if _stateful(c)]
    for backup in (c for c in callbacks if isinstance(c, BackupAndRestore)):
        if not backup.stateful_callbacks:
            backup.stateful_callbacks = tuple(stateful)
            continue
        missing = [c for c in stateful if c not in backup.stateful_callbacks]
        if missing:
            names = ", ".join(type(c).__name__ for c in missing)
            raise ValueError(
                f"kg.callbacks.BackupAndRestore(callbacks=...) leaves out {names} "
                f"of this fit: its state would restart on resume. Pass every "
                f"growth callback, or none (then it finds them itself)."
            )
