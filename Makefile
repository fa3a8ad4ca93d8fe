# Intro to PyTorch — common tasks. Each target installs what it needs first.
#
#   make lab        JupyterLab on notebooks/ (what learners open)
#   make formgrader the instructor's view: formgrader on every part, the gradebook, flags
#   make report     class report in report/index.html (plots and CSV) from the gradebook
#   make pictures   the README's pictures in docs/pictures/, taken by the browser tests (needs chromium)
#   make test       lint, then the whole test suite (helper tests, grading, nbval on solutions/),
#                   in TEST_WORKERS=2 processes
#   make test-fast  the edit-test loop: lint, every test that starts no notebook kernel and takes
#                   seconds, and one submission of Part 1 graded (the `smoke` test); what it leaves
#                   out is marked `kernel` or `slow`
#   make test-floor nbval on every solution with the oldest versions pyproject.toml allows
#                   (torch 2.6, torchvision 0.21, ...), in a venv of their own, $(FLOOR_VENV)
#   make lint       ruff: lint and import order (configured in pyproject.toml)
#   make requirements  requirements.txt: pip-compile's exact pins of pyproject.toml's dependencies
#                   and extras, at the versions installed in $(VENV) (what `make test` ran with)
#   make install    virtual environment in $(VENV): `helper` and pyproject.toml's [course,test] extras
#   make release    regenerate notebooks/ from solutions/ (PART=03-training for one part)
#   make data       download every data set the course uses (run once while online)
#   make doctor     what is wrong with this setup: one line per check (Python, packages, GPU, data,
#                   disk), each ok or a problem with its fix; then each part's time on this machine
#                   (ONLINE=1 also tries every download's host)
#   make assets     redraw the diagrams in assets/ and re-embed them in the solutions
#   make outputs    re-execute solutions (PART=...) and store their outputs
#   make collect    an LMS download -> submitted/ (PART=... FROM=folder of files/zips; MAP='student=file')
#   make autograde  grade submitted/ in a sandbox (PART=... for one part, JOBS=N local workers,
#                   CLUSTER=tcp://HOST:8786 a running Dask scheduler; FORCE=1 regrades everything)
#   make feedback   HTML feedback per student in feedback/, rendered by JOBS=N local workers or
#                   the CLUSTER's; resumes where it stopped (PART=... for one part, FORCE=1 all again)
#   make clear      release a submission held for review (STUDENT=... PART=...): make feedback renders it
#   make grades     export every score to grades.csv (PROVENANCE=1 adds what produced each row:
#                   submission and release digests, course, PyTorch, nbgrader and Python versions, limits)
#   make similarity similar answers per part in report/similarity/<part>/index.html (PART=... for one part;
#                   pairs to read, never a penalty: see docs/similarity.md)
#   make bench-similarity  how well and how fast similarity finds planted copies in a synthetic class
#                   (minutes; not part of make test)
#   make bench-learner  each solution's run time for a learner: full-size fake data, CPU only
#                   (slow: many minutes; not part of make test)
#   make times      docs/times.md, the README's course map times and docs/scaling.md's worked example,
#                   from docs/times.toml (BENCH=test-output/bench-learner.json takes in bench-learner's results,
#                   ROUND=test-output/bench-round.json bench-round's)
#   make bench-coordinator  results per hour one grading coordinator stores (real Dask, PostgreSQL)
#   make bench-round  a simulated round end to end: collect, autograde, feedback, exports, report
#                   (SUBMISSIONS=1000 real, RESULTS=10000 trivial, WORKERS=2; long: not part of make test)

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
TEST_WORKERS ?= 2
STAMP := $(VENV)/.course-installed
NBVAL := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg
FLOOR_VENV ?= .venv-floor
FLOOR_PY := $(FLOOR_VENV)/bin/python
FLOOR_STAMP := $(FLOOR_VENV)/.course-installed

.PHONY: lab formgrader report test test-fast test-floor floor-install lint install requirements release data doctor assets outputs clean collect autograde feedback clear grades similarity bench-similarity bench-learner bench-coordinator bench-round times pictures

install: $(STAMP)

# pyproject.toml is the one list of dependencies.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[course,test]'
	touch $(STAMP)

# Opens the first notebook; the file browser shows notebooks/ (learners' copies only).
# jupyter/: the course's Jupyter settings (no news popup; learners see no instructor panels).
LAB_ARGS ?=
JUPYTER_COMMON := $(CURDIR)/jupyter/common$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))
lab: install
	cd notebooks && JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter/learner:$(JUPYTER_COMMON) $(abspath $(VENV))/bin/jupyter lab --LabApp.default_url=/lab/tree/01-tensors/01-tensors.ipynb $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# JupyterLab at the course root (it reads nbgrader_config.py there), opening on formgrader;
# /lab on the same server is JupyterLab with the Nbgrader menu. Formgrader's Release/Collect
# buttons need the exchange folder to exist (nbgrader_config.py: exchange/ or $NBGRADER_EXCHANGE).
formgrader: install
	mkdir -p "$${NBGRADER_EXCHANGE:-exchange}"
	JUPYTER_CONFIG_PATH=$(JUPYTER_COMMON) $(abspath $(VENV))/bin/jupyter lab --LabApp.default_url=/formgrader $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

lint: install
	$(PY) -m ruff check .

# Two test processes side by side (TEST_WORKERS=0: one), each taking whole files.
test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(NBVAL) tests solutions -v --durations=15

