# alignment-research: the Makefile is the entry point.
#   make run     the main job on the bundled sample study (creates .venv if missing; runtime packages only)
#   make screenshot  PNG screenshots of every page of the last run (reports/screenshots/)
#   make test    every test, notebooks included, on every core (creates .venv if missing; adds the test tools)
SHELL := /bin/bash
# Python caches compiled modules (and pytest its assertion-rewritten tests) in __pycache__, so the test
# workers, notebook kernels and process pools after the first do not compile everything again. Some
# machines switch that off in the environment; it is switched back on for every target here.
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
STUDY ?= data/sample
OUT ?= reports

.PHONY: run test test-claims test-fast notebooks sample lock reference bench lab screenshot clean-venv

# Packages are installed by uv (pinned here; a set-up tool, not a dependency of the package), which installs the
# locked packages about five times faster than pip: a fresh .venv with both locks took 19.3 s against pip's
# 106.5 s (3 Dec 2026, this 2-core machine, both from an empty cache; uv downloads from PyPI). Where uv cannot be
# installed or cannot reach the index, pip installs the same pins (it also reads this machine's pip.conf).
UV_VERSION := 0.13.9
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
install = $(BIN)/python -m uv pip install --quiet --python $(BIN)/python $(1) 2>/dev/null || $(PIP) $(1)

# Runtime: requirements.lock, then the package itself. Test targets add requirements-dev.lock on top.
$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || echo "Creating the environment in $(VENV) from requirements.lock (first time only; under a minute with uv, about 2 minutes with pip)."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) uv==$(UV_VERSION) 2>/dev/null || echo "uv could not be installed; pip installs the packages (slower)."
	$(call install,-r requirements.lock)
	$(call install,--no-deps -e .)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(call install,-r requirements-dev.lock)
	@touch $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/alignment-research run $(STUDY) --out $(OUT)

# Tests run on every core (pytest-xdist, one worker per core; XDIST=0 runs them in one process).
# --dist loadfile keeps a test file on one worker, so its module-scoped fixtures (simulated studies,
# notebook runs, the recovery seeds) are built once, classes included (loadscope would split a file's
# classes across workers); for nbval it keeps a notebook on one worker, whose kernel runs the cells in order.
# tests/conftest.py hands the workers the longest files first (its FILE_CPU_SECONDS, measured by
# benchmarks/bench_tests.py), so the short ones fill in at the end and both workers finish together.
# With one worker per core, each worker's BLAS keeps to one thread (as the toolkit's process pools do), so the
# workers' BLAS threads do not outnumber the cores. On the heterogeneity and GLMM recovery tests, one BLAS thread
# took 30.8 s CPU and 34.7 s wall against 34.9 s and 49.3 s with the default (one run each, on a loaded machine).
# So does each notebook kernel under nbval, one per worker, as `run` shares the cores between its kernels: nbval took
# 24.9-26.3 s wall and 42-44 s user against 37.5-38.0 s and 65 s with the default (two runs each, alternating, 4 Dec
# 2026, a quiet machine), and the outputs are the same.
XDIST ?= auto
PARALLEL = $(if $(filter 0,$(XDIST)),,-n $(XDIST))
ONE_BLAS_THREAD = OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 BLIS_NUM_THREADS=1

# The test files need no nbval: leaving its plugin out spares every pytest process its imports (about 2 s each).
# nbval's notebooks share one cleaned study and its stored results, as under `run` (notebooks/conftest.py): 32.5-34.0 s
# against 55 s when each cleaned the sample and fitted the shared results itself (4 Dec 2026).
test: $(DEV_STAMP)
	$(if $(PARALLEL),$(ONE_BLAS_THREAD)) $(BIN)/python -m pytest tests -q -m "not claims" -p no:cacheprovider -p no:nbval $(PARALLEL) $(if $(PARALLEL),--dist loadfile)
	$(if $(PARALLEL),$(ONE_BLAS_THREAD)) $(BIN)/python -m pytest --nbval --nbval-current-env -q -p no:cacheprovider $(PARALLEL) $(if $(PARALLEL),--dist loadfile) notebooks/

# The scorecard's recovery over the simulator's practices (issue 15): 50 seeds, about 10 CPU-minutes, with
# strict expected failures where the scorecard does not yet cover; kept out of `make test` until it passes.
test-claims: $(DEV_STAMP)
	$(BIN)/python -m pytest tests/test_recovery_claims.py -q -p no:cacheprovider

