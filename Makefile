# The two commands of the README: `make run` (embedded stack + demo) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-12)
export PYTHONPATH := $(CURDIR)
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := False

.PHONY: install run up stop status test test-unit bench lock compose-check clean

install: $(STAMP)

# Installs exactly the committed lock: the same versions on every machine.
$(STAMP): requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip check
	@rm -f $(VENV)/.installed-* && touch $@

run: install          ## fresh embedded stack (moto S3, MLflow, Airflow) + demo runs
	$(BIN)/python scripts/stack.py up

up: install           ## the stack without the demo
	$(BIN)/python scripts/stack.py up --no-demo

stop:                 ## stop every process the stack started
	@test -x $(BIN)/python && $(BIN)/python scripts/stack.py down || echo "nothing to stop (no virtualenv)"

status:
	@$(BIN)/python scripts/stack.py status

test: install         ## the whole suite: unit, plugins, dags, infra, e2e
	$(BIN)/python -m pytest -q

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

# Every benchmark section (scripts/bench.py) -> stdout and docs/benchmarks.md; QUICK=1 for a short run.
bench: install
	$(BIN)/python scripts/bench.py $(if $(filter 1 yes true,$(QUICK)),--quick)

compose-check: install
	$(BIN)/python -m pytest -q tests/infra

# Re-resolve the lock from requirements-dev.txt in a scratch venv.
lock:
	rm -rf /tmp/retrain-lock && $(PYTHON) -m venv /tmp/retrain-lock
	/tmp/retrain-lock/bin/pip install --quiet --upgrade pip
	/tmp/retrain-lock/bin/pip install --quiet -r requirements-dev.txt
	{ echo "# Fully resolved lock of requirements-dev.txt (pip freeze on Python 3.11). Regenerate with: make lock"; \
	  /tmp/retrain-lock/bin/pip freeze; } > requirements.lock

clean: stop
	rm -rf .local .pytest_cache
