# retinaflow: set-up and the README's commands. Everything installs into .venv from the
# project's own files (requirements.txt, pyproject.toml), so a fresh machine needs only python3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2

.PHONY: venv demo test lint format clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The main job on the embedded offline demo: the headline target, the TVM int8 build's mAP.
demo: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) results/map_int8.json --configfile config/demo.yaml

# The test suite (CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts scripts
	$(BIN)/ruff format --check src tests workflow/scripts scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format src tests workflow/scripts scripts
	$(BIN)/snakefmt Snakefile workflow/rules

# The workflow's outputs; benchmarks/ keeps its committed records (*.md, records/) and loses the
# per-job Snakemake benchmark folders.
clean:
	rm -rf data models builds preds results logs .snakemake
	rm -rf $(filter-out benchmarks/records benchmarks/%.md,$(wildcard benchmarks/*))
