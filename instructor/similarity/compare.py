"""Fingerprinting each submission's answers and scoring every pair of a part's submissions
(steps 2 to 5 of :mod:`instructor.similarity`).

    class_answers(course, part) -> [Answers]       compare([Answers]) -> Result
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..course import PART_NAMES, grade_id, is_answer_cell, one_line, part_notebook, read_regular_file
from .normalise import Unit, flat, normalise

K = 10                 # tokens per fingerprint
WINDOW = 4             # winnowing window: a match of K + WINDOW - 1 tokens is always seen
THRESHOLD = 0.6        # pairs at or above this score are listed as similar and clustered
MIN_SHARED = 2.5       # shared weight (about that many rare fingerprints) below which a pair scores 0
RARE_DF = 50           # above EXACT_UP_TO, the rare index holds fingerprints found in 2..50 submissions
EXACT_UP_TO = 3_000    # up to this many submissions every pair is scored (a sparse matrix product)
LSH_THRESHOLD = 0.3    # above it, candidates: MinHash LSH at this Jaccard, and the rare-fingerprint index
LSH_PERMUTATIONS = 128


# ---------------------------------------------------------------------------
# Fingerprints
# ---------------------------------------------------------------------------

def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _local(tokens: list[str]) -> str:
    """The k-gram's text with its placeholders numbered again from its own first one: a statement
    added or removed elsewhere (dead code) does not change the numbers inside this window."""
    seen: dict[str, str] = {}
    return " ".join(seen.setdefault(t, f"v{len(seen)}") if t[:1] == "V" and t[1:].isdigit() else t for t in tokens)


def winnow(hashes: list[int], window: int = WINDOW) -> list[int]:
    """Positions kept by winnowing (Schleimer, Wilkerson and Aiken 2003): the rightmost smallest
    hash of every ``window`` consecutive ones, each position once."""
    if len(hashes) <= window:
        return [min(range(len(hashes)), key=lambda i: (hashes[i], -i))] if hashes else []
    keep, last = [], -1
    for start in range(len(hashes) - window + 1):
        pick = min(range(start, start + window), key=lambda i: (hashes[i], -i))
        if pick != last:
            keep.append(pick)
            last = pick
    return keep


def fingerprints(units: list[Unit], salt: str = "", k: int | None = None, window: int | None = None
                 ) -> dict[int, list[int]]:
    """{fingerprint: [original line numbers it covers]} of a normalised cell (``k`` tokens in a row,
    winnowed with ``window``; default K and WINDOW); ``salt`` (the grade id) keeps the same code in
    two exercises apart."""
    k, window = k or K, window or WINDOW
    stream, lines = [], []
    for unit in units:
        stream.extend(unit.tokens)
        span = list(range(unit.first, unit.last + 1))
        lines.extend([span] * len(unit.tokens))
    if not stream:
        return {}
    if len(stream) < k:
        return {_hash(salt + "\x1f" + _local(stream)): sorted({n for s in lines for n in s})}
    grams = [_hash(salt + "\x1f" + _local(stream[i:i + k])) for i in range(len(stream) - k + 1)]
    out: dict[int, list[int]] = {}
    for i in winnow(grams, window):
        covered = out.setdefault(grams[i], [])
        covered.extend(n for s in lines[i:i + k] for n in s if n not in covered)
    return out


# ---------------------------------------------------------------------------
# Submissions
# ---------------------------------------------------------------------------

@dataclass
class Answers:
    """One student's answer cells of one part, fingerprinted."""

    student: str
    cells: dict[str, str] = field(default_factory=dict)        # grade id -> source
    prints: dict[str, dict[int, list[int]]] = field(default_factory=dict)  # grade id -> fingerprints
    problems: list[str] = field(default_factory=list)

    def all_prints(self) -> set[tuple[str, int]]:
        return {(gid, f) for gid, fps in self.prints.items() for f in fps}


def answer_cells(nb: dict) -> dict[str, str]:
    """{grade id: source} of the answer cells (nbgrader's ``solution``) of a notebook's JSON, the
    first cell of each id; code cells only."""
    out: dict[str, str] = {}
    for cell in nb.get("cells") or []:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code" or not is_answer_cell(cell):
            continue
        gid = grade_id(cell) or f"cell-{len(out)}"
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        out.setdefault(str(gid), source)
    return out


