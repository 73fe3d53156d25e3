# Two entry points for a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo serve-demo test bench clean

# torch is pinned to the build this project is developed and tested with; pip takes it from a
# local wheel cache when there is one, else downloads it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[test,detectors,serve]'
	# MTCNN's package pins an old torch: installed without its dependencies (it needs none here).
	$(BIN)/pip install -q --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

# Faces of about 18 to 48 px in a 640x480 frame: found, read, drawn; then the same scene as a video.
demo: $(STAMP)
	$(BIN)/lrfer predict examples/far_scene.png --annotate runs/demo
	$(BIN)/lrfer video examples/far_scene.mp4 --out runs/demo/far_scene.mp4 --csv runs/demo/far_scene.csv
	@echo
	@echo "Next, the monitoring service and its dashboard:  make serve-demo   (or: $(BIN)/lrfer serve --demo)"

# The monitoring service on the bundled camera video: prints the admin password and the URL to open.
serve-demo: $(STAMP)
	$(BIN)/lrfer serve --demo

# The layers (import-linter), the lint rules (ruff), then the tests; all from pyproject.toml.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests bench tools
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) runs
