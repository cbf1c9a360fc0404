# Cairn — the commands a newcomer needs. `make dev` runs Cairn; `make test` passes the tests.
SHELL := /bin/bash
SWIFT ?= swift
# Fail the build when a target imports a module it does not declare: the manifest is the
# architecture, and this keeps it honest.
SWIFT_BUILD_FLAGS ?= --explicit-target-dependency-import-check error
DEBIAN_PACKAGES := redis-server redis-tools libhiredis-dev pkg-config postgresql python3-venv wrk chromium chromium-driver fonts-liberation
SERVERS := deploy/local/servers.sh
DATA_DIR ?= .data/dev
# The end-to-end tests drive an app on the official Inngest Python SDK, installed here.
VENV := .venv
PYTHON_APP_REQUIREMENTS := Tests/EndToEndTests/PythonApp/requirements.txt

.PHONY: help deps venv build dev test bench bench-smoke chaos chaos-smoke fuzz fuzz-smoke fuzz-native proto clean

help:
	@echo "make dev     build and run every Cairn role in one process (API :8288, gateway :8289)"
	@echo "make test    install what is missing, start private Redis + Postgres, run every test"
	@echo "make build   build every executable"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make chaos   kill roles, flush Redis, restart Postgres under load; check nothing is lost"
	@echo "make fuzz    10,000 requests generated from the OpenAPI contract against a private cairn dev"
	@echo "make proto   regenerate the connect protocol's Swift code from proto/connect.proto"

# Installs the Debian packages Cairn needs, only those that are missing.
deps:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# A venv with the Python SDK app's requirements; rebuilt when the requirements change.
venv: $(VENV)/.installed
$(VENV)/.installed: $(PYTHON_APP_REQUIREMENTS) | deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PYTHON_APP_REQUIREMENTS)
	touch $@

build: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

dev: build
	@BIN=$$($(SWIFT) build --show-bin-path); exec "$$BIN/cairn" dev --data-dir $(DATA_DIR)

# Tests run against real servers: a private redis-server and Postgres cluster on free loopback
# ports, started before `swift test` and stopped after it, pass or fail. Then the deploy checks,
# the benchmarks and the chaos harness, each in its short form.
test: deps venv
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	CAIRN_PG_FSYNC=off $(SERVERS) run -- bash -c '\
	  export CAIRN_TEST_POSTGRES_URL="$$CAIRN_POSTGRES_URL" CAIRN_TEST_REDIS_URL="$$CAIRN_REDIS_URL"; \
	  export CAIRN_TEST_PYTHON="$(CURDIR)/$(VENV)/bin/python"; \
	  export CAIRN_TEST_BIN_DIR="$$($(SWIFT) build --show-bin-path)"; \
	  $(SWIFT) test --skip-build $(SWIFT_TEST_FLAGS)'
	deploy/check.sh
	BENCH_SMOKE=1 bench/run.sh
	CHAOS_SMOKE=1 CHAOS_BIN_DIR="$$($(SWIFT) build --show-bin-path)" bench/chaos/run.sh
	FUZZ_SMOKE=1 BIN_DIR="$$($(SWIFT) build --show-bin-path)" bench/fuzz/with-cairn.sh

bench: deps
	bench/run.sh

bench-smoke: deps
	BENCH_SMOKE=1 bench/run.sh

# Chaos: kill -9 roles, FLUSHALL Redis and restart Postgres under a workload on the Python SDK
# app, then check nothing was lost (bench/chaos). `make chaos CHAOS_FAULTS=0` runs the control.
chaos: deps venv
	bench/chaos/run.sh

chaos-smoke: deps venv
	CHAOS_SMOKE=1 bench/chaos/run.sh

# Fuzz: schemathesis sends requests generated from Shared/CairnHTTP/Resources/openapi.json
# to a private cairn dev; any 5xx, answer off the contract, or 4xx body that does not name
# the field and the rule fails it (bench/fuzz). FUZZ_REQUESTS sets the budget.
fuzz: build
	bench/fuzz/with-cairn.sh

fuzz-smoke: build
	FUZZ_SMOKE=1 bench/fuzz/with-cairn.sh

# Coverage-guided fuzzing (libFuzzer) of the JSON parser, the expression parser and the RESP
# reader, 1,000,000 inputs each (FUZZ_RUNS); then every committed crash input replayed.
fuzz-native: deps
	bench/fuzz/native/run.sh
	bench/fuzz/native/run.sh --replay

# Regenerates Shared/CairnConnect/Generated from proto/connect.proto with protoc and
# swift-protobuf's plugin, built here from the resolved package (it takes minutes, so the
# generated code is committed and CI never runs this).
PROTOC_GEN_SWIFT_SCRATCH ?= .build/protoc-gen-swift
proto:
	@$(MAKE) --no-print-directory deps DEBIAN_PACKAGES=protobuf-compiler
	$(SWIFT) package resolve
	$(SWIFT) build --package-path .build/checkouts/swift-protobuf --scratch-path $(PROTOC_GEN_SWIFT_SCRATCH) --product protoc-gen-swift
	protoc --plugin=protoc-gen-swift=$(PROTOC_GEN_SWIFT_SCRATCH)/debug/protoc-gen-swift \
	  --swift_opt=Visibility=Public --swift_opt=UseAccessLevelOnImports=true --swift_out=Shared/CairnConnect/Generated -I proto proto/connect.proto

clean:
	rm -rf .build .data $(VENV)
