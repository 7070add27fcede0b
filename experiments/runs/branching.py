"""Paired branching (../shared/DESIGN.md section 6): arms of one seed start
from one checkpoint and see the same batches.

Per seed, `seed_phase` trains a net for a few epochs (possibly none: the
initial weights are the shared start) and saves it with its optimizer
state; every arm loads it (`load_seed`) and trains on from there on the
epoch-seeded batches of `experiments.runs.training`, so the arms of a seed
differ only in what the arm changes. Each arm writes
`<workdir>/seed<s>/<arm>.json`; `run_arms` skips an arm whose file
exists, so a study resumes where it stopped. An arm whose runner passes
`backup_dir(...)` to `fit_epochs` is checkpointed every epoch, so an arm
stopped midway resumes at its last complete epoch.
"""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np

import keras_grow as kg
from experiments.runs import progress
from experiments.runs import training
from experiments.runs import workdir as workdir_lib


def path(workdir, seed, name):
    return os.path.join(workdir, f"seed{seed}", f"{name}.json")


def read(workdir, seed, name):
    """The saved result of one arm, or `None`."""
    result_path = path(workdir, seed, name)
    if not os.path.exists(result_path):
        return None
    with open(result_path) as handle:
        return json.load(handle)


def backup_dir(workdir, seed, name):
    """Where arm `name`'s epoch checkpoints go while it runs."""
    return os.path.join(workdir, f"seed{seed}", f"{name}.backup")


def fit_epochs(model, config, first_epoch, last_epoch, callbacks, backup=None):
    """Trains epochs `first_epoch` .. `last_epoch` - 1 on the epoch-seeded
    batches (a callback may stop earlier); returns (validation accuracy per
    epoch, seconds).

    With `backup` (a directory, `backup_dir(...)`), every epoch is
    checkpointed there with the state of the callbacks that have one, and
    a checkpoint left by an earlier process is resumed: the returned
    accuracies and seconds then cover the whole run.
    """
    saver = None
    if backup is not None:
        saver = kg.callbacks.BackupAndRestore(
            backup,
            [c for c in callbacks if hasattr(c, "get_state")],
            delete_checkpoint=False,  # `run_arms` removes it once the result is saved
            verbose=0,
        )
        first_epoch = max(first_epoch, saver.epochs_done(backup))
    clock = progress.RunClock(saver)
    _, train, monitored, _ = training.load_splits(config, first_epoch)
    # A line an epoch: a study's arms run for hours.
    line = progress.EpochLine(
        last_epoch, print_fn=lambda text: print(f"  seed {config.seed} {text}")
    )
    history = model.fit(
        train,
        steps_per_epoch=training.steps_per_epoch(config),
        validation_data=monitored,
        initial_epoch=first_epoch,
        epochs=last_epoch,
        callbacks=[*([saver] if saver is not None else []), clock, line, *callbacks],
        verbose=0,
        shuffle=False,
    )
    return history.history.get("val_accuracy", []), clock.seconds()