def fingerprint_cells(cells: dict[str, str], scaffold: dict[str, Counter] | None = None
                      ) -> tuple[dict[str, dict[int, list[int]]], list[str]]:
    """Fingerprints of a submission's answer cells, and the problems met; ``scaffold``: the
    released cells' units ({grade id: Counter of flat units}), taken out first."""
    units, problems = normalise(cells)
    out = {}
    for gid, cell in units.items():
        given = Counter((scaffold or {}).get(gid, ()))
        kept = []
        for unit in cell:
            key = flat(unit.tokens)
            if given[key] > 0:
                given[key] -= 1
            else:
                kept.append(unit)
        out[gid] = fingerprints(kept, salt=gid)
    return out, problems


def read_answers(path: Path, student: str, given: dict[str, Counter] | None = None) -> Answers:
    """A submitted notebook's answers; never raises (problems are recorded on the result)."""
    answers = Answers(student)
    try:
        nb = json.loads(read_regular_file(path).decode("utf-8", errors="replace"))
        if not isinstance(nb, dict):
            raise ValueError("the file is JSON but not a notebook")
    except (OSError, ValueError) as exc:
        reason = f"not JSON ({exc})" if isinstance(exc, json.JSONDecodeError) else str(exc)
        answers.problems.append(one_line(f"{path.name} could not be read: {reason}"))
        return answers
    answers.cells = answer_cells(nb)
    if not answers.cells:
        answers.problems.append("no answer cell (nbgrader metadata missing or changed)")
    answers.prints, problems = fingerprint_cells(answers.cells, given)
    answers.problems += [one_line(p) for p in problems]
    return answers


def scaffold(course: Path, part: str) -> dict[str, Counter]:
    """{grade id: Counter of flat units} of what every learner starts with: the released
    notebook's answer cells (or the solution's with the BEGIN/END SOLUTION region taken out)."""
    released = part_notebook(part, release=True, course=course)
    source = part_notebook(part, course=course)
    cells: dict[str, str] = {}
    if released.exists():
        cells = answer_cells(json.loads(released.read_text()))
    elif source.exists():
        for gid, text in answer_cells(json.loads(source.read_text())).items():
            cells[gid] = re.sub(r"(?ms)^[ \t]*### BEGIN SOLUTION.*?### END SOLUTION[ \t]*$", "", text)
    return scaffold_units(cells)


def scaffold_units(cells: dict[str, str]) -> dict[str, Counter]:
    """{grade id: Counter of flat units} of released answer cells (see :func:`scaffold`)."""
    units, _ = normalise(cells)
    return {gid: Counter(flat(u.tokens) for u in cell) for gid, cell in units.items()}


# ---------------------------------------------------------------------------
# Comparing a class
# ---------------------------------------------------------------------------

@dataclass
class Pair:
    a: int
    b: int
    score: float
    shared: float
    cells: list[str]
    cluster: int = 0


@dataclass
class Result:
    """The comparison of one part's submissions."""

    part: str
    subs: list[Answers]
    weights: dict[tuple[str, int], float]
    pairs: list[Pair]                      # at or above the threshold, best first
    clusters: list[list[int]]              # indices into subs, biggest first
    threshold: float


def compare(subs: list[Answers], threshold: float = THRESHOLD, min_shared: float = MIN_SHARED,
            part: str = "") -> Result:
    """Score every pair of ``subs``: exactly (a sparse matrix product over every fingerprint) up to
    EXACT_UP_TO submissions; above that, the pairs that MinHash LSH or the index of rare
    fingerprints put forward."""
    sets = [s.all_prints() for s in subs]
    n = len(subs)
    df: dict[tuple[str, int], int] = defaultdict(int)
    for fps in sets:
        for f in fps:
            df[f] += 1
    scale = math.log(n + 1) if n > 1 else 1.0
    weights = {f: math.log((n + 1) / d) / scale for f, d in df.items()}
    totals = [sum(weights[f] for f in fps) for fps in sets]

    if n <= EXACT_UP_TO:
        shared = _shared(sets, weights, {f for f, d in df.items() if d >= 2}, min_shared)
    else:
        shared = {}
        candidates = _lsh_candidates(sets) | set(_shared(sets, weights, _rare(df), min_shared / 2))
        for a, b in candidates:
            shared[(a, b)] = sum(weights[f] for f in sets[a] & sets[b])
    pairs: list[Pair] = []
    for (a, b), weight in shared.items():
        smaller = min(totals[a], totals[b])
        if weight < min_shared or not smaller or weight / smaller < threshold:
            continue
        cells = sorted({gid for gid, f in sets[a] & sets[b] if weights[(gid, f)] > 0})
        pairs.append(Pair(a, b, round(min(weight / smaller, 1.0), 3), round(weight, 2), cells))
    pairs.sort(key=lambda p: (-p.score, -p.shared, subs[p.a].student, subs[p.b].student))
    clusters = _components(n, pairs)
    number = {member: i for i, members in enumerate(clusters, 1) for member in members}
    for p in pairs:
        p.cluster = number[p.a]
    return Result(part, subs, weights, pairs, clusters, threshold)


