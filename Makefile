PYTHON := $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv

.PHONY: venv install demo test test-slow test-horovod clean

venv: $(VENV)/bin/python

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip

install: $(VENV)/.installed

# Reinstall whenever setup.py changes. The onnx extra (about 20 s) lets `make test` check
# `bench export` and `bench speed --compare onnxruntime`.
$(VENV)/.installed: setup.py | $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[cpu,test,onnx]'
	touch $@

# The embedded default run: a CIFAR-style ResNet-20 trained on scikit-learn's digits, checked
# against its target, recorded in results/runs/, and the results table regenerated.
DEMO_RUNS := runs/demo
demo: install
	rm -rf $(DEMO_RUNS)
	$(VENV)/bin/bench run recipe digits_resnet --out $(DEMO_RUNS)
	$(VENV)/bin/bench check $(DEMO_RUNS)/digits_resnet/*
	$(VENV)/bin/bench record $(DEMO_RUNS)/digits_resnet/*
	$(VENV)/bin/bench table --row digits_resnet

# The default (pyproject.toml's addopts) leaves out tests marked slow. The committed results
# table must be current (generated from results/runs and results/published.toml).
# pytest-xdist runs the tests in TEST_WORKERS processes (CI has 2 cores; tests/conftest.py
# gives each worker its share of OpenMP threads and keeps a module's shared fixture on one
# worker): about half the serial wall time. `make test TEST_WORKERS=0` runs them in one process.
TEST_WORKERS := 2
test: install
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup
	$(VENV)/bin/bench table --check

test-slow: install
	$(VENV)/bin/python -m pytest -q -m slow

# kvstore horovod: builds horovod 0.28.1 against mxnet 1.9.1 with Gloo (about 2 minutes on
# 2 cores; without --no-build-isolation its build cannot import mxnet), then runs its test.
HOROVOD_BUILD := HOROVOD_WITH_MXNET=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
	HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1
test-horovod: install
	$(VENV)/bin/pip install wheel cmake
	$(HOROVOD_BUILD) $(VENV)/bin/pip install --no-build-isolation horovod==0.28.1
	$(VENV)/bin/python -m pytest -q tests/engine/test_horovod.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
