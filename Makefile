# Intro to PyTorch — common tasks. Each target installs what it needs first.
#
#   make lab        JupyterLab on notebooks/ (what learners open)
#   make test       lint, then the whole test suite (helper tests, grading, nbval on solutions/)
#   make lint       ruff: lint and import order (configured in pyproject.toml)
#   make install    virtual environment in $(VENV): `helper` and pyproject.toml's [course,test] extras
#   make release    regenerate notebooks/ from solutions/ (PART=03-training for one part)
#   make data       download every data set the course uses (run once while online)
#   make assets     redraw the diagrams in assets/ and re-embed them in the solutions
#   make outputs    re-execute solutions (PART=...) and store their outputs
#   make collect    downloaded submissions -> submitted/ (PART=... FROM=folder of files/zips)
#   make autograde  grade submitted/ in a sandbox (PART=... for one part, JOBS=N local workers,
#                   CLUSTER=tcp://HOST:8786 a running Dask scheduler; FORCE=1 regrades everything)
#   make feedback   HTML feedback per student in feedback/ (PART=... for one part)
#   make grades     export every score to grades.csv

VENV ?= .venv
PY := $(VENV)/bin/python
# Tools the venv provides (nbgrader runs `alembic`) come first on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)
# Kernels started from this checkout import ITS helper package, whichever checkout the
# (possibly shared, cached) venv was last installed from.
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
PART ?=
JOBS ?= 1
CLUSTER ?=
FORCE ?=
FROM ?= downloaded-submissions
STAMP := $(VENV)/.course-installed
NBVAL := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: lab test lint install release data assets outputs clean collect autograde feedback grades

install: $(STAMP)

# pyproject.toml is the one list of dependencies.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[course,test]'
	touch $(STAMP)

# Opens the first notebook; the file browser shows notebooks/ (learners' copies only).
LAB_ARGS ?=
lab: install
	cd notebooks && $(abspath $(VENV))/bin/jupyter lab --LabApp.default_url=/lab/tree/01-tensors/01-tensors.ipynb $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lint: install
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest $(NBVAL) tests solutions -v --durations=15

release: install
	$(PY) -m instructor release $(PART)

data: install
	$(PY) -m helper.data download

assets: install
	$(PY) assets/draw.py
	$(PY) -m instructor stamp

outputs: install
	$(PY) -m instructor execute $(if $(PART),solutions/$(PART)/$(PART).ipynb,solutions/*/*.ipynb)

collect: install
	$(PY) -m instructor collect $(FROM) --part $(PART)

autograde: install
	$(PY) -m instructor autograde $(if $(PART),--part $(PART)) --jobs $(JOBS) $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(FORCE),--force)

feedback: install
	$(PY) -m instructor feedback $(if $(PART),--part $(PART))

grades: install
	$(PY) -m instructor grades --out grades.csv

clean:
	rm -rf gradebook.db submitted autograded feedback grades.csv downloaded .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
