# SiliconHealth: `make run` starts a node, `make test` checks it. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Development setup: the application's pins (requirements.txt, what a node installs) plus the tools.
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)

.PHONY: setup run test test-fast bench lint messages clean deploy-check network powerloss reliability

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "SiliconHealth needs Python 3.11 (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(BIN)/python -m siliconhealth.devrun

test: setup
	scripts/test.sh

test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n 2 -m "not e2e and not powerloss and not reliability_slow"

bench: setup
	$(BIN)/python -m tests.bench.run

# Four nodes, one per tier, on loopback ports, syncing every few seconds; Ctrl-C stops them all.
network: setup
	$(BIN)/python scripts/network.py

# Slow (minutes), root: install the rural-clinic profile into a clean Debian 12 chroot and check it.
deploy-check:
	scripts/deploy_check.sh

# A rural node SIGKILLed at random POWERLOSS_KILLS times (over a minute, so not in `make test`; CI runs it).
POWERLOSS_KILLS ?= 22
powerloss: setup
	POWERLOSS_KILLS=$(POWERLOSS_KILLS) $(BIN)/pytest -q -s -n 0 -p no:cacheprovider tests/deploy/test_power_loss.py

# Load (hospital: PostgreSQL + Redis, 100,000 patients; rural at a tenth), faults, hostile input: under
# 30 minutes once the seeded node exists. Report: var/reliability/report.json and report.md.
reliability: setup
	@command -v faketime >/dev/null || { echo "installing Debian faketime (the clock fault)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime >/dev/null; }
	$(BIN)/python scripts/reliability.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

messages: setup
	$(BIN)/python manage.py makemessages -l fr -l sw --ignore=.venv --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
