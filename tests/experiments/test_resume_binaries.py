"""An experiment binary killed with SIGKILL and started again with the same
--workdir ends exactly where an uninterrupted run does: same found spec, same
growth log, every epoch once in the history, the same losses. (Firefly's
resume, exact down to every weight, is tested in-process in
tests/callbacks/test_backup_and_restore.py; the binaries share the code.)

Each run is a real subprocess; `tests.experiments.killed_run` kills it at a
chosen point (in the middle of a growth, of a checkpoint write, of an
epoch), and one kill comes from outside at whatever point the run is at.
"""

import csv
import json
import os
import signal
import subprocess
import sys

import pytest

from keras_grow import growth_events
from tests.experiments.conftest import AUTOGROW_TINY
from tests.experiments.test_autogrow_binaries import ROOT
from tests.experiments.test_autogrow_binaries import _run


def _killed_at(point, binary, workdir):
    """Runs `binary`, killed by SIGKILL at `point` (see killed_run)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.experiments.killed_run", point, *binary]
        + [f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-4000:]
    return result.stdout


def _killed_after_line(text, binary, workdir):
    """Runs `binary` and kills it from outside once it prints `text`."""
    process = subprocess.Popen(
        [sys.executable, "-m", *binary, f"--workdir={workdir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "".join(seen)
    return "".join(seen)


def _outcome(workdir):
    """(found spec, growth log without wall times, history rows)."""
    with open(os.path.join(workdir, "found_spec.json")) as handle:
        spec = json.load(handle)
    with open(os.path.join(workdir, "growth_log.json")) as handle:
        log = growth_events.reproducible(json.load(handle))
    with open(os.path.join(workdir, "history.csv")) as handle:
        rows = growth_events.reproducible(list(csv.DictReader(handle)))
    return spec, log, rows


def _assert_same_run(resumed, reference):
    spec, log, rows = _outcome(resumed)
    spec_ref, log_ref, rows_ref = _outcome(reference)
    assert spec == spec_ref
    assert log == log_ref
    assert [r["epoch"] for r in rows] == [str(e) for e in range(len(rows_ref))]
    assert rows == rows_ref
    assert any(e["kind"] == "grow" for e in log)
    backups = os.listdir(os.path.join(resumed, "backup"))
    assert backups and all(name.startswith("ckpt-") for name in backups)


@pytest.mark.nightly
def test_autogrow_killed_three_times_resumes_to_the_uninterrupted_run(
    tmp_path, autogrow_tiny_run
):
    # The tiny preset grows at the ends of epochs 1-3, fine-tunes, and stops
    # after epoch 6 of 12; the reference is the smoke test's run.
    binary = AUTOGROW_TINY
    reference = str(autogrow_tiny_run[0])
    workdir = str(tmp_path / "killed")
    # In the second growth (end of epoch 2): resumes after epoch 1.
    _killed_at("grow:2", binary, workdir)
    # Writing its second checkpoint (after epoch 3): resumes after epoch 2.
    out = _killed_at("save:2", binary, workdir)
    assert "resumed from" in out and "1 epochs done" in out
    assert any(".tmp" in name for name in os.listdir(os.path.join(workdir, "backup")))
    # From outside, once epoch 5's line is out (fine-tuning by then).
    out = _killed_after_line("epoch 5/12", binary, workdir)
    assert "2 epochs done" in out
    result = _run(*binary, f"--workdir={workdir}")
    assert "resumed from" in result.stdout
    _assert_same_run(workdir, reference)
    with open(os.path.join(workdir, "result.json")) as handle:
        assert json.load(handle)["finished"] is True


FIREFLY_TINY = ("experiments.firefly", "--preset=fmnist_tiny", "--seed=1")


@pytest.mark.nightly
def test_firefly_killed_twice_resumes_to_the_uninterrupted_run(tmp_path):
    # The tiny preset grows at the ends of epochs 1 and 2 of 4 (Firefly's
    # rounds: step one, scores, realise); its state (round, data position)
    # travels in the checkpoints.
    binary = FIREFLY_TINY
    reference = str(tmp_path / "reference")
    _run(*binary, f"--workdir={reference}")
    workdir = str(tmp_path / "killed")
    # In the second round's growth: resumes after epoch 1, its round done.
    _killed_at("grow:2", binary, workdir)
    # Writing the resumed run's second checkpoint.
    out = _killed_at("save:2", binary, workdir)
    assert "resumed from" in out and "1 epochs done" in out
    result = _run(*binary, f"--workdir={workdir}")
    assert "resumed from" in result.stdout
    _assert_same_run(workdir, reference)
