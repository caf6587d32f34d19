# gdro-rl: every target sets up .venv itself, so a fresh clone needs only Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint format train base-model plots bench-controllers clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint
	$(PY) -m pytest

# The main job: GRPO on the embedded tiny Qwen3 + synthetic task (CPU). Pass options with ARGS, e.g.
#   make train ARGS="sampler=prompt_gdro allocator=rollout_gdro"
train: $(STAMP)
	$(PY) train.py $(ARGS)

base-model: $(STAMP)
	$(PY) scripts/base_model.py hydra.run.dir=.cache/hydra-base-model $(ARGS)

# make plots RUN="outputs/DATE/TIME [more runs]" ARGS="--out DIR"
plots: $(STAMP)
	$(PY) scripts/plot_curriculum.py $(RUN) $(ARGS)

bench-controllers: $(STAMP)
	$(PY) scripts/bench_controllers.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
