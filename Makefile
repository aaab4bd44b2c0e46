# SiliconHealth: `make run` starts a node, `make test` checks it. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt | sha256sum | cut -c1-12)

.PHONY: setup run test test-fast bench lint messages clean

setup: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "SiliconHealth needs Python 3.11 (found %s)" % sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(BIN)/python -m siliconhealth.devrun

test: setup
	scripts/test.sh

test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 -m "not e2e"

bench: setup
	$(BIN)/python -m tests.bench.run

lint: setup
	$(BIN)/ruff check .

messages: setup
	$(BIN)/python manage.py makemessages -l fr -l sw --ignore=.venv --ignore=var
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
