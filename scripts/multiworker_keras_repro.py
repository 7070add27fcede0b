"""Plain Keras `fit` under MultiWorkerMirroredStrategy, two workers on
localhost (docs/distributed.md): with Keras 3.15 and TensorFlow 2.21 both
workers fail in the first step with `ValueError: Attempt to convert a
value (PerReplica:...)`, as keras-team/keras#20585 reports.

    python scripts/multiworker_keras_repro.py 0 PORT0,PORT1 /tmp/w0.npz &
    python scripts/multiworker_keras_repro.py 1 PORT0,PORT1 /tmp/w1.npz
"""

import json
import os
import sys

index, ports, out = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
        "task": {"type": "worker", "index": index},
    }
)
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(index)  # each worker its own data
x = rng.normal(size=(256, 16)).astype("float32")
y = rng.integers(0, 4, 256)
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
opts = tf.data.Options()
opts.experimental_distribute.auto_shard_policy = (
    tf.data.experimental.AutoShardPolicy.OFF
)
data = data.with_options(opts)
with strategy.scope():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(6, activation="relu"),
            keras.layers.Dense(4),
        ]
    )
    model.compile(
        keras.optimizers.SGD(0.05, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
model.fit(data, epochs=3, verbose=0)
np.savez(out, **{v.path: v.numpy() for v in model.weights + model.optimizer.variables})
print("worker", index, "plain", flush=True)
