# The README's two commands: `make run` and `make test`. Everything else is set up on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JSSDK := static/vendor/b24jssdk.min.js
PEERS_VENV := .peers-venv
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: run test unit lint setup bench clean peers

run: export B24_ENV ?= development
run: setup
	$(BIN)/gunicorn -c gunicorn.conf.py app:app

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The fast tier alone: no Redis, no network.
unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

# Style, the direction of imports (docs/DESIGN.md §2) and types (strict outside the sandbox).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

setup: $(STAMP) $(JSSDK)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

# The official @bitrix24/b24jssdk, pinned in static/package-lock.json, served from our own origin.
$(JSSDK): static/package.json static/package-lock.json
	npm ci --prefix static --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp static/node_modules/@bitrix24/b24jssdk/dist/umd/index.min.js $@

clean:
	rm -rf $(VENV) $(PEERS_VENV) static/node_modules static/vendor

# Benchmarks (docs/PERFORMANCE.md): the app under gunicorn against the sandbox on 127.0.0.1.
# The benchmark owns BENCH_REDIS_URL's database (flushed before and after). Results: bench/results/<time>/.
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/14
bench: setup $(PEERS_STAMP)
	@command -v wrk >/dev/null || echo "wrk not found (apt-get install wrk): reads use the Python load generator"
	$(BIN)/python bench/run_all.py --redis-url $(BENCH_REDIS_URL) $(BENCH_ARGS)

# Real clients (docs/SANDBOX.md): fast_bitrix24 and the official b24pysdk, pinned in tests/peers/requirements.txt,
# in their own venv, drive a fresh sandbox. One PASS/FAIL line per check; fails if any check fails.
peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m tests.peers.run --python $(PEERS_VENV)/bin/python $(PEERS_ARGS)

$(PEERS_STAMP): tests/peers/requirements.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet -r tests/peers/requirements.txt
	touch $@
