"""The tiny AutoGrow binary run, made once per test process (once in all
when both test files land on the same pytest-xdist worker): the smoke test
checks its files, the resume test compares a killed-and-resumed run with
it."""

import pytest

from tests.experiments.test_autogrow_binaries import _run

AUTOGROW_TINY = ("experiments.autogrow", "--preset=fmnist_tiny", "--seed=1")


@pytest.fixture(scope="session")
def autogrow_tiny_run(tmp_path_factory):
    """(work dir, completed process) of an uninterrupted tiny AutoGrow run."""
    workdir = tmp_path_factory.mktemp("autogrow_tiny") / "ag"
    return workdir, _run(*AUTOGROW_TINY, f"--workdir={workdir}")
