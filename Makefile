# The two commands of the README: `make demo` and `make test`. Each sets up .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared
DEMO   ?= demo
# Camparada (ISTAT 108014), Province of Monza e della Brianza: 1.9 km², about 14 Mpx at 0.5 m.
DEMO_MUNICIPALITIES ?= 108014
DEMO_GSD ?= 0.5

export WASTEWATCH_STATE_DIR ?= $(CURDIR)/.wastewatch
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck setup clean qgis

setup: $(STAMP)

# torch==2.13.0 first (the CPU wheel on this machine; a bare `torch` would pull CUDA builds),
# then the project with a torch range 2.13.0 satisfies.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import torch, ray, rasterio, geopandas, prefect, shapely, safetensors"
	@touch $(STAMP)

demo: $(STAMP)
	@test -f $(SHARED)/data/municipalities/monza_brianza.geojson || \
	  { echo "demo needs $(SHARED)/data/municipalities/monza_brianza.geojson"; exit 2; }
	$(BIN)/wastewatch synth scene --out $(DEMO)/train --size 3072 --gsd $(DEMO_GSD) --seed 1 --landfills 120
	$(BIN)/wastewatch synth scene --out $(DEMO)/survey --gsd $(DEMO_GSD) --seed 2 --landfills 25 \
	  --aoi $(SHARED)/data/municipalities/monza_brianza.geojson $(addprefix --select ,$(DEMO_MUNICIPALITIES))
	$(BIN)/wastewatch train --arch patch --scenes $(DEMO)/train/scene.tif --labels $(DEMO)/train/truth.geojson \
	  --out $(DEMO)/model --patch-size 48 --samples 5000 --epochs 6 --seed 0
	$(BIN)/wastewatch run --aoi $(SHARED)/data/municipalities/monza_brianza.geojson \
	  $(addprefix --select ,$(DEMO_MUNICIPALITIES)) --scenes $(DEMO)/survey/scene.tif \
	  --model $(DEMO)/model --out $(DEMO)/out --overwrite --date 2026-06-15
	@echo "--- wastewatch eval: detections against the planted sites"
	$(BIN)/wastewatch eval --pred $(DEMO)/out/detections.geojson --truth $(DEMO)/survey/truth.geojson

# The GIS check of the tests opens the outputs in headless QGIS through the system Python
# (Debian's python3-qgis); install it, with gdal-bin, when it is missing (CI runs as root).
QGIS_PYTHON ?= /usr/bin/python3

qgis:
	@$(QGIS_PYTHON) -c "import qgis.core" 2>/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    python3-qgis gdal-bin >/dev/null; }

test: $(STAMP) qgis
	$(BIN)/lint-imports --no-cache
	RAY_AUTH_MODE=disabled $(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check pipeline models flows tests bench
	$(BIN)/ruff format --check pipeline models flows tests bench
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(DEMO) .wastewatch .pytest_cache