# No nbval, no grading but the smoke test, no Jupyter server, no minutes-long training: tests
# marked `kernel` or `slow` (conftest.py, pyproject.toml) are left out.
test-fast: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -p no:nbval -m "not (kernel or slow) or smoke" tests -q --durations=10

# The floor: every direct dependency, the course extra's included, at the lowest version its range
# in pyproject.toml admits (uv's lowest-direct resolution: torch 2.6, torchvision 0.21, numpy 1.24,
# matplotlib 3.7, nbval 0.11, ...); what they need in turn comes at its newest.
floor-install: $(FLOOR_STAMP)

$(FLOOR_STAMP): pyproject.toml
	test -x $(FLOOR_PY) || python3 -m venv $(FLOOR_VENV)
	$(FLOOR_PY) -m pip install --quiet uv
	$(FLOOR_VENV)/bin/uv pip install --quiet --python $(FLOOR_PY) --resolution lowest-direct -e '.[course]'
	touch $(FLOOR_STAMP)

# nbval only, on the floor. Outputs that legitimately differ between versions (random draws, an
# exception's type, library messages) are compared with the newest PyTorch only, in `make test`:
# here (--nbval-lax) every cell must run, and every check in it hold.
# Then a feedback page rendered on the floor (nbgrader and latex2mathml at their lowest).
test-floor: floor-install
	$(FLOOR_PY) -m pytest --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg solutions -v --durations=8
	$(FLOOR_PY) -m pytest -p no:nbval -q tests/instructor/test_mathml.py \
		tests/instructor/test_feedback.py::test_render_shows_the_submission_the_scores_and_no_line_of_a_hidden_test

# requirements.txt is generated, never edited by hand: pip-compile resolves pyproject.toml (the
# dependencies and the course and test extras) and keeps the versions already pinned in its output
# file, which starts as the venv's `pip freeze` (taken before pip-tools goes in).
requirements: install
	$(PY) -m pip freeze --exclude-editable > requirements.txt
	$(PY) -m pip install --quiet pip-tools
	CUSTOM_COMPILE_COMMAND="make requirements" $(PY) -m piptools compile --quiet --extra course --extra test \
		--strip-extras --no-emit-index-url --no-emit-find-links --output-file requirements.txt pyproject.toml

release: install
	$(PY) -m instructor release $(PART)

data: install
	$(PY) -m helper.data download

# Exit status 1 when a check finds a problem; the calibration behind the times is kept a week.
ONLINE ?=
doctor: install
	$(PY) -m helper.doctor $(if $(ONLINE),--online)

assets: install
	$(PY) assets/draw.py
	$(PY) -m instructor stamp

outputs: install
	$(PY) -m instructor execute $(if $(PART),solutions/$(PART)/$(PART).ipynb,solutions/*/*.ipynb)

collect: install
	$(PY) -m instructor collect $(FROM) --part $(PART) $(if $(MAP),--map '$(MAP)')

autograde: install
	$(PY) -m instructor autograde $(if $(PART),--part $(PART)) --jobs $(JOBS) $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(FORCE),--force)

feedback: install
	$(PY) -m instructor feedback $(if $(PART),--part $(PART)) --jobs $(JOBS) $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(FORCE),--force)

# A submission held for review gets its feedback page once cleared: make clear STUDENT=erin PART=03-training
STUDENT ?=
clear: install
	$(PY) -m instructor clear "$(STUDENT)" "$(PART)"

grades: install
	$(PY) -m instructor grades --out grades.csv $(if $(PROVENANCE),--provenance)

# Full-size fake data (the real sets' sizes and class counts), every solution run on the CPU.
bench-learner: install
	$(PY) -m tests.bench_learner --json test-output/bench-learner.json $(if $(PART),--part $(PART))

# Measured times are written once, in docs/times.toml; this writes every page that shows them.
BENCH ?=
ROUND ?=
times: install
	$(PY) -m tests.times $(if $(BENCH),--from-bench $(BENCH)) $(if $(ROUND),--from-round $(ROUND))

# Results per hour one coordinator stores: trivial notebooks through real Dask processes into
# a throw-away PostgreSQL server, then their feedback pages (about a minute; not part of make test).
bench-coordinator: install
	$(PY) -m tests.bench_coordinator --results 2000 --feedback --json test-output/bench-coordinator.json

# A round through the real path on this machine: SUBMISSIONS small notebooks graded in real
# kernels, RESULTS trivial ones for the coordinator, feedback and exports; then
# `make times ROUND=test-output/bench-round.json` takes its figures in.
SUBMISSIONS ?= 1000
RESULTS ?= 10000
WORKERS ?= 2
bench-round: install
	$(PY) -m tests.bench_round --submissions $(SUBMISSIONS) --results $(RESULTS) --workers $(WORKERS) \
		--json test-output/bench-round.json

report: install
	$(PY) -m instructor report --out report

# The README's pictures: a part in JupyterLab, a feedback page, the class report's mistakes, each
# taken by its browser test (tests/workflow/test_browser.py) on a copy of the course as it is now.
pictures: install
	COURSE_PICTURES=$(CURDIR)/docs/pictures $(PY) -m pytest -p no:nbval tests/workflow/test_browser.py -k picture -v

similarity: install
	$(PY) -m instructor similarity $(if $(PART),--part $(PART))

# Synthetic classes of 300 answers per exercise (10% planted copies), then 10,000 of one part timed.
bench-similarity: install
	$(PY) -m tests.bench_similarity --json test-output/bench-similarity.json

clean:
	rm -rf gradebook.db submitted autograded feedback grades.csv downloaded report test-output .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
