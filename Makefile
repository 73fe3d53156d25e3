# Two entry points for a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo serve-demo test test-runtime bench fuzz clean

# torch is pinned to the build this project is developed and tested with; pip takes it from a
# local wheel cache when there is one, else downloads it.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[train,test,detectors,serve,batch]'
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

# The layers (import-linter), the lint rules (ruff), the tests; then the runtime's tests again in
# an environment with `pip install .` alone, where PyTorch cannot be imported.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests bench tools fuzz
	$(BIN)/python -m pytest
	$(MAKE) test-runtime

# The runtime as a small box installs it, with the service: no torch (tests/runtime checks that).
RUNTIME_VENV ?= .venv-runtime
test-runtime:
	rm -rf $(RUNTIME_VENV)
	$(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/pip install -q ".[serve]" pytest
	LRFER_RUNTIME_ONLY=1 $(RUNTIME_VENV)/bin/python -m pytest tests/runtime --confcutdir=tests/runtime -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python bench/train_throughput.py

# Coverage-guided fuzzing (atheris) of the parsers that read untrusted bytes: csv, npz, images,
# checkpoints, recipes, annotation files; each target FUZZ_SECONDS, one after another. Inputs that
# break the contract land in tests/hostile/fuzz_crashes/<target>/ (replayed by
# tests/hostile/test_fuzz_regressions.py); the numbers in bench/results/fuzz.json (docs/hostile.md).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= all
fuzz: $(STAMP)
	PYTHONPATH=src $(BIN)/python -m fuzz.run --seconds $(FUZZ_SECONDS) --targets $(FUZZ_TARGETS)

clean:
	rm -rf $(VENV) $(RUNTIME_VENV) runs