def _rare(df: dict) -> set:
    return {f for f, d in df.items() if 2 <= d <= RARE_DF}


def _shared(sets: list[set], weights: dict, keep: set, floor: float) -> dict[tuple[int, int], float]:
    """{(a, b): weight shared} for every pair (a < b) sharing at least ``floor`` of weight among the
    fingerprints in ``keep``: an inverted index as a sparse matrix product (submissions x
    fingerprints, weighted, times its 0/1 transpose)."""
    import numpy as np
    from scipy import sparse

    column = {f: i for i, f in enumerate(keep)}
    rows, cols, vals = [], [], []
    for r, fps in enumerate(sets):
        for f in fps:
            c = column.get(f)
            if c is not None:
                rows.append(r)
                cols.append(c)
                vals.append(weights[f])
    if not column or len(sets) < 2:
        return {}
    x = sparse.csr_matrix((np.asarray(vals, dtype=float), (rows, cols)), shape=(len(sets), len(column)))
    binary = x.copy()
    binary.data[:] = 1.0
    product = sparse.triu(x @ binary.T, k=1).tocoo()
    keep_ = product.data >= floor
    return {(int(a), int(b)): float(v)
            for a, b, v in zip(product.row[keep_], product.col[keep_], product.data[keep_], strict=True)}


def _lsh_candidates(sets: list[set]) -> set[tuple[int, int]]:
    """Pairs whose fingerprint sets MinHash LSH (datasketch) finds alike (Jaccard about
    LSH_THRESHOLD or more): copies built from common pieces, whose every fingerprint is frequent."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=LSH_PERMUTATIONS)
    found = set()
    for i, fps in enumerate(sets):
        if not fps:
            continue
        m = MinHash(num_perm=LSH_PERMUTATIONS, seed=1, hashfunc=int)
        m.update_batch([_hash(f"{gid}:{f}") & 0xFFFFFFFF for gid, f in fps])
        for j in lsh.query(m):
            found.add((j, i))
        lsh.insert(i, m)
    return found


def _components(n: int, pairs: list[Pair]) -> list[list[int]]:
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for p in pairs:
        parent[root(p.a)] = root(p.b)
    groups: dict[int, set[int]] = defaultdict(set)
    for p in pairs:
        groups[root(p.a)].update((p.a, p.b))
    return sorted((sorted(g) for g in groups.values()), key=lambda g: (-len(g), g))


def class_answers(course: Path, part: str, graded: bool = False, progress: bool = True) -> list[Answers]:
    """Every student's answers to ``part``: ``submitted/*/<part>/<part>.ipynb`` (or ``autograded/``),
    the part's scaffold taken out."""
    from tqdm.auto import tqdm

    given = scaffold(course, part)
    base = Path(course) / ("autograded" if graded else "submitted")
    folders = sorted(p for p in base.glob(f"*/{part}")  # not hidden folders (autograded/.logs)
                     if p.is_dir() and not p.parent.name.startswith(".")) if base.is_dir() else []
    subs = []
    for folder in tqdm(folders, desc=f"similarity {part}", unit="submission", mininterval=1.0,
                       disable=not progress or len(folders) < 50, leave=False):
        student = folder.parent.name
        notebook = folder / f"{part}.ipynb"
        if not notebook.exists() and not notebook.is_symlink():
            found = sorted(folder.glob("*.ipynb"))
            if not found:
                subs.append(Answers(student, problems=["no notebook in the submission"]))
                continue
            notebook = found[0]
        subs.append(read_answers(notebook, student, given))
    return subs


def submitted_parts(course: Path, graded: bool = False) -> list[str]:
    """Parts that have at least one submission in the course, in course order."""
    base = Path(course) / ("autograded" if graded else "submitted")
    found = {p.name for p in base.glob("*/*") if p.is_dir() and not p.parent.name.startswith(".")
             } if base.is_dir() else set()
    return [p for p in PART_NAMES if p in found] + sorted(found - set(PART_NAMES))
