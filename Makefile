# Regulars: the two commands are `make run` and `make test` (see README.md).
.DEFAULT_GOAL := help
.PHONY: help install run test worker beat bench messages translations clean

# The newest Python >= 3.11 that actually runs. pyenv shims exist for versions
# that are not selected and fail when called, so each candidate is tried.
# Override with `make run PYTHON=/path/to/python3`.
PY_CANDIDATES := python3.14 python3.13 python3.12 python3.11 \
	$(wildcard $(HOME)/.pyenv/versions/3.1[1-4]*/bin/python3) python3
ifndef PYTHON
PYTHON := $(shell for p in $(PY_CANDIDATES); do \
	  $$p -c 'import sys; assert sys.version_info >= (3, 11); \
	    print("%d.%02d.%02d %s" % (*sys.version_info[:3], sys.executable))' \
	    2>/dev/null; \
	done | sort | tail -n 1 | cut -d' ' -f2)
endif

VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
STAMP := $(VENV)/.installed

help:
	@echo "make run           install, migrate, load the demo shop, serve http://127.0.0.1:8000"
	@echo "make test          ruff, makemigrations --check and the whole pytest suite"
	@echo "make worker|beat   a Celery worker / the Celery beat scheduler"
	@echo "make bench         the benchmarks in bench/ (ratios against a baseline;"
	@echo "                   BENCH_ARGS=\"--full --keep-data\" for the issue's sizes)"
	@echo "make messages      extract strings to locale/ (needs GNU gettext)"
	@echo "make translations  compile locale/*.po to .mo (pure Python)"
	@echo "make clean         remove the virtualenv, caches and collected static files"

$(BIN)/python:
	@test -n "$(PYTHON)" || { \
	  echo "Regulars needs Python 3.11 or newer; none found. Install one, or run"; \
	  echo "  make run PYTHON=/path/to/python3.11"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

# Re-install only when the dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(MANAGE) migrate --no-input
	$(MANAGE) compile_translations
	$(MANAGE) load_demo
	$(MANAGE) runserver 127.0.0.1:8000

# --create-db: a changed migration never reuses a stale test database.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MANAGE) makemigrations --check --dry-run
	@if [ -n "$$DATABASE_URL" ]; then \
	  echo "Tests on $${DATABASE_URL%%://*} (DATABASE_URL)"; \
	else \
	  echo "Tests on SQLite: tests marked postgres are skipped (set DATABASE_URL)"; \
	fi
	$(BIN)/pytest --create-db

worker: $(STAMP)
	$(BIN)/celery -A config worker -l info

beat: $(STAMP)
	$(BIN)/celery -A config beat -l info

bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# For maintainers: needs GNU gettext (xgettext). Translate locale/zh_Hans, then
# `make translations` and commit both the .po and the .mo.
messages: $(STAMP)
	$(MANAGE) makemessages -l zh_Hans --no-obsolete \
	  --ignore=.venv --ignore=staticfiles --ignore=bench --ignore=tests

translations: $(STAMP)
	$(MANAGE) compile_translations

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis staticfiles bench/out
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
