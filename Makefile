# The commands of the README: `make run` (embedded stack + demo), `make add-model`, `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-12)
export PYTHONPATH := $(CURDIR)
export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := False

# Airflow metadata DB of the embedded stack: sqlite (zero setup) or postgres (127.0.0.1:5432).
DB     ?= sqlite
# local: embedded stack (airflow standalone, moto); celery: the production topology (PostgreSQL,
# Redis, SeaweedFS, separate Airflow processes, WORKERS Celery workers; state persists).
EXECUTOR ?= local
WORKERS  ?= 2
STACK_ARGS = $(if $(filter celery,$(EXECUTOR)),--executor celery --workers $(WORKERS),--db $(DB))

.PHONY: install run up stop purge status add-model replay replay-real test lint browser test-unit bench lock compose-check clean

install: $(STAMP)

# Installs exactly the committed lock: the same versions on every machine. pip prints one
# line per package (no --quiet: a 3-minute install must not look like a hung terminal).
$(STAMP): requirements.lock
	@echo "[$$(date +%H:%M:%S)] install  creating $(VENV) and installing requirements.lock ($$(grep -c '==' requirements.lock) packages; ~3 min cold, ~1 min from a warm pip cache)"
	@start=$$(date +%s); \
	  { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	  $(BIN)/python -m pip install --quiet --progress-bar off --upgrade pip && \
	  { $(BIN)/python -m pip install --progress-bar off -r requirements.lock 2>&1; echo $$? > $(VENV)/.pip-rc; } \
	    | grep -E --line-buffered '^(Collecting|Installing|Successfully|ERROR|error)' ; \
	  test "$$(cat $(VENV)/.pip-rc)" = 0 && rm -f $(VENV)/.pip-rc && \
	  $(BIN)/python -m pip check && \
	  echo "[$$(date +%H:%M:%S)] install  done in $$(( $$(date +%s) - start ))s"
	@test -x $(BIN)/airflow || { echo "install failed: $(BIN)/airflow missing"; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

run: install          ## fresh embedded stack (moto S3, MLflow, Airflow) + demo runs; DB=postgres, EXECUTOR=celery WORKERS=N optional
	$(BIN)/python scripts/stack.py up $(STACK_ARGS)

up: install           ## the stack without the demo
	$(BIN)/python scripts/stack.py up --no-demo $(STACK_ARGS)

# Bring your own data: make add-model NAME=mymodel DATA=path.csv|parquet [TIMESTAMP=col TARGET=col]
add-model: install
	@test -n "$(NAME)" -a -n "$(DATA)" || { echo "usage: make add-model NAME=mymodel DATA=path/to/file.csv|.parquet [TIMESTAMP=col] [TARGET=col] [NO_STALENESS=1] [NO_WINDOW=1]"; exit 2; }
	$(BIN)/python scripts/add_model.py --name "$(NAME)" --data "$(DATA)" $(if $(TIMESTAMP),--timestamp "$(TIMESTAMP)") $(if $(TARGET),--target "$(TARGET)") $(if $(NO_STALENESS),--no-staleness) $(if $(NO_WINDOW),--no-window)

# Would the policy have done well on my data? make replay DATA=path.csv|parquet [SPEC=model.yaml] [TIMESTAMP=col TARGET=col]
replay: install
	@test -n "$(DATA)" || { echo "usage: make replay DATA=path/to/file.csv|.parquet [SPEC=include/models/<name>.yaml] [TIMESTAMP=col] [TARGET=col] [OUT=report.md] [NO_STALENESS=1] [NO_WINDOW=1]"; exit 2; }
	$(BIN)/python scripts/replay_policy.py --data "$(DATA)" $(if $(SPEC),--spec "$(SPEC)") $(if $(TIMESTAMP),--timestamp "$(TIMESTAMP)") $(if $(TARGET),--target "$(TARGET)") $(if $(OUT),--out "$(OUT)") $(if $(NO_STALENESS),--no-staleness) $(if $(NO_WINDOW),--no-window)

replay-real: install  ## replay the policy on five real public files (NYC flights 2013: delayed, and on time / late / cancelled; Seattle weather; Washington DC bikeshare hours; Minneapolis police stops) into docs/real-data/
	@mkdir -p docs/real-data .cache/real-data
	$(BIN)/python scripts/real_data.py --out .cache/real-data > .cache/real-data/files.txt
	@while read -r name path label; do \
		echo "== $$name"; \
		OMP_NUM_THREADS=1 $(BIN)/python scripts/replay_policy.py --data "$$path" --target "$$label" --out "docs/real-data/$$name.md" < /dev/null > /dev/null || exit 1; \
	done < .cache/real-data/files.txt

stop:                 ## stop every process the stack started
	@test -x $(BIN)/python && $(BIN)/python scripts/stack.py down || echo "nothing to stop (no virtualenv)"

purge:                ## stop, then delete the Celery stack's databases, Redis keys and SeaweedFS data
	@$(BIN)/python scripts/stack.py purge

status:
	@$(BIN)/python scripts/stack.py status

test: install browser lint ## lint, then the whole suite: unit, plugins, dags, infra, e2e (incl. the browser test)
	$(BIN)/python scripts/run_tests.py $(if $(filter 1 yes true,$(SERIAL)),--serial)

# The browser test drives Debian's Chromium (Playwright's own download is not reachable here).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 && { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } ; } \
	  || echo "chromium could not be installed: the browser test will skip and say why"

# Lint and type-check (config in pyproject.toml): ruff on all Python, mypy on include/ and plugins/.
lint: install
	$(BIN)/ruff check include plugins dags scripts benchmarks tests
	$(BIN)/ruff format --check include plugins dags scripts benchmarks tests
	$(BIN)/mypy

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
