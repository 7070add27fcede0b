"""Plain Keras `fit` under MultiWorkerMirroredStrategy, two worker processes
on localhost (issue 17; docs/distributed.md).

Growth on several workers needs Keras' own `fit` to run there first; with
Keras 3.15 and TensorFlow 2.21 it does not (keras-team/keras#20585: both
workers fail in their first step with a PerReplica conversion error). This
test asks for what we need, two workers ending with the same weights and
optimizer slots, and is a strict expected failure: the day Keras fixes
it, it passes, fails the nightly run, and says that the multi-worker
growth tests of issue 17 can be built.
"""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPRO = os.path.join(ROOT, "scripts", "multiworker_keras_repro.py")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.nightly
@pytest.mark.xfail(
    strict=True, reason="keras-team/keras#20585: Keras 3 fit fails under MWMS"
)
def test_two_workers_end_with_the_same_weights(tmp_path):
    ports = ",".join(str(p) for p in _free_ports(2))
    outputs = [str(tmp_path / f"worker{i}.npz") for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, REPRO, str(i), ports, outputs[i]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i in range(2)
    ]
    logs = []
    for worker in workers:
        try:
            out, err = worker.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            pytest.fail("a worker hung for 5 minutes")
        logs.append(err[-3000:])
    assert all(w.returncode == 0 for w in workers), "\n---\n".join(logs)
    first, second = (np.load(path) for path in outputs)
    assert sorted(first.files) == sorted(second.files)
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
