# Two commands do all set-up on a fresh machine with Python 3.11+: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint messages bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Chung Sức needs Python 3.11 or newer (found: $$($(PYTHON) --version))."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## run: migrate, load sample data if the database is empty, then chat in the terminal —
##      or, with CHUNGSUC_TELEGRAM_TOKEN set, run the Telegram bot.
run: $(STAMP)
	@CHUNGSUC_LOG_LEVEL=$${CHUNGSUC_LOG_LEVEL:-WARNING} $(BIN)/chungsuc db upgrade
	@CHUNGSUC_LOG_LEVEL=$${CHUNGSUC_LOG_LEVEL:-WARNING} $(BIN)/chungsuc seed --sample --if-empty
	@if [ -n "$$CHUNGSUC_TELEGRAM_TOKEN" ]; then $(BIN)/chungsuc run telegram; \
	else $(BIN)/chungsuc chat; fi

## test: lint, type-check and the whole suite, on as many processes as the machine has cores
##       (pytest-xdist; TEST_WORKERS=0 runs it in this process).
TEST_WORKERS ?= auto
test: lint $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## messages: re-extract translatable text and update the catalogs (then translate en).
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
		-o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --width 100 \
		--no-fuzzy-matching \
		--ignore-obsolete

bench: $(STAMP)
	$(BIN)/python bench/updates.py
	$(BIN)/python bench/contributions.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache dist
