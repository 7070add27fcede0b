"""Paired branching: every width-growth method from the same checkpoint.

Per seed, the seed net trains to the epoch before the first growth and is
saved with its optimizer state (`seed.keras`). Every arm loads that
checkpoint and trains on from there on the same epoch-seeded batches, so
the arms of a seed differ only in how (and whether) they grow; their
differences are paired by seed (`experiments.runs.stats`). The fixed nets
a user would train instead (the net Firefly found, the full-width net)
are trained from scratch for the same epochs on the same batches.

Each arm writes `<workdir>/seed<s>/<arm>.json`; an arm whose file exists
is not run again, so a study resumes where it was stopped.
"""

import dataclasses
import json
import os
import time

import keras
import numpy as np

import keras_grow as kg
from experiments.runs import firefly as firefly_runs
from experiments.runs import training
from experiments.runs import workdir as workdir_lib
from keras_grow.callbacks.width_growth import Proposal

# Branched from the seed checkpoint, in this order (random_new_counts
# follows Firefly's per-round, per-layer counts, so it comes after it).
BRANCHES = ("firefly", "random_new", "random_new_counts", "random_split", "no_growth")
# Trained from scratch on the same batches for the same epochs.
SCRATCH = ("found_net_scratch", "full_width_scratch")
ARMS = BRANCHES + SCRATCH
REFERENCE = "firefly"
# Firefly with one setting changed, branched like the others (`--arms`):
# new units' BN statistics measured after each round (Part A 7), the
# authors' periods (x0.1 at 1/2 and 3/4, fresh optimizer; Part A 8), and
# one gate value for splits and new units (before Part A 6).
VARIANTS = {
    "firefly_calibrated": {"calibrate_new_units": 4},
    "firefly_authors_periods": {"period_schedule": "step", "after_growth": "fresh"},
    "firefly_one_gate": {"split_epsilon": "epsilon"},
}


@dataclasses.dataclass(frozen=True)
class PairedConfig(firefly_runs.FireflyConfig):
    """A `FireflyConfig` (the arms' common settings) and the full-width net."""

    full_width: str = "MLP-64-64"


PRESETS = {
    # MLP 8-8 grown 4 times by 30% on 12,000 Fashion-MNIST images; about
    # 3 minutes a seed on 2 cores.
    "mlp": PairedConfig(
        dataset="fashion_mnist",
        take=12000,
        augment=False,
        initial="MLP-8-8",
        full_width="MLP-64-64",
        batch_size=128,
        learning_rate=0.05,
        weight_decay=0.0,
        epochs=24,
        grow_every=4,
        max_rounds=4,
        delta_steps=30,
        score_batches=4,
        export=False,
    ),
    # VGG11 4 channels wide, 3 rounds on 10,000 images.
    "vgg": PairedConfig(
        dataset="fashion_mnist",
        take=10000,
        augment=False,
        initial="VGG11-4",
        full_width="VGG11-16",
        batch_size=128,
        learning_rate=0.05,
        weight_decay=5e-4,
        epochs=12,
        grow_every=3,
        max_rounds=3,
        delta_steps=30,
        score_batches=4,
        export=False,
    ),
}


def resolve(preset, **overrides):
    return training.resolve_preset(PRESETS, preset, overrides)


class RandomNewAtCounts(kg.callbacks.RandomNew):
    """RandomNew that adds, round by round, as many units to each layer as
    another run did (`counts[r]`: `{width index: units}`), so that only how
    the units are made differs."""

    method = "random_new_counts"

    def __init__(self, counts, **kwargs):
        super().__init__(**kwargs)
        self.counts = [{int(k): int(v) for k, v in c.items()} for c in counts]

    def _propose(self, model, rng):
        taken = self.counts[self.rounds] if self.rounds < len(self.counts) else {}
        return Proposal([w for w, n in sorted(taken.items()) for _ in range(n)], {})

    def eta(self, spec):
        taken = self.counts[self.rounds] if self.rounds < len(self.counts) else {}
        return sum(taken.values())


def round_counts(growth_log):
    """Per grow event, `{width index: units added}`."""
    counts = []
    for event in growth_log:
        if event.get("kind") == "grow":
            before, after = event["widths_before"], event["widths_after"]
            counts.append(
                {i: a - b for i, (b, a) in enumerate(zip(before, after)) if a != b}
            )
    return counts


def _path(workdir, seed, name):
    return os.path.join(workdir, f"seed{seed}", f"{name}.json")


def read(workdir, seed, name):
    """The saved result of one arm, or `None`."""
    path = _path(workdir, seed, name)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def _seed_config(config, seed):
    return dataclasses.replace(config, seed=seed)