def test_metrics(model, config):
    """(test accuracy, test NLL: mean cross-entropy of the logits, without
    the weight-decay terms Keras adds to its loss)."""
    _, _, _, test = training.load_splits(config)
    correct, nll, count = 0, 0.0, 0
    for x, y in test:
        logits = model(x, training=False).numpy().astype(np.float64)
        y = y.numpy().reshape(-1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        nll -= log_probs[np.arange(len(y)), y].sum()
        correct += int((logits.argmax(axis=1) == y).sum())
        count += len(y)
    return correct / count, nll / count


def result(model, config, name, val_accuracy, seconds, extra=None):
    """The JSON record of a finished arm."""
    accuracy, nll = test_metrics(model, config)
    return {
        "arm": name,
        "seed": config.seed,
        "found": model.spec.notation,
        "widths": list(model.spec.widths),
        "depths": list(getattr(model.spec, "depths", ())),
        "params": model.count_params(),
        "test_accuracy": accuracy,
        "test_nll": nll,
        "val_accuracy": [float(v) for v in val_accuracy],
        "epochs": len(val_accuracy),
        "seconds": round(seconds, 2),
        **(extra or {}),
    }


def new_model(config, notation):
    """A compiled net `notation` for `config` (seeded by the caller)."""
    info = kg.data.info(config.dataset)
    model = kg.GrowableModel(training.make_spec(config, info, notation))
    return training.compile_model(model, config)


def _checkpoint(workdir, seed):
    return os.path.join(workdir, f"seed{seed}", "seed.keras")


def seed_phase(config, workdir, notation, epochs):
    """Trains `notation` for `epochs` epochs (seeded with `config.seed`) and
    saves it: the start of every branch of this seed. Done once."""
    done = read(workdir, config.seed, "seed")
    if done is not None and os.path.exists(_checkpoint(workdir, config.seed)):
        return done
    os.makedirs(os.path.dirname(_checkpoint(workdir, config.seed)), exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    model = new_model(config, notation)
    if epochs:
        val, seconds = fit_epochs(model, config, 0, epochs, [])
    else:  # the initial weights; slots built, so that loading matches
        val, seconds = [], 0.0
        model.optimizer.build(model.trainable_variables)
    # Saved whole or not at all: another process of the study may load it.
    staging = _checkpoint(workdir, config.seed).replace(
        ".keras", f".{os.getpid()}.keras"
    )
    model.save(staging)
    os.replace(staging, _checkpoint(workdir, config.seed))
    record = {"seed": config.seed, "val_accuracy": val, "seconds": round(seconds, 2)}
    workdir_lib.write_json(path(workdir, config.seed, "seed"), record)
    return record


def load_seed(workdir, seed):
    """The seed checkpoint, compiled, with its optimizer state."""
    return keras.models.load_model(_checkpoint(workdir, seed))


def _note_resume(workdir, seed, arm):
    """Lists the epoch an arm resumes at (if it has a checkpoint) in its
    backup dir, so that its record can say so: a resumed arm draws new
    blocks' weights from a fresh random state, not the one an
    uninterrupted run would have reached."""
    done = kg.callbacks.BackupAndRestore.epochs_done(backup_dir(workdir, seed, arm))
    notes = os.path.join(backup_dir(workdir, seed, arm), "resumed.json")
    resumed = []
    if os.path.exists(notes):
        with open(notes) as handle:
            resumed = json.load(handle)
    if done:
        resumed.append(done)
        workdir_lib.write_json(notes, resumed)
    return resumed


def run_arms(config, workdir, arms, runner, log=print):
    """Runs `runner(config, arm, workdir) -> result` for every arm of
    `config.seed` without a result yet, in order, and saves each.

    An arm another live process is running is skipped (`workdir.claim`),
    so two processes can share a study's work directory. An arm with
    checkpoints in its `backup_dir` resumes from them (the epochs it
    resumed at go into its record as `resumed_at`); they are removed once
    its result is saved.
    """
    for arm in arms:
        result_path = path(workdir, config.seed, arm)
        if read(workdir, config.seed, arm) is not None:
            continue
        os.makedirs(os.path.dirname(result_path), exist_ok=True)
        with workdir_lib.claim(result_path) as mine:
            if not mine:
                log(f"seed {config.seed} {arm:>24}: another process runs it")
                continue
            # Another process may have finished it since it was read.
            if read(workdir, config.seed, arm) is not None:
                continue
            resumed = _note_resume(workdir, config.seed, arm)
            at = f" (resumed at epoch {resumed[-1]})" if resumed else ""
            log(f"seed {config.seed} {arm:>24}: running{at}")
            record = runner(config, arm, workdir)
            if resumed:
                record = dict(record, resumed_at=resumed)
            workdir_lib.write_json(result_path, record)
            shutil.rmtree(backup_dir(workdir, config.seed, arm), ignore_errors=True)
        log(
            f"seed {config.seed} {arm:>24}: {record['found']:<28} "
            f"{record['params']:>7,} params, "
            f"test acc {100 * record['test_accuracy']:.2f}%, "
            f"NLL {record['test_nll']:.4f}, {record['seconds']:.0f}s"
        )


def run_seeds(config, workdir, seeds, run_seed, *args):
    """A paired binary's runs: the work dir claimed for `config` (its seed
    aside: every seed shares the directory), then `run_seed(config of
    the seed, workdir, *args)` for each seed."""
    os.makedirs(workdir, exist_ok=True)
    workdir_lib.check_config(workdir, dataclasses.replace(config, seed=0))
    workdir_lib.prepare(workdir, dataclasses.replace(config, seed=0))
    for seed in seeds:
        run_seed(dataclasses.replace(config, seed=seed), workdir, *args)
