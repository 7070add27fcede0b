"""training.start: a work dir with checkpoints is resumed, with the same
config only."""

import dataclasses
import json
import os

import pytest

import keras_grow as kg
from experiments.runs import firefly
from experiments.runs import training
from experiments.runs import workdir as workdir_lib
from keras_grow import checkpoints


def _interrupted_run(workdir, config, epochs_done):
    """A work dir as a killed run leaves it: config.json and checkpoints."""
    workdir_lib.prepare(workdir, config)
    spec = training.make_spec(config, kg.data.info(config.dataset), config.initial)
    model = training.compile_model(kg.GrowableModel(spec), config)
    checkpoints.save(training.backup_dir(workdir), model, epochs_done)


def test_resuming_with_other_flags_is_refused_and_nothing_is_lost(tmp_path):
    workdir = str(tmp_path)
    config = firefly.resolve("fmnist_tiny")
    _interrupted_run(workdir, config, epochs_done=2)
    saved = sorted(os.listdir(training.backup_dir(workdir)))
    config_text = (tmp_path / "config.json").read_text()
    other = dataclasses.replace(config, seed=7)
    with pytest.raises(ValueError, match="seed: 0 -> 7.*another --workdir"):
        training.start(other, workdir, other.initial)
    assert sorted(os.listdir(training.backup_dir(workdir))) == saved
    assert (tmp_path / "config.json").read_text() == config_text


def test_a_work_dir_with_checkpoints_starts_where_they_end(tmp_path):
    workdir = str(tmp_path)
    config = firefly.resolve("fmnist_tiny")
    _interrupted_run(workdir, config, epochs_done=3)
    setup = training.start(config, workdir, config.initial)
    assert setup.start_epoch == 3
    assert setup.steps_per_epoch == 4  # 256 images in batches of 64
    fresh = training.start(config, str(tmp_path / "new"), config.initial)
    assert fresh.start_epoch == 0


def test_one_process_writes_its_work_dir(mirrored_strategy):
    # Several workers write .worker<i> beside the chief (tests/test_two_workers.py).
    assert training.worker_workdir("out/run") == "out/run"
    assert training.worker_workdir("out/run", mirrored_strategy) == "out/run"


def test_a_config_saved_before_a_field_existed_resumes_at_its_default(tmp_path):
    config = firefly.resolve("fmnist_tiny")
    workdir_lib.prepare(str(tmp_path), config)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["optimizer"]  # as written before the field was added
    (tmp_path / "config.json").write_text(json.dumps(saved))
    workdir_lib.check_config(str(tmp_path), config)
    adamw = dataclasses.replace(config, optimizer="adamw")
    with pytest.raises(ValueError, match="optimizer: 'sgd' -> 'adamw'"):
        workdir_lib.check_config(str(tmp_path), adamw)
