# Two commands do the whole set-up: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv and installs what it needs when missing.
PYTHON ?= python3
VENV ?= .venv
# CPU wheel by default; a GPU user overrides it, e.g. make demo TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PORT ?= 5000
# grid points make demo trains at once (each with cores / jobs torch threads)
DEMO_JOBS ?= 2
STAMP := $(VENV)/.installed
# how reproduce-* runs, not what it runs (a run made on another device counts the same):
# e.g. make reproduce-all DEVICE=cuda REPRODUCE_ARGS="--jobs 2 --set train.eval_batch_size=1024"
DEVICE ?=
REPRODUCE_ARGS ?=
RUN_AS := $(if $(DEVICE),--device $(DEVICE)) $(REPRODUCE_ARGS)

.PHONY: install demo test test-all lint bench reproduce-quick reproduce-all report ui clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# trains fig3d's grid at the quick scale (minutes on a CPU; `plstm reproduce fig3d --scale
# quick --dry-run` estimates it here), then prints its table, ours beside the paper's, and the files
demo: $(STAMP)
	$(VENV)/bin/plstm reproduce fig3d --scale quick --jobs $(DEMO_JOBS)

test: $(STAMP)
	$(PY) -m pytest -q

test-all: $(STAMP)
	$(PY) -m pytest -q -m ""

lint: $(STAMP)
	$(VENV)/bin/ruff check plstm_repro tests scripts

bench: $(STAMP)
	$(VENV)/bin/plstm bench

reproduce-quick: $(STAMP)
	$(VENV)/bin/plstm reproduce all --scale quick $(RUN_AS)

reproduce-all: $(STAMP)
	$(VENV)/bin/plstm reproduce all --scale paper $(RUN_AS)

report: $(STAMP)
	$(VENV)/bin/plstm report

ui: $(STAMP)
	$(VENV)/bin/plstm ui --port $(PORT)

clean:
	rm -rf $(VENV) build *.egg-info
