"""Growth under MultiWorkerMirroredStrategy: two worker processes on
localhost, both on the CPU (issue 17; docs/distributed.md).

Each worker trains on its own half of the data (tests/two_workers_run.py).
Asked for: the same growth decisions on both, the same trainable weights
and optimizer variables after every growth (bit for bit), and a run whose
worker is killed resuming, when both are rerun, to the uninterrupted run.
BatchNormalization's moving statistics are each worker's own, as Keras
keeps them for any model under a strategy, so they are left out of the
cross-worker comparison (not of the resume comparison).

Nightly: the five two-worker runs take about six minutes on 2 cores.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.nightly

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "two_workers_run.py")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ",".join(str(p) for p in ports)


def _run(out_dir, scenario, backup_dir=None, kill_at=None, timeout=420):
    """Runs both workers; worker 1 kills itself at epoch `kill_at` if given
    (worker 0, left alone in a collective, fails or is killed). Returns
    ({worker: (returncode, stderr tail)}, [output prefix per worker])."""
    os.makedirs(out_dir, exist_ok=True)
    ports = _free_ports(2)
    prefixes = [os.path.join(out_dir, f"worker{i}") for i in range(2)]
    workers = []
    for i in range(2):
        command = [sys.executable, WORKER, str(i), ports, prefixes[i] + ".npz"]
        command.append(scenario)
        if backup_dir is not None:
            command.append(str(backup_dir))
            if kill_at is not None and i == 1:
                command.append(str(kill_at))
        workers.append(
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    results = {}
    for i in (1, 0):  # the killed worker first: then its partner's fate
        try:
            _, err = workers[i].communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            workers[i].kill()
            _, err = workers[i].communicate()
        results[i] = (workers[i].returncode, err[-3000:])
        if kill_at is not None:
            timeout = 120  # the partner fails, or hangs, in its next collective
    return results, prefixes


def _load(prefix):
    with open(prefix + ".json") as f:
        record = json.load(f)
    return dict(np.load(prefix + ".npz")), record


def _decisions(record):
    return [
        (e["kind"], e.get("from"), e.get("to"), e.get("params_after"))
        for e in record["growth_log"]
    ]


def _assert_workers_agree(prefixes, min_growths):
    (first, first_record), (second, second_record) = map(_load, prefixes)
    decisions = _decisions(first_record)
    assert [d[0] for d in decisions].count("grow") >= min_growths, decisions
    assert _decisions(second_record) == decisions
    assert first_record["spec"] == second_record["spec"]
    assert first_record["history"] == second_record["history"]
    assert sorted(first) == sorted(second)
    shared = [k for k in first if "moving_" not in k]
    assert len(shared) > len(first) // 2 and "predictions" in shared
    for key in shared:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    return first, first_record


def _assert_ok(results):
    for worker, (code, err) in results.items():
        assert code == 0, f"worker {worker} exited {code}:\n{err}"


@pytest.mark.xfail(
    strict=True,
    reason="keras-team/keras#20585: Keras 3's fit fails under MWMS; "
    "GrowableModel works around it (keras_grow.multi_worker)",
)
def test_plain_keras_fit_runs_on_two_workers(tmp_path):
    # The day Keras fixes it this passes, the strict xfail fails, and the
    # workaround in keras_grow.multi_worker can go.
    results, _ = _run(tmp_path, "plain", timeout=300)
    _assert_ok(results)


def test_autogrow_grows_alike_on_two_workers(tmp_path):
    results, prefixes = _run(tmp_path, "autogrow")
    _assert_ok(results)
    _, record = _assert_workers_agree(prefixes, min_growths=2)
    assert record["spec"] != "Basic3ResNet(4,8,8)-1-1-1"
    assert np.all(np.isfinite(record["history"]["val_loss"]))


@pytest.fixture(scope="module")
def firefly_uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("firefly_uninterrupted")
    results, prefixes = _run(out, "firefly", backup_dir=out / "backup")
    _assert_ok(results)
    return prefixes


def test_firefly_grows_alike_on_two_workers(firefly_uninterrupted):
    # Scores averaged across workers, new units from the chief: the same
    # net on both though each scored and trained on its own data.
    _, record = _assert_workers_agree(firefly_uninterrupted, min_growths=2)
    assert [e["kind"] for e in record["growth_log"]] == ["grow", "grow"]


def test_killed_worker_resumes_to_the_uninterrupted_run(
    firefly_uninterrupted, tmp_path
):
    backup = tmp_path / "backup"
    killed, _ = _run(tmp_path / "killed", "firefly", backup, kill_at=2)
    assert killed[1][0] == -9, killed[1][1]  # SIGKILL, at epoch 2
    assert killed[0][0] != 0  # its partner lost it
    # Only the chief wrote; the newest checkpoint is after epoch 2.
    assert sorted(os.listdir(backup))[-1] == "ckpt-000002"
    results, prefixes = _run(tmp_path / "resumed", "firefly", backup)
    _assert_ok(results)
    arrays, record = _assert_workers_agree(prefixes, min_growths=2)
    expected, expected_record = _load(firefly_uninterrupted[0])
    assert _decisions(record) == _decisions(expected_record)
    assert record["history"] == expected_record["history"]
    assert sorted(arrays) == sorted(expected)
    for key in expected:
        np.testing.assert_array_equal(arrays[key], expected[key], err_msg=key)


def test_firefly_binary_runs_on_two_workers(tmp_path):
    # `--multi_worker`: the same command on both; the chief writes the work
    # dir, worker 1 its own .worker1 in it; both found the same net.
    ports = _free_ports(2).split(",")
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workdir = tmp_path / "run"
    workers = []
    for i in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}}
        )
        command = [sys.executable, "-m", "experiments.firefly"]
        command += ["--preset=fmnist_tiny", "--seed=1", "--export=false"]
        command += [f"--workdir={workdir}", "--multi_worker"]
        workers.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [w.communicate(timeout=540) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    assert f"results in {workdir}/.worker1" in outputs[1][0]
    results = []
    for where in (workdir, workdir / ".worker1"):
        with open(where / "result.json") as f:
            results.append(json.load(f))
    assert results[0]["found"] == results[1]["found"]
    assert results[0]["test_accuracy"] == results[1]["test_accuracy"]
    assert results[0]["rounds"] == 2
    assert sorted(os.listdir(workdir / "backup"))  # the chief's checkpoints
    assert not os.path.exists(workdir / ".worker1" / "backup")
