# `make demo` and `make test` work on a fresh clone: they create .venv and install into it,
# always under constraints.txt so that pip takes the CPU torch wheel and never a CUDA build.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_INSTALL := $(PY) -m pip install -qq --disable-pip-version-check -c constraints.txt

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/rdistill run recipes/micro.yaml

test: install
	$(PY) -m pytest

clean:
	rm -rf runs .pytest_cache
