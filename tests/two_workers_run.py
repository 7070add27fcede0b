"""One worker of a growing `fit` under MultiWorkerMirroredStrategy, for
tests/test_two_workers.py (two of these on localhost):

    python tests/two_workers_run.py INDEX PORT0,PORT1 OUT.npz SCENARIO \
        [BACKUP_DIR [KILL_AT_EPOCH]]

SCENARIO: "plain" (a keras.Sequential, Keras alone), "autogrow" or
"firefly" (a GrowableModel growing inside fit). Each worker trains on its
own shard of the data. Writes OUT.npz (every weight and optimizer variable
by path, and "predictions" on 40 test images) and OUT.json (spec, growth
log, history). With BACKUP_DIR the
run is backed up there (and resumes from it); with KILL_AT_EPOCH this
worker kills itself (SIGKILL) when that epoch begins, once the epoch before
is checkpointed.
"""

import json
import os
import sys

index, ports, out, scenario = (
    int(sys.argv[1]),
    sys.argv[2].split(","),
    sys.argv[3],
    sys.argv[4],
)
backup_dir = sys.argv[5] if len(sys.argv) > 5 else None
kill_at = int(sys.argv[6]) if len(sys.argv) > 6 else None
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    }
)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_grow as kg  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
keras.utils.set_random_seed(0)
start = kg.callbacks.BackupAndRestore.epochs_done(backup_dir) if backup_dir else 0
# Each worker its own half of every epoch (sharded here, not by Keras),
# for fit and for the growth callbacks alike.
off = tf.data.Options()
off.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
train = (
    kg.data.load("fashion_mnist_sample", "train", 32, take=256, start_epoch=start)
    .shard(len(ports), index)
    .with_options(off)
)
val = kg.data.load("fashion_mnist_sample", "test", 64, take=128)
val = val.shard(len(ports), index).with_options(off)


def compiled(model):
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


callbacks = []
with strategy.scope():
    if scenario == "plain":
        model = compiled(
            keras.Sequential(
                [
                    keras.Input((28, 28, 1)),
                    keras.layers.Flatten(),
                    keras.layers.Dense(6, activation="relu"),
                    keras.layers.Dense(10),
                ]
            )
        )
    elif scenario == "autogrow":
        spec = kg.specs.parse("Basic3ResNet-1-1-1", (28, 28, 1), 10, widths=(4, 8, 8))
        model = compiled(kg.GrowableModel(spec))
        callbacks.append(
            kg.callbacks.AutoGrow(
                growth_period=1,
                monitor="val_loss",
                max_depths=(3, 3, 3),
                fine_tune_epochs=1,
                seed=0,
                verbose=0,
            )
        )
    elif scenario == "firefly":
        model = compiled(kg.GrowableModel(kg.specs.parse("VGG11-4", (28, 28, 1), 10)))
        callbacks.append(
            kg.callbacks.Firefly(
                train,
                grow_every=1,
                max_rounds=2,
                delta_steps=2,
                score_batches=2,
                grow_depth=True,
                seed=0,
                verbose=0,
            )
        )
    else:
        raise SystemExit(f"unknown scenario {scenario!r}")
if backup_dir:
    callbacks.insert(
        0,
        kg.callbacks.BackupAndRestore(
            backup_dir, callbacks, keep=10, delete_checkpoint=False, verbose=0
        ),
    )
if kill_at is not None:

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == kill_at:
                os.kill(os.getpid(), 9)

    callbacks.append(Kill())
# A dataset's batch is the global batch under the strategy: each worker's
# 4 batches of 32 an epoch go as 8 steps of 16 on each worker, 8 global
# batches of 32 in all.
history = model.fit(
    train,
    validation_data=val,
    epochs=4,
    steps_per_epoch=8,
    verbose=0,
    callbacks=callbacks,
)
arrays = {v.path: v.numpy() for v in model.weights + model.optimizer.variables}
# predict splits the batch across workers and gathers it: the same on both.
images = next(iter(kg.data.load("fashion_mnist_sample", "test", 40, take=40)))[0]
arrays["predictions"] = model.predict(images, batch_size=16, verbose=0)
np.savez(out, **arrays)
record = {
    "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    "spec": getattr(getattr(model, "spec", None), "notation", None),
    "growth_log": getattr(model, "growth_log", None),
}
with open(os.path.splitext(out)[0] + ".json", "w") as f:
    json.dump(record, f, default=str)
print("worker", index, scenario, "done", flush=True)
