# The README's commands. `make demo` and `make test` each set up everything they
# need from nothing, and are safe (and quick) to re-run.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
HOST ?= 127.0.0.1
PORT ?= 8000
SCALE ?= 1
export DJANGO_SETTINGS_MODULE := config.settings

.PHONY: bench help setup system venv messages messages-update migrate static demo test lint format

help:
	@echo "make demo   set everything up, load the demo data, serve on http://$(HOST):$(PORT)"
	@echo "make test   set everything up, then migrations check, ruff and the whole test suite"

system:
	scripts/setup-system.sh

# Reinstall only when pyproject.toml changed since the last install.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

messages: venv
	$(MANAGE) compilemessages --ignore '.venv' --verbosity 0

migrate: system venv
	$(MANAGE) migrate --no-input

static: venv
	$(MANAGE) collectstatic --no-input --verbosity 0

setup: system venv messages migrate static

# The job worker (imports, orthophotos, upkeep) runs beside the web server and
# stops with it; scripts/supervise.sh starts it again when it exits (it stops
# itself when the database restarts). granian (a Rust HTTP server) keeps
# browsers' connections alive and hands requests to 4 Python threads per worker,
# so cached tiles are answered while a thread waits on the database; it costs a
# tile half of what gunicorn's gthread workers did (README, "Tile performance").
demo: setup
	$(MANAGE) load_demo --scale $(SCALE)
	@echo "Serving on http://$(HOST):$(PORT)/ (admin: /admin/). Ctrl-C stops."
	scripts/supervise.sh $(MANAGE) procrastinate worker --concurrency 2 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/granian --interface wsgi config.wsgi:application --host $(HOST) \
	  --port $(PORT) --workers 2 --blocking-threads 4 --access-log

test: setup
	$(MANAGE) makemigrations --check --dry-run
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

# Benchmarks (never in `make test`): figures go to var/bench/ and the README.
bench: setup
	$(PY) bench/import_bench.py
	$(PY) bench/export_bench.py
	$(PY) bench/ogcapi_bench.py
	command -v wrk >/dev/null || apt-get install -y -q wrk
	$(PY) bench/tiles_bench.py
	$(PY) bench/load_bench.py

# Re-extract translatable strings after changing them; then translate the new
# entries in locale/zh_Hans/LC_MESSAGES/django.po.
messages-update: venv
	$(MANAGE) makemessages -l zh_Hans --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --ignore 'bench/*' --no-obsolete

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The front-end libraries under registry/static/vendor/ are committed (see its
# README): pages never load from a CDN. `make vendor` fetches the pinned npm
# packages again into a temporary directory and copies the same files over; it is
# not part of `make demo` or `make test`.
VENDOR_DIR := registry/static/vendor
VENDOR_PACKAGES := ol@7.2.2 chart.js@4.6.1 leaflet@1.9.4 leaflet.vectorgrid@1.3.0 \
	leaflet-draw@1.0.4
.PHONY: vendor
vendor:
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; dest="$(CURDIR)/$(VENDOR_DIR)"; \
	(cd "$$tmp" && npm pack --silent $(VENDOR_PACKAGES) >/dev/null); \
	for tgz in "$$tmp"/*.tgz; do \
		mkdir "$${tgz%.tgz}"; tar -xzf "$$tgz" -C "$${tgz%.tgz}"; \
	done; \
	pkg() { echo "$$tmp/$$1/package"; }; \
	ol=$$(pkg ol-7.2.2); mkdir -p "$$dest/ol"; \
	cp "$$ol/dist/ol.js" "$$ol/ol.css" "$$ol/LICENSE.md" "$$dest/ol/"; \
	chart=$$(pkg chart.js-4.6.1); mkdir -p "$$dest/chartjs"; \
	cp "$$chart/dist/chart.umd.min.js" "$$chart/LICENSE.md" "$$dest/chartjs/"; \
	leaflet=$$(pkg leaflet-1.9.4); mkdir -p "$$dest/leaflet/images"; \
	cp "$$leaflet/dist/leaflet.js" "$$leaflet/dist/leaflet.css" "$$leaflet/LICENSE" \
		"$$dest/leaflet/"; \
	cp "$$leaflet"/dist/images/*.png "$$dest/leaflet/images/"; \
	grid=$$(pkg leaflet.vectorgrid-1.3.0); mkdir -p "$$dest/leaflet-vectorgrid"; \
	cp "$$grid/dist/Leaflet.VectorGrid.bundled.min.js" "$$grid/README.md" \
		"$$grid/package.json" "$$dest/leaflet-vectorgrid/"; \
	draw=$$(pkg leaflet-draw-1.0.4); mkdir -p "$$dest/leaflet-draw/images"; \
	cp "$$draw/dist/leaflet.draw.js" "$$draw/dist/leaflet.draw.css" \
		"$$draw/package.json" "$$dest/leaflet-draw/"; \
	cp "$$draw"/dist/images/spritesheet* "$$dest/leaflet-draw/images/"
