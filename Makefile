# vsynth: `make demo` and `make test` each do all the set-up they need on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.vsynth-installed
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: install demo test test-slow bench docs clean-outputs

# Versions pinned in requirements.lock are known to work together (torch 2.15 + torchvision
# 0.29.2 from PyPI, pixeltable-yolox, onedl-mmsegmentation + mmcv-lite + mmengine); vsynth itself
# is installed editable on top without touching them.
$(STAMP): pyproject.toml setup.py requirements.lock requirements-test.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.lock -r requirements-test.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m vsynth task=keypoints arm=A

# Test files are spread over TEST_WORKERS processes (pytest-xdist; one file stays in one process, so
# its fixtures and the SLURM tests keep their order): 2 fit the 2-core machines the suite is sized for.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) benchmarks/mixer_speed.py
	$(PY) benchmarks/demo_world_speed.py
	$(PY) benchmarks/eval_speed.py
	$(PY) benchmarks/file_to_number.py
	$(PY) benchmarks/detection_speed.py
	$(PY) benchmarks/segmentation_speed.py

# The docs site (mkdocs.yml, docs/): built offline, every link and page checked (--strict), into site/
# (git-ignored). Serve it while editing: .venv/bin/mkdocs serve
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

clean-outputs:
	rm -rf outputs
