# The whole set-up is two commands: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= var
DEBIAN_TEST_PACKAGES := sip-tester baresip chromium ffmpeg espeak-ng sox
# What `make run` needs: espeak-ng speaks the IVR's text: prompts; ffmpeg compresses the
# recordings after the call (through pydub).
DEBIAN_RUN_PACKAGES := espeak-ng ffmpeg
FUZZ_RUNS ?= 1000000

.PHONY: run test check lint types contracts pytest fuzz bench migrate install install-test debian-test-packages debian-run-packages clean

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

migrate: install
	mkdir -p $(DATA_DIR)
	CALLCENTER_DATA_DIR=$(DATA_DIR) $(BIN)/callcenter migrate

# The demo trusts callers on this machine as a trunk (they can reach extensions and phones,
# never an outside line); set CALLCENTER_TRUNKS yourself for anything else.
DEMO_TRUNKS ?= [{"name": "this-machine", "peers": ["127.0.0.1/32", "::1/128"]}]

# The demo: agents, a supervisor and customers (`callcenter demo seed`, idempotent; their SIP
# passwords are in README.md, so `make run DEMO=0` leaves them out), the queues of
# ivr/queues.yaml, and the IVR's text: prompts rendered by espeak-ng now rather than when the
# first caller needs them (without espeak-ng serve still starts, but IVR calls fail).
DEMO ?= 1

run: debian-run-packages migrate
	$(if $(filter 1,$(DEMO)),CALLCENTER_DATA_DIR=$(DATA_DIR) $(BIN)/callcenter demo seed)
	CALLCENTER_DATA_DIR=$(DATA_DIR) $(BIN)/callcenter ivr render \
	  || echo "warning: IVR prompts not rendered (see above); serve will try again"
	CALLCENTER_DATA_DIR=$(DATA_DIR) CALLCENTER_TRUNKS='$(or $(CALLCENTER_TRUNKS),$(DEMO_TRUNKS))' \
	  CALLCENTER_ACD_LOGIN_ON_REGISTER=$(or $(CALLCENTER_ACD_LOGIN_ON_REGISTER),$(DEMO)) $(BIN)/callcenter serve

# Debian packages the tests use as real peers (and that `make run` uses); installed only when
# missing, only as root.
debian-test-packages: DEBIAN_PACKAGES = $(DEBIAN_TEST_PACKAGES)
debian-run-packages: DEBIAN_PACKAGES = $(DEBIAN_RUN_PACKAGES)
debian-test-packages debian-run-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "warning: missing Debian packages (run as root to install):$$missing"; \
	  fi; \
	fi

lint: install-test
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

types: install-test
	$(BIN)/mypy

contracts: install-test
	$(BIN)/lint-imports

pytest: install-test
	$(BIN)/pytest -q -p no:cacheprovider

check: lint types contracts pytest

test: debian-test-packages install-test
	$(MAKE) check

fuzz: install-test
	$(BIN)/pip install -q -e '.[fuzz]'
	rm -rf tests/fuzz/corpus
	$(BIN)/python -m tests.fuzz.seed tests/fuzz/corpus
	$(BIN)/python -m tests.fuzz.fuzz_sip -runs=$(FUZZ_RUNS) -timeout=5 -rss_limit_mb=2048 \
	  -artifact_prefix=tests/fuzz/crashers/ tests/fuzz/corpus

bench: install-test
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python -m bench.$$(basename $$b .py) || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
