# gdro-rl: every target sets up .venv itself, so a fresh clone needs only Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU vLLM environment (requirements-vllm.txt): the tests marked `vllm` and `make bench-engines` run in it,
# with vLLM's engine core in-process (tensors reach the weight sync) and one OpenMP thread.
VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.installed
VLLM_ENV := VLLM_ENABLE_V1_MULTIPROCESSING=0 OMP_NUM_THREADS=1

.PHONY: venv venv-vllm test lint format reference train base-model plots bench-controllers bench-engines bench-trainer bench-step-phases clean

# pip compiles the bytecode of every installed module (about 45 of the main environment's 100 CPU-s): no
# --no-compile. Where PYTHONDONTWRITEBYTECODE is set (as on these machines) Python never caches what it
# compiles, and without pip's .pyc files every test process recompiled torch and transformers (a fresh-clone
# `make test` took 18.7 min and SLURM jobs missed their deadlines, against 13.5 min with them).
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	DS_BUILD_OPS=0 $(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

# .venv-vllm is layered on .venv: its gdro-main-venv.pth adds .venv's site-packages (with their own .pth
# files, the editable gdro among them) after its own, so pip sees torch, DeepSpeed and the test tools as
# installed and adds only vLLM's own packages and the pins it needs lower (transformers, numpy), which come
# first on sys.path. That halves the build (it was a second copy of the whole CPU stack).
$(VLLM_STAMP): $(STAMP) requirements-vllm.txt
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --upgrade pip
	$(VLLM_PY) -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], \
		"gdro-main-venv.pth").write_text(f"import site; site.addsitedir({sys.argv[1]!r})\n")' \
		"$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
	$(VLLM_PY) -m pip install --quiet -r requirements-vllm.txt
	$(VLLM_PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec triton
	touch $(VLLM_STAMP)

venv-vllm: $(VLLM_STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# docs/reference.md from the config dataclasses' field docstrings and conf/ (a test fails when it is stale).
reference: $(STAMP)
	$(PY) scripts/make_reference.py

# The main suite runs on 2 pytest-xdist workers (a test file stays on one worker: module fixtures run once).
# Beside it run the vLLM environment's build (layered on .venv, see above) followed by the vLLM tests
# (about 5 min alone: the learning test, its sign-flipped control and a 2-rank run among them), and the
# SLURM tests (about 4 min, mostly waiting on SLURM's timers); their output goes to .cache/ and is printed
# after the main suite. Every test process trains at one torch thread (GDRO_TORCH_THREADS, the default of
# trainer.torch_threads): these processes share the machine's cores, and two threads each spent 45% more
# CPU for 1.33x the speed of one.
TEST_ENV := GDRO_TORCH_THREADS=1

test: lint
	mkdir -p .cache
	{ $(MAKE) --no-print-directory venv-vllm > .cache/venv-vllm-install.log 2>&1 || \
		{ cat .cache/venv-vllm-install.log; exit 1; }; \
		$(TEST_ENV) $(VLLM_ENV) $(VLLM_PY) -m pytest -m vllm -p no:cacheprovider --durations=10 \
		> .cache/vllm-tests.log 2>&1; } & vllm=$$!; \
	$(TEST_ENV) $(PY) -m pytest -m slurm -p no:cacheprovider > .cache/slurm-tests.log 2>&1 & slurm=$$!; \
	$(TEST_ENV) $(PY) -m pytest -m "not vllm and not slurm" -n 2 --dist loadfile --durations=25; tests=$$?; \
	wait $$slurm; slurm_tests=$$?; echo "--- SLURM tests:"; cat .cache/slurm-tests.log; \
	wait $$vllm; vllm_tests=$$?; echo "--- vLLM tests:"; cat .cache/vllm-tests.log; \
	[ $$tests -eq 0 ] && [ $$slurm_tests -eq 0 ] && [ $$vllm_tests -eq 0 ]

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

# Rollout throughput of the hf and vllm engines on the CPU (tiny model, embedded settings) and one weight sync.
bench-engines: $(VLLM_STAMP)
	$(VLLM_ENV) $(VLLM_PY) scripts/bench_engines.py

# Our train.py against TRL's GRPOTrainer on the same tiny model, prompts and settings, in one process: at 1 and 2
# torch threads, 3 runs of each interleaved (ours, TRL, ours, TRL, ...): generated tokens/s, the phase split
# (generate, old/ref log-probs, update) and the ratio with its range over the rounds -> experiments/bench/.
# Run it on an idle machine. ARGS="--threads 1 --repeats 2 trainer.prompts_per_step=32" changes it.
bench-trainer: $(STAMP)
	$(PY) scripts/bench_trainer.py $(ARGS)

# The GRPO step with and without the on-policy shortcut, interleaved in one process: median step and phase
# seconds (generate, old and ref log-probs, update) -> experiments/bench/step_phases.json. ARGS="--threads 2".
bench-step-phases: $(STAMP)
	$(PY) scripts/bench_step_phases.py $(ARGS)

# Every method of conf/method/ on the learning simulator, 20 seeds each at equal generated rollouts (BUDGET;
# default STEPS x M x nbar, GRPO's), then experiments/sim/RESULTS.md and its figures from the compact run
# records in experiments/sim/runs/ (commit them). Resumable: finished runs in outputs/reproduce-sim/ and runs
# whose record is in experiments/sim/runs/ are not trained again.
#   make reproduce-sim [SEEDS=20] [STEPS=1000] [BUDGET=rollouts] [JOBS=2] [METHODS="rollout_gdro ..."]
.PHONY: reproduce-sim
reproduce-sim: $(STAMP)
	$(PY) scripts/reproduce_sim.py --seeds $(or $(SEEDS),20) --steps $(or $(STEPS),1000) --jobs $(or $(JOBS),2) \
		$(if $(BUDGET),--budget $(BUDGET)) $(if $(METHODS),--methods $(METHODS))

# Every method of conf/method/ on the embedded frontier task (experiment=frontier), SEEDS seeds each at equal
# generated rollouts (BUDGET; default 150 x 32 x 4 = 19,200, GRPO's), as Hydra multiruns side by side (JOBS
# processes, one torch thread per run), from one cached base model; then experiments/embedded/RESULTS.md
# from the compact run records in experiments/embedded/runs/ (commit them). Resumable: finished runs in
# outputs/reproduce-embedded/ and runs whose record is committed train nothing.
#   make reproduce-embedded [SEEDS=5] [JOBS=2] [BUDGET=rollouts] [METHODS="rollout_gdro sqrt_optimal"]
.PHONY: reproduce-embedded
reproduce-embedded: $(STAMP)
	$(PY) scripts/reproduce_embedded.py --seeds $(or $(SEEDS),5) --jobs $(or $(JOBS),2) \
		$(if $(BUDGET),--budget $(BUDGET)) $(if $(METHODS),--methods $(METHODS))

# RESULTS.md and the figures again from the committed run records alone (no training).
#   make results-sim | make results-embedded
.PHONY: results-sim results-embedded
results-sim: $(STAMP)
	$(PY) scripts/make_results.py --runs experiments/sim/runs --out experiments/sim \
		--title "Held-out success on the learning simulator, by method, at equal generated rollouts"
results-embedded: $(STAMP)
	$(PY) scripts/make_results.py --runs experiments/embedded/runs --out experiments/embedded \
		--title "Held-out success on the embedded frontier task, by method, at equal generated rollouts"

# The paper's Table 1 and the ablations as Hydra multiruns, one per (scale, method) (experiments/*.yaml;
# scripts/paper_grid.py). DRY=1 prints every resolved job with its GPU-hours and launches nothing; cluster
# settings go in ARGS, e.g. ARGS="hydra.launcher.partition=gpu hydra.launcher.account=ACCOUNT".
#   make paper-table1 [SCALE=1.7b|4b|8b|all] [SEEDS=3] [LAUNCHER=slurm|local] [DRY=1] [ARGS=...]
#   make paper-ablations [same] [METHODS="prompt_gdro rollout_gdro"]   (a subset of the plan's methods)
# Then Table 1 (Markdown and LaTeX) from the finished runs, in run folders or in a W&B project:
#   make table1 [RUNS="outputs/paper_table1 ..." | WANDB=entity/project] [OUT=experiments/paper]
.PHONY: paper-table1 paper-ablations table1
paper_grid = $(PY) scripts/paper_grid.py --plan $(1) --scale $(or $(SCALE),1.7b) --seeds $(or $(SEEDS),3) \
	--launcher $(or $(LAUNCHER),slurm) $(if $(METHODS),--methods $(METHODS)) $(if $(DRY),--dry) -- $(ARGS)

paper-table1: $(STAMP)
	$(call paper_grid,experiments/paper_table1.yaml)

paper-ablations: $(STAMP)
	$(call paper_grid,experiments/paper_ablations.yaml)

table1: $(STAMP)
	$(PY) scripts/make_tables.py $(if $(WANDB),--wandb $(WANDB),--runs $(or $(RUNS),outputs/paper_table1)) \
		--out $(or $(OUT),experiments/paper)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .pytest_cache .ruff_cache
