# The two set-up commands of the README: `make demo` and `make test`. Each
# creates .venv and installs what it needs by itself.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: demo test test-fast test-nightly lint fashion-mnist clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The main job: grow a small ResNet on the embedded Fashion-MNIST sample,
# print the found net, save it and export it for TF Serving (out/demo).
demo: $(VENV)/.installed
	$(PY) -m experiments.grow_demo --workdir out/demo

# Every test but the nightly ones; the full Fashion-MNIST files (Debian
# package) are installed first when possible, for the tests that read them.
# The slowest tests are listed at the end (make test stays under ~20 min).
test: $(VENV)/.installed fashion-mnist
	$(PY) -m pytest --numprocesses=2 --dist=loadfile -m "not nightly" --durations=30

# The long chains (kill-and-resume of the binaries, ...), for a nightly job.
test-nightly: $(VENV)/.installed fashion-mnist
	$(PY) -m pytest --numprocesses=2 --dist=loadfile -m nightly

# Without the slow (training / export) and nightly tests.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow and not nightly"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check keras_grow experiments tests scripts

fashion-mnist:
	@test -e $(FASHION_MNIST) || \
	  { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null; } || \
	  echo "note: could not install dataset-fashion-mnist (needs root and Debian);" \
	       "the tests that read the full files will be skipped"

clean:
	rm -rf $(VENV) out .pytest_cache
