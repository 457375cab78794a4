PYTHON := $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv

.PHONY: venv install demo test test-slow clean

venv: $(VENV)/bin/python

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip

install: $(VENV)/.installed

# Reinstall whenever setup.py changes.
$(VENV)/.installed: setup.py | $(VENV)/bin/python
	$(VENV)/bin/pip install -e '.[cpu,test]'
	touch $@

# The embedded default run: a CIFAR-style ResNet-20 trained on scikit-learn's digits.
demo: install
	$(VENV)/bin/bench run recipe digits_resnet

# The default (pyproject.toml's addopts) leaves out tests marked slow.
test: install
	$(VENV)/bin/python -m pytest -q

test-slow: install
	$(VENV)/bin/python -m pytest -q -m slow

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
