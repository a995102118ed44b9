# Two commands do everything on a fresh machine:  `make demo` (the main job)  and  `make test`.
# Both create .venv, install the package and its system dependencies (CP2K, Open MPI), create the
# project-local AiiDA profile in .aiida/ (your ~/.aiida is never touched) and register localhost and the codes.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PROFILE ?= les
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

export AIIDA_PATH := $(CURDIR)/.aiida
export PATH := $(BIN):$(PATH)
# Open MPI refuses to run as root without these (CP2K runs under mpirun).
export OMPI_ALLOW_RUN_AS_ROOT := 1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM := 1
export MPLBACKEND := Agg

.PHONY: demo test setup install system-deps lint format clean cluster-test cluster-up cluster-down

# Drop the machine's pip-config noise about missing local indexes; keep everything else.
PIP_FILTER := grep -v "is ignored: it is neither a file nor a directory" || true

$(STAMP): pyproject.toml
	bash .ci/install-system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev,xtb]' 2>&1 | { $(PIP_FILTER); }
	touch $@

install: $(STAMP)

system-deps:
	bash .ci/install-system-deps.sh

setup: install
	$(BIN)/aiida-les setup --profile $(PROFILE)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: setup lint
	$(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'make test: pytest collected no tests; that is a failure here.' >&2; fi; \
	exit $$rc

demo: setup
	$(BIN)/verdi --profile $(PROFILE) run examples/demo.py

# Production stack (PostgreSQL + RabbitMQ + daemon + single-node SLURM; root, Debian): see docs/production.md.
cluster-up: install
	bash .ci/cluster/up.sh

cluster-down:
	bash .ci/cluster/down.sh

cluster-test: cluster-up
	$(BIN)/pytest -m cluster -s -p no:cacheprovider tests/cluster $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .aiida .demo .pytest_cache .ruff_cache
