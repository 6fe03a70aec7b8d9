# Portside: `make run` serves on http://127.0.0.1:5000, `make test` runs everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages the test suite drives: real registry clients and the reference registry.
TEST_DEBS := skopeo podman buildah umoci uidmap fuse-overlayfs docker-registry docker.io postgresql wrk nginx-light chromium strace
PYTEST_ARGS ?=

.PHONY: install run test coverage lint typecheck unit integration system-deps clean cluster cluster-test bench bench-smoke bench-paths bench-disk bench-profile

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/portside serve --host 127.0.0.1 --port 5000 --data-dir ./data

# Installs the Debian packages the integration tests need, only when some are missing.
system-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# PostgreSQL, an S3-API server, three nodes and nginx on loopback, until Ctrl-C.
cluster: install system-deps
	$(BIN)/python -m deploy.localcluster --nodes 3 --dir ./cluster-data

# The protocol and real-client tests through the load balancer, and a node killed mid-run.
cluster-test: install system-deps
	$(BIN)/python -m pytest -q tests/cluster $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests deploy $(wildcard bench)
	$(BIN)/ruff format --check src tests deploy $(wildcard bench)

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests/unit -q

test: install system-deps lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	$(MAKE) --no-print-directory bench-smoke

# The whole suite under coverage, server subprocesses and their workers included. Kept out of
# `make test` because measuring costs about a third more time (the suite must stay under 20 min).
coverage: install system-deps
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -q $(PYTEST_ARGS)
	$(BIN)/coverage combine -q || true
	$(BIN)/coverage report --skip-empty --sort=cover | tail -n 25

# Benchmarks against CNCF Distribution 2.8 (docs/performance.md); the smoke run only checks they work.
bench: install system-deps
	$(BIN)/python -m bench.run --output docs/performance.md

bench-smoke: install system-deps
	$(BIN)/python -m bench.run --quick
	$(BIN)/python -m bench.paths pull --quick
	$(BIN)/python -m bench.paths push --quick
	$(BIN)/python -m bench.disk --quick

# One large blob pulled and pushed through bare servers (sendfile, copying, Granian) and both registries.
bench-paths: install system-deps
	$(BIN)/python -m bench.paths pull
	$(BIN)/python -m bench.paths push

# What the disk itself takes: the floor under both push scenarios, since a push is durable before it is answered.
bench-disk: install
	$(BIN)/python -m bench.disk

bench-profile: install system-deps
	$(BIN)/pip install --quiet py-spy
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .coverage*
