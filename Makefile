# The two commands of the README: `make demo` and `make test`. Each sets up .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SHARED ?= ../shared
DEMO   ?= demo
MUNICIPALITIES ?= $(SHARED)/data/municipalities/monza_brianza.geojson
# Camparada, Lesmo and Arcore (ISTAT 108014, 108026, 108004), Province of Monza e della Brianza:
# 16.8 km² side by side, surveyed at 1 m.
DEMO_MUNICIPALITIES ?= 108014 108026 108004
DEMO_GSD ?= 1.0

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
	@test -f $(MUNICIPALITIES) || { echo "demo needs $(MUNICIPALITIES)"; exit 2; }
	rm -rf $(DEMO)
	$(BIN)/wastewatch synth scene --out $(DEMO)/train --size 2048 --gsd $(DEMO_GSD) --seed 1 --landfills 150
	$(BIN)/wastewatch synth scene --out $(DEMO)/imagery-2026 --gsd $(DEMO_GSD) --seed 2 --landfills 40 \
	  --date 2026-06-15 --aoi $(MUNICIPALITIES) $(addprefix --select ,$(DEMO_MUNICIPALITIES))
	$(BIN)/wastewatch synth revisit --like $(DEMO)/imagery-2026 --out $(DEMO)/imagery-2027 --seed 3
	$(BIN)/wastewatch train --arch patch --scenes $(DEMO)/train/scene.tif \
	  --labels $(DEMO)/train/truth.geojson --out $(DEMO)/model --seed 0
	mkdir -p $(DEMO)/imagery
	ln -sf ../imagery-2026/scene.tif $(DEMO)/imagery/2026-06-15.tif
	$(BIN)/wastewatch survey --municipalities $(MUNICIPALITIES) $(addprefix --select ,$(DEMO_MUNICIPALITIES)) \
	  --scenes $(DEMO)/imagery --model $(DEMO)/model --date 2026-06-15 --out $(DEMO)/monza-brianza
	@echo "--- a year later, new imagery arrives in the same folder"
	ln -sf ../imagery-2027/scene.tif $(DEMO)/imagery/2027-06-15.tif
	$(BIN)/wastewatch survey --municipalities $(MUNICIPALITIES) $(addprefix --select ,$(DEMO_MUNICIPALITIES)) \
	  --scenes $(DEMO)/imagery --model $(DEMO)/model --date 2027-06-15 --out $(DEMO)/monza-brianza --max-age 300
	@echo "--- wastewatch eval --survey: sites and their statuses against the revisit's truth"
	$(BIN)/wastewatch eval --survey $(DEMO)/monza-brianza/2027-06-15 --truth $(DEMO)/imagery-2027/truth.geojson
	@echo "--- the inspection list: $(DEMO)/monza-brianza/2027-06-15/report.html"

# The GIS check of the tests opens the outputs in headless QGIS through the system Python
# (Debian's python3-qgis); install it, with gdal-bin, when it is missing (CI runs as root).
QGIS_PYTHON ?= /usr/bin/python3

# What analysts and inspectors open, for the tests: headless QGIS (Debian's python3-qgis, run
# with the system python) and headless Chromium (the HTML reports).
qgis:
	@{ $(QGIS_PYTHON) -c "import qgis.core" 2>/dev/null && command -v chromium >/dev/null; } || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    python3-qgis gdal-bin chromium >/dev/null; }

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