test-fast: $(DEV_STAMP)
	$(if $(PARALLEL),$(ONE_BLAS_THREAD)) $(BIN)/python -m pytest tests -q -m "not slow" -p no:cacheprovider -p no:nbval $(PARALLEL) $(if $(PARALLEL),--dist loadfile)

# Re-execute the notebooks in place on the sample study (these are the committed outputs).
notebooks: $(DEV_STAMP)
	$(BIN)/alignment-research notebooks notebooks/

# Regenerate the bundled synthetic sample study bit-for-bit. It leaves out the optional goals column set_with, so the
# sample shows the "not testable" verdict too (claim 6 of the scorecard, with the column it needs).
sample: $(STAMP)
	rm -rf data/sample
	$(BIN)/alignment-research simulate --employees 2000 --seed 20261129 --omit goals.set_with --out data/sample

# Re-pin exact versions from the ranges in pyproject.toml: runtime first, then what the dev extra adds.
lock:
	rm -rf /tmp/ar-lock && $(PYTHON) -m venv /tmp/ar-lock
	/tmp/ar-lock/bin/pip install --quiet -e .
	/tmp/ar-lock/bin/pip freeze --exclude-editable | grep -v '^alignment-research' > /tmp/ar-lock/runtime.txt
	/tmp/ar-lock/bin/pip install --quiet -e '.[dev]'
	/tmp/ar-lock/bin/pip freeze --exclude-editable | grep -v '^alignment-research' | grep -vxF -f /tmp/ar-lock/runtime.txt > /tmp/ar-lock/dev.txt || true
	{ echo "# Exact versions of the runtime dependencies (pyproject.toml [project] dependencies) and everything they need."; \
	  echo "# Installed by \`make run\`; \`make lock\` regenerates it. Test tools are pinned in requirements-dev.lock."; \
	  cat /tmp/ar-lock/runtime.txt; } > requirements.lock
	{ echo "# Exact versions of the test tools (pyproject.toml [project.optional-dependencies] dev) and what only they need."; \
	  echo "# Installed on top of the runtime pins by \`make test\`, test-fast, notebooks, reference and bench."; \
	  echo "-r requirements.lock"; cat /tmp/ar-lock/dev.txt; } > requirements-dev.lock

# Reference values from R (needs: apt-get install r-base-core r-cran-survival r-cran-lme4 r-cran-mass r-cran-sandwich r-cran-psych r-cran-cmprsk).
# Each model family has tests/reference/<family>_data.py (writes fixed inputs) and
# tests/reference/<family>.R (reads them, writes the stored reference values).
reference: $(DEV_STAMP)
	cd tests/reference && for f in *_data.py; do ../../$(BIN)/python $$f || exit 1; done
	cd tests/reference && for f in *.R; do Rscript $$f || exit 1; done

# Every benchmark prints one markdown section; they are concatenated below a header (date, machine, version)
# into benchmarks/results.md. QUICK=1: small sizes, a few minutes (a smoke test; the documented sizes take long).
bench: $(DEV_STAMP)
	@set -o pipefail; { $(BIN)/python benchmarks/_common.py header $(if $(QUICK),--quick) && \
	  for b in benchmarks/bench_*.py; do $(BIN)/python $$b $(if $(QUICK),--quick) || exit 1; done; } \
	  | tee benchmarks/results.md.tmp
	@$(BIN)/python benchmarks/_common.py merge benchmarks/results.md.tmp benchmarks/results.md && \
	  echo "wrote benchmarks/results.md (sections of the same title replaced, the others kept)"

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

# PNG screenshots (headless Chromium, full page) of every page of a run: the index, the brief, the dashboard and
# each report, into $(OUT)/screenshots/<page>.png. Needs `make run` first (same OUT) and Chromium.
screenshot: $(STAMP)
	@test -f $(OUT)/index.html || { echo "No reports in $(OUT): run \`make run\` (with the same OUT) first."; exit 1; }
	@mkdir -p $(OUT)/screenshots
	@for page in $(OUT)/*.html; do \
	  $(BIN)/python -m alignment_research.browser screenshot "$$page" "$(OUT)/screenshots/$$(basename "$$page" .html).png" || exit 1; \
	done

clean-venv:
	rm -rf $(VENV)
