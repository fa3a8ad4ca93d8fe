"""Integrity checks for graded submissions: a static scan of what a learner wrote, and canary
cells that test, from outside, whether the learner's kernel still reports failures.

The package, by job::

    rules.py      what the scan looks for: the tables, the named priorities, Finding
    source.py     reading a cell as Python (IPython syntax included), what a notebook binds and
                  what each name of a cell refers to
    scanner.py    the scan: scan_notebook(nb, locked), scan_source(source) -> [Finding]
    canaries.py   insert_canaries(nb, secret), check_canaries(nb, secret) -> (reason, nb)
    identities.py what every canary fingerprints: the objects the tests compare with and call,
                  and the code that prints them
    outside.py    what every canary names that runs outside the cells (threads, hooks, callbacks)
    spelt.py      names spelt from pieces of literals, read back for the scan
    timing.py     the kernel's own timing of a cell

The grading task (:mod:`instructor.tasks`) scans a submission before it runs; the canaries run
inside nbgrader's pipeline as :class:`instructor.preprocessors.InsertCanaries` (before
``Execute``) and :class:`instructor.preprocessors.CheckCanaries` (right after it, so the
canaries never reach the gradebook or the feedback). Which cells a learner can edit is
:func:`instructor.course.locked_ids` / :func:`instructor.course.editable_cells`.

**The scan** parses every code cell a learner can edit (every code cell whose grade id is not a
locked one: learners can add cells and edit metadata) with :mod:`ast`, after turning IPython
syntax (``%magic``, ``!cmd``) into Python the way IPython does. It flags IPython internals, the
rebinding of attributes of imported modules and classes (``torch.allclose = ...``), ``builtins``,
``sys.modules``, trace hooks, ``importlib``, ``ctypes``, ``exec``/``eval``/``compile``, frame
walking, and classes that compare equal to anything. A finding means "needs review"; it does not
change a score. Attributes of the learner's own objects (``model.fc = ...``) are never flagged.

**Canaries** are plain code cells, two per point: at the start, before every locked test cell
not already preceded by one, and at the end (each test runs right after a check of what the
learner's cells before it did). Both look like hidden test cells (a "Check ..." docstring,
``### BEGIN HIDDEN TESTS``, asserts). With values derived from a per-run secret, the first
computes a number and a set of known-false checks
(``torch.allclose``, ``torch.equal``, ``torch.isclose``, ``Tensor.__eq__``/``__bool__``,
``numpy.allclose``, an ``assert`` that must raise the real AssertionError; torch's and numpy's
``assert_close`` must still be the libraries' own: calling torch's costs 0.5 s the first time)
and prints them (its body runs as two strings through ``exec``, around the cell's own ``assert``:
IPython tokenizes a cell before running it, ~30 ms for this body written out as code); the second
fails an assert with a random message (a separate,
short cell: IPython's traceback of a long cell costs tens of milliseconds). A kernel that skips
the cells, hides their error, removes their asserts or makes false comparisons true gives itself
away. Each check also names any code that is not installed left to run outside the cells (a
thread, an event or event-loop callback, a signal handler, a method of the kernel's machinery; see
:mod:`.outside`), and the fingerprint is taken again at the top of every test cell, on its first
line. The kernel sees the canaries' source (it has to run them); it never sees the secret or
which output is expected. Canaries use private names (``import torch as _q...``) and delete them, so
an honest learner's variables (even ``print = ...``) do not disturb them, and a learner's cell
that raised (execution goes on: ``allow_errors=True``) does not disturb them either.

What the canaries cost: ``python -m tests.bench_grading --canaries NOTEBOOK...`` runs notebooks
with canaries and prints, per notebook, the number of canaries, their total time in the kernel,
and the time scan/insert/check take in the grading process.

Limits, by design: a cheat written to recognise canaries (they are public code) could answer
them; doing so needs the IPython machinery the scan flags. The scan sees source only: code that
builds code at run time is flagged for *how* it runs it (``exec``, ``getattr(get_ipython(),
...)``), not for what it does.
"""
