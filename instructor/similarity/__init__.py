"""Similar answers: which learners' answer cells match more than independent work would.

    python -m instructor similarity [--part P] [--out report/similarity] [--threshold 0.6] [--graded]
    make similarity PART=05-inference-validation

For every part, every pair of submissions is compared on the cells nbgrader marks as answers
(``submitted/<student>/<part>/<part>.ipynb``, or with ``--graded`` the copies in ``autograded/``).
The result is a list of pairs to read, never a verdict: nothing here touches the gradebook or a
score. Written to ``<out>/<part>/`` (default ``report/similarity/<part>/``, where the class
report, ``make report``, also writes it):

    index.html    ranked pairs and clusters; each pair's matching cells side by side, with the
                  lines that match marked
    pairs.csv     part, student_a, student_b, score, shared, cells, cluster
    clusters.csv  groups of students linked by pairs above the threshold (connected components)
    problems.csv  submissions (or cells) that could not be read as they are, with a one-line reason

The package, by job::

    normalise.py  step 1: answer cells as units of normalised tokens (standard library only)
    compare.py    steps 2 to 5: fingerprints, each submission's answers, scoring a class's pairs
    pages.py      index.html and the CSV files, the command (run) and the class report's section

How answers are compared (MOSS's winnowing, on a normalised form of the code):

1. *Normalise* each answer cell with Python's ``ast``: comments, docstrings and whitespace go;
   string literals become ``'S'``; code that cannot run (``if False:``, statements after a
   ``return``, bare constants, ``pass``) goes; import aliases become the module's name; the
   statements of every block are put in a canonical order that keeps each dependency (a
   statement that reads or changes a name another one sets stays after it), so reordering
   independent statements changes nothing; then every name the answers bind (variables,
   arguments, functions, attributes set on ``self``) is renamed ``V0, V1, ...`` in order of
   first use. A cell that does not parse is compared token by token instead (said in
   problems.csv).
2. *Fingerprint*: hashes of every k tokens in a row, winnowed (the smallest of every window
   of w hashes kept), per cell.
3. *Drop the scaffold*: statements of the released notebook's answer cells (the function header,
   docstring and ``raise NotImplementedError()`` every learner starts with) are taken out of each
   answer before fingerprinting.
4. *Weigh by rarity*: a fingerprint found in ``df`` of the part's N submissions weighs
   ``log((N+1)/df) / log(N+1)``: code the whole class writes the same way weighs nothing.
5. *Score* a pair: the weight the two share over the weight of the smaller one (1.0: one is
   contained in the other), counted only when the shared weight is at least ``MIN_SHARED``
   (a one-line answer is not evidence). Up to EXACT_UP_TO submissions every pair is scored at
   once, as a sparse matrix product (an inverted index of fingerprints); above that the pairs
   scored are those MinHash LSH (``datasketch``) or an index of the rare fingerprints puts
   forward, so a class of 10,000 is not 50 million comparisons. Pairs at or above the
   threshold are linked into clusters (connected components).

A notebook that is not JSON, a huge cell or an answer with a syntax error gives one line in
problems.csv; every other submission is compared as usual.
"""

from __future__ import annotations
