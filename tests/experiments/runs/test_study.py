import json
import os

from experiments.runs import plots
from experiments.runs import study


def _write(workdir, run, **result):
    os.makedirs(os.path.join(workdir, run.name))
    with open(os.path.join(workdir, run.name, "result.json"), "w") as handle:
        json.dump({"seed": run.seed, **result}, handle)


def test_grid_covers_every_table_with_its_seeds():
    runs = study.grid(seeds=(0, 1, 2), few_seeds=(0, 1))
    tables = {}
    for run in runs:
        tables.setdefault(run.table, set()).add(run.row)
    assert tables["initializers"] == {"zero", "adam", "uniform", "gaussian"}
    assert tables["growth_period"] == {"K=1", "K=2", "K=3", "convergent"}
    assert tables["subsampling"] == {"take=2000", "take=1000", "take=500"}
    assert len(runs) == 12 + 8 + 6
    # K=1 and take=2000 are the gaussian runs of table 1, not run again.
    assert len({run.name for run in runs}) == 12 + 6 + 4
    alias = [r for r in runs if r.row == "K=1" and r.seed == 1][0]
    assert alias.name == "initializers-gaussian-seed1"
    half = [r for r in runs if r.row == "take=1000"][0]
    # Half the data: twice the epochs between growths and in the window.
    assert "--growth_period=2" in half.flags and "--patience=6" in half.flags


def test_baselines_follow_the_found_nets_and_the_table_reads_results(tmp_path):
    workdir = str(tmp_path)
    gaussian = study.StudyRun("initializers", "gaussian", 0, ())
    _write(
        workdir,
        gaussian,
        found="Basic3ResNet-3-2-2",
        depths=[3, 2, 2],
        params=1000,
        test_accuracy=0.8,
        epochs=12,
        wall_seconds=60.0,
    )
    runs = study.baseline_runs(workdir, seeds=(0, 1))
    assert len(runs) == 1
    command = " ".join(runs[0].command(workdir))
    assert "experiments.baseline" in command and "--spec=Basic3ResNet-3-2-2" in command
    assert "--epochs=12" in command and "--preset" not in command
    other = study.StudyRun("initializers", "gaussian", 1, ())
    _write(
        workdir,
        other,
        found="Basic3ResNet-2-2-2",
        depths=[2, 2, 2],
        params=900,
        test_accuracy=0.7,
        epochs=10,
        wall_seconds=50.0,
    )
    rows = study.summarise([gaussian, other], workdir)
    table = study.markdown_table(rows, "initializers", workdir)
    assert (
        "| gaussian | 0, 1 | Basic3ResNet-3-2-2, Basic3ResNet-2-2-2 | 6.5 ± 0.7"
        in table
    )
    assert "75.00 ± 7.07" in table
    assert study.commands(rows, "initializers", workdir).count("python -m") == 2


def test_plot_study_writes_a_png(tmp_path):
    path = str(tmp_path / "study.png")
    assert plots.plot_study(
        [
            (
                "initialisers",
                [("zero", [0.8, 0.82], [6, 7]), ("gaussian", [0.85], [8])],
            ),
            ("scratch", [("net", [0.8], [])]),
        ],
        path,
    )
    assert os.path.getsize(path) > 1000


def test_a_run_is_claimed_by_one_worker_only(tmp_path):
    run = study.StudyRun("initializers", "zero", 0, ())
    assert study._claim(str(tmp_path), run) is True
    assert study._claim(str(tmp_path), run) is False


def test_firefly_grid_and_the_rows_its_main_runs_stand_for():
    from experiments.runs import firefly_study

    runs = firefly_study.grid(seeds=(0, 1))
    tables = {}
    for run in runs:
        tables.setdefault(run.table, set()).add(run.row)
    assert set(tables) == {"methods", "ablation", "integral", "settings"}
    assert len(runs) == 2 * 8 and len({r.name for r in runs}) == len(runs)
    long_run = [r for r in runs if r.table == "settings"][0]
    assert "--delta_steps=150" in long_run.flags
    assert "--score_batches=16" in long_run.flags
    main = {"results": [{"seed": 0}]}
    rows = firefly_study.rows_with_shared({("methods", "firefly"): main})
    shared = [key for key, entry in rows.items() if entry is main]
    assert {table for table, _ in shared} == set(tables)
    settings_row = [row for table, row in shared if table == "settings"][0]
    assert "delta_steps=30, score_batches=4" in settings_row
