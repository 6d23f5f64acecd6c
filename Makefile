# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JAXPLAIN_DATA ?= $(abspath ../shared/data)
export JAXPLAIN_DATA

.PHONY: demo test install install-test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -e '.[test,reference]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(VENV)/bin/jaxplain demo --out demo_out

test: install-test
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 --durations=15

clean:
	rm -rf $(VENV) demo_out
