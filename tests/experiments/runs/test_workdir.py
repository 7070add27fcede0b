"""Claims let two processes of one study share its work directory."""

import json
import os
import subprocess
import sys

import pytest

from experiments.runs import branching
from experiments.runs import workdir as workdir_lib


@pytest.fixture
def other_process():
    """A live process other than this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def _held_by(result_path, pid, boot_id=None):
    with open(f"{result_path}.claim", "w") as handle:
        json.dump({"pid": pid, "boot_id": boot_id or workdir_lib._boot_id()}, handle)


def test_a_claim_is_held_while_its_block_runs_and_removed_after(tmp_path):
    result = str(tmp_path / "arm.json")
    with workdir_lib.claim(result) as mine:
        assert mine
        assert workdir_lib.holder(f"{result}.claim") == os.getpid()
    assert os.listdir(tmp_path) == []


def test_a_claim_removed_also_when_the_block_fails(tmp_path):
    result = str(tmp_path / "arm.json")
    with pytest.raises(RuntimeError), workdir_lib.claim(result):
        raise RuntimeError("the arm failed")
    assert os.listdir(tmp_path) == []


def test_a_live_process_claim_is_not_taken(tmp_path, other_process):
    result = str(tmp_path / "arm.json")
    _held_by(result, other_process.pid)
    with workdir_lib.claim(result) as mine:
        assert not mine
    assert workdir_lib.holder(f"{result}.claim") == other_process.pid


def test_a_dead_process_or_an_earlier_boot_claim_is_taken_over(tmp_path, other_process):
    result = str(tmp_path / "arm.json")
    _held_by(result, other_process.pid, boot_id="an earlier boot")
    with workdir_lib.claim(result) as mine:
        assert mine
    other_process.kill()
    other_process.wait()
    _held_by(result, other_process.pid)
    with workdir_lib.claim(result) as mine:
        assert mine
    assert os.listdir(tmp_path) == []


def test_run_arms_skips_an_arm_another_process_runs(tmp_path, other_process):
    workdir = str(tmp_path)
    config = type("Config", (), {"seed": 3})()
    os.makedirs(os.path.dirname(branching.path(workdir, 3, "a")))
    _held_by(branching.path(workdir, 3, "a"), other_process.pid)
    ran, lines = [], []

    def runner(config, arm, workdir):
        ran.append(arm)
        return {
            "found": "net",
            "params": 1,
            "test_accuracy": 0.5,
            "test_nll": 1.0,
            "seconds": 1.0,
        }

    branching.run_arms(config, workdir, ("a", "b"), runner, lines.append)
    assert ran == ["b"]
    assert branching.read(workdir, 3, "a") is None
    assert branching.read(workdir, 3, "b")["found"] == "net"
    assert "another process runs it" in lines[0]