def _fit(model, config, first_epoch, callbacks):
    """Trains from `first_epoch` to `config.epochs` on the epoch-seeded
    batches; returns (validation accuracy per epoch, seconds)."""
    _, train, monitored, _ = training.load_splits(config, first_epoch)
    begin = time.perf_counter()
    history = model.fit(
        train,
        steps_per_epoch=training.steps_per_epoch(config),
        validation_data=monitored,
        initial_epoch=first_epoch,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
    return history.history.get("val_accuracy", []), time.perf_counter() - begin


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


def _result(model, config, name, val_accuracy, seconds, extra=None):
    accuracy, nll = test_metrics(model, config)
    return {
        "arm": name,
        "seed": config.seed,
        "found": model.spec.notation,
        "widths": list(model.spec.widths),
        "params": model.body.count_params(),
        "test_accuracy": accuracy,
        "test_nll": nll,
        "val_accuracy": [float(v) for v in val_accuracy],
        "seconds": round(seconds, 2),
        **(extra or {}),
    }


def _new_model(config, notation):
    info = kg.data.info(config.dataset)
    model = kg.GrowableModel(training.make_spec(config, info, notation))
    return training.compile_model(model, config)


def seed_phase(config, workdir):
    """Trains the seed net to the epoch before the first growth; saves it."""
    directory = os.path.join(workdir, f"seed{config.seed}")
    checkpoint = os.path.join(directory, "seed.keras")
    done = read(workdir, config.seed, "seed")
    if done is not None and os.path.exists(checkpoint):
        return done
    os.makedirs(directory, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    model = _new_model(config, config.initial)
    branch_epoch = config.grow_every - 1
    val, seconds = _fit(model, dataclasses.replace(config, epochs=branch_epoch), 0, [])
    model.save(checkpoint)
    result = {"seed": config.seed, "val_accuracy": val, "seconds": round(seconds, 2)}
    workdir_lib.write_json(_path(workdir, config.seed, "seed"), result)
    return result


def variant_config(config, arm):
    """The config of a Firefly `VARIANTS` arm."""
    changes = {
        k: getattr(config, v) if isinstance(v, str) and hasattr(config, v) else v
        for k, v in VARIANTS[arm].items()
    }
    return dataclasses.replace(config, method="firefly", **changes)


def _callback(config, arm, workdir):
    if arm == "random_new_counts":
        firefly = read(workdir, config.seed, "firefly")
        return RandomNewAtCounts(
            firefly["round_counts"],
            epsilon=config.epsilon,
            grow_every=config.grow_every,
            max_rounds=config.max_rounds,
            seed=config.seed,
            verbose=0,
            period_schedule=config.period_schedule,
            after_growth=config.after_growth,
        )
    if arm in VARIANTS:
        method = variant_config(config, arm)
    else:
        method = dataclasses.replace(config, method=arm)
    stream = training.train_data(config, start_epoch=0)
    return firefly_runs.make_callback(method, stream)


def branch(config, arm, workdir):
    """One arm from the seed checkpoint to the end; its result dict."""
    seed = seed_phase(config, workdir)
    keras.utils.set_random_seed(config.seed + 1)
    model = keras.models.load_model(
        os.path.join(workdir, f"seed{config.seed}", "seed.keras")
    )
    callbacks = [] if arm == "no_growth" else [_callback(config, arm, workdir)]
    if callbacks:
        callbacks[0].verbose = 0
    val, seconds = _fit(model, config, config.grow_every - 1, callbacks)
    rounds = [e for e in model.growth_log if e.get("kind") == "grow"]
    extra = {
        "round_counts": round_counts(model.growth_log),
        "chosen_split": [e["chosen_split"] for e in rounds],
        "chosen_new": [e["chosen_new"] for e in rounds],
        "seconds_growth": round(
            sum(e.get("seconds_round", 0.0) + e["seconds"] for e in rounds), 2
        ),
        "seconds_seed": seed["seconds"],
    }
    return _result(
        model, config, arm, seed["val_accuracy"] + val, seconds + seed["seconds"], extra
    )


def scratch(config, arm, workdir):
    """A fixed net trained from scratch on the same batches."""
    if arm == "found_net_scratch":
        notation = read(workdir, config.seed, "firefly")["found"]
    else:
        notation = config.full_width
    keras.utils.set_random_seed(config.seed)
    model = _new_model(config, notation)
    val, seconds = _fit(model, config, 0, [])
    return _result(model, config, arm, val, seconds)


def run_seed(config, workdir, arms=ARMS, log=print):
    """Runs every arm of one seed that has no result yet."""
    for arm in arms:
        if read(workdir, config.seed, arm) is not None:
            continue
        run = scratch if arm in SCRATCH else branch
        result = run(config, arm, workdir)
        workdir_lib.write_json(_path(workdir, config.seed, arm), result)
        log(
            f"seed {config.seed} {arm:>20}: {result['found']:<24} "
            f"{result['params']:>7,} params, "
            f"test acc {100 * result['test_accuracy']:.2f}%, "
            f"NLL {result['test_nll']:.4f}, {result['seconds']:.0f}s"
        )
