"""Canaries: hidden cells that check, from outside, that the learner's kernel still reports
failures (see the package's docstring).

    secret = new_secret()                       # one per graded notebook, never written down
    nb = insert_canaries(nb, secret)            # a copy with canary cells added
    ...execute nb (nbgrader's Execute, allow_errors=True)...
    reason, nb = check_canaries(nb, secret)     # reason: None or one line; canaries removed
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..course import editable_cells, grade_id, is_test_cell, locked_ids
from .identities import _IDENTITIES, _NAMESPACE, REWRAPPED_BY_TORCH, SHELL_HOOKS, fingerprint_code  # noqa: F401 - read through here
from .outside import AUDIT_GUARD, found
from .outside import reason as outside_reason
from .rules import shorten
from .timing import cell_seconds, stamp  # noqa: F401 - read through here

CANARY_KEY = "course_integrity"   # cell metadata: {"canary": k}; never shown to learners
_WORDS = ("shape", "values", "gradient", "batch", "output", "weights", "bias", "loss", "layer", "mean",
          "scale", "sum", "order", "sign", "range", "dtype", "device", "result", "input", "logits")
# Known-false checks, in the order their bits are printed.
_COMPARISONS = ("torch.allclose", "torch.equal", "torch.isclose", "Tensor.__eq__", "Tensor.__bool__",
                "numpy.allclose", "torch.testing.assert_close", "numpy.testing.assert_allclose",
                "the assert statement or AssertionError")


def new_secret() -> str:
    """A fresh random secret for one graded notebook."""
    return secrets.token_hex(16)


def _derive(secret: str, k: int, what: str) -> int:
    digest = hmac.new(secret.encode(), f"{k}:{what}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class _Canary:
    """Canary point k: two cells, run one after the other."""

    checks: str     # must run without an error and print ``token``
    fails: str      # must fail with AssertionError(message); short, so its traceback is cheap
    token: str      # "prefix value bits": bits are the known-false checks, all "0"
    prefix: str
    message: str
    ids: tuple[str, str]
    inline: str     # put at the top of the test cell right after this canary, on its first line

    @property
    def inline_prefix(self) -> str:
        """What the inline check prints its fingerprint after (the canary's prefix in capitals)."""
        return self.prefix.upper()

    def source(self, part: int) -> str:
        return (self.checks, self.fails)[part]


def _canary(secret: str, k: int) -> _Canary:
    def d(what: str) -> int:
        return _derive(secret, k, what)

    n = f"_q{d('name') % 36 ** 5:x}_"
    a, b, m, c = 1000 + d("a") % 9000, 1000 + d("b") % 9000, 10007 + d("m") % 90000, d("c") % 1000
    value = a * b % m + c
    size, shift = 3 + d("size") % 5, 1 + d("shift") % 7
    prefix = "".join("abcdefghijklmnopqrstuvwxyz"[(d("p") >> (5 * i)) % 26] for i in range(8))
    message = f"expected {d('msg') % 10 ** 9:09d}, {_WORDS[d('w3') % len(_WORDS)]} differs"
    words = [_WORDS[d(f"w{i}") % len(_WORDS)] for i in range(6)]
    wrong_a, wrong_b = 100 + d("fa") % 900, 100 + d("fb") % 900
    # Run as strings by exec: IPython tokenizes a cell for its transformers, ~30 ms for these lines
    # written out as code (2,600 tokens), nothing for a string. The exec called is the builtins
    # module's, fingerprinted as the object the cell called (``{n}X``): a replacement that puts the
    # real one back while it runs still shows. The assert stays in the cell, where IPython's
    # transformers and the AST hooks see it as they see a test's.
    first = f'''import numpy as {n}n, torch as {n}t
{n}v = {a} * {b} % {m} + {c}
{n}x = {n}t.arange({size}, dtype={n}t.float32, device="cpu")
{n}y = {n}x + {shift}
{n}r = [{n}t.allclose({n}x, {n}y), {n}t.equal({n}x, {n}y), bool({n}t.isclose({n}x, {n}y).any()),
       bool(({n}x == {n}y).any()), bool({n}x.sum() == {n}y.sum()), bool({n}n.allclose({n}x.numpy(), {n}y.numpy()))]
for {n}f, {n}p in (({n}t.testing.assert_close, "torch."), ({n}n.testing.assert_allclose, "numpy.")):
    {n}r.append(not str(getattr({n}f, "__module__", "")).startswith({n}p))
'''
    last = f'''{n}b.print("{prefix} " + {n}b.str({n}v) + " " + "".join("1" if {n}z else "0" for {n}z in {n}r) + "\\n",
          end="")
{fingerprint_code(n, prefix)}{AUDIT_GUARD.replace("__N__", n).replace("__P__", prefix) if k == 0 else ""}\
del {n}b, {n}n, {n}t, {n}v, {n}x, {n}y, {n}r, {n}f, {n}p, {n}X
'''
    checks = (f'"""Check the {words[0]} and {words[1]} of the {words[2]}"""\n### BEGIN HIDDEN TESTS\n'
              f"import builtins as {n}b\n{n}X = {n}b.exec\n{n}X({first!r}, (lambda: 0).__globals__)\n"
              f"try:\n    assert {n}v < 0, \"{message}\"\nexcept BaseException as {n}e:\n"
              f"    {n}r.append(type({n}e) is not {n}b.AssertionError)\nelse:\n    {n}r.append(True)\n"
              f"{n}X({last!r}, (lambda: 0).__globals__)\n### END HIDDEN TESTS")
    fails = (f'"""Check the {words[3]} of the {words[4]}"""\n### BEGIN HIDDEN TESTS\n'
             f'assert {wrong_a} * {wrong_b} == {wrong_a * wrong_b + 1 + d("off") % 50}, "{message}"\n'
             "### END HIDDEN TESTS")
    token = f"{prefix} {value} {'0' * len(_COMPARISONS)}"
    # The same fingerprint inside the test cell itself, before its first statement and on its first line
    # (a traceback's line numbers stay the test's): what acts between cells (an event loop's callback, a
    # pre_run_cell hook, a thread) and tells a test from a canary by what ran before it shows here, moments
    # before the test reads the kernel.
    inline = (f"import numpy as {n}n, torch as {n}t\n{fingerprint_code(n, prefix.upper(), outside=False)}"
              f"del {n}b, {n}n, {n}t, {n}X\n")
    inline = f"import builtins as {n}b; {n}X = {n}b.exec; {n}X({inline!r}, (lambda: 0).__globals__); "
    return _Canary(checks, fails, token, prefix, message, (f"c{d('id') % 36 ** 12:x}", f"f{d('id') % 36 ** 12:x}"),
                   inline)


def _joinable(source: str) -> bool:
    """Whether ``x; `` can go before ``source`` (not before a compound statement, a decorator, ``from
    __future__`` or IPython's syntax; each test cell of the course starts with its docstring)."""
    try:
        compile("pass; " + source, "<test cell>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def _canary_index(cell, secret: str, ids: dict[str, int] | None = None) -> int | None:
    """j if ``cell`` is this run's canary cell j (point j // 2, part j % 2). Its source must
    match: a learner's cell that copied the metadata or the id is not one."""
    meta = (cell.get("metadata") or {}).get(CANARY_KEY)
    j = meta.get("canary") if isinstance(meta, dict) else None
    if not isinstance(j, int) and ids is not None:
        j = ids.get(cell.get("id"))
    if not isinstance(j, int) or j < 0 or cell.get("cell_type") != "code":
        return None
    return j if cell.get("source") == _canary(secret, j // 2).source(j % 2) else None


def is_canary(cell, secret: str) -> bool:
    """Whether ``cell`` is one of the canary cells ``secret`` made."""
    return _canary_index(cell, secret) is not None


def insert_canaries(nb, secret: str, locked: set[str] | Mapping[str, str] | None = None):
    """A copy of ``nb`` with a canary (two cells) at the start, before every locked test cell, and at the end.
    What a learner's cells did to the kernel matters where a test reads it: each test cell runs right
    after a check of everything before it. A check after every cell a learner can edit would only
    narrow down where a change was made, at ~10 ms a check (Part 2 has 34 such cells, 3 test cells).
    ``locked``: as for :func:`scan_notebook`; default :func:`locked_ids` of ``nb`` (trustworthy once
    nbgrader's OverwriteCells restored the cells' metadata)."""
    import nbformat

    nb = copy.deepcopy(nb)
    locked = locked_ids(nb) if locked is None else locked
    editable = set(editable_cells(nb, locked))
    with_ids = nb.get("nbformat", 4) > 4 or nb.get("nbformat_minor", 0) >= 5
    for cell in nb.cells:   # a learner's copy of canary metadata must not pass for a canary
        (cell.get("metadata") or {}).pop(CANARY_KEY, None)
    cells, k = [], 0

    def add():
        nonlocal k
        canary = _canary(secret, k)
        for part in (0, 1):
            cell = nbformat.v4.new_code_cell(canary.source(part))
            cell.metadata[CANARY_KEY] = {"canary": 2 * k + part}
            if with_ids:
                cell["id"] = canary.ids[part]
            else:
                cell.pop("id", None)
            cells.append(cell)
        k += 1

    add()  # at the start: what the comparisons were before any learner code ran
    for i, cell in enumerate(nb.cells):
        if is_test_cell(cell) and i not in editable:
            if CANARY_KEY not in cells[-1].metadata:
                add()
            if _joinable(cell.source):
                cell.source = _canary(secret, k - 1).inline + cell.source
        cells.append(cell)
    add()
    nb.cells = cells
    return nb


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _ran(cell) -> bool:
    return bool(cell.get("outputs")) or cell.get("execution_count") is not None


def _error_text(error) -> str:
    return f"{error.get('ename')}: {shorten(str(error.get('evalue', '')), 60)}"


def _identities(checks, canary: _Canary) -> list[str] | None:
    """The addresses a canary printed (the last such line), or None."""
    lines = re.findall(re.escape(canary.prefix) + r"= (.*)", _stdout(checks))
    return lines[-1].split() if lines else None


def _replaced(seen: list[str], before: list[str]) -> list[str]:
    """What is no longer the object it was at the start: paths, and learner's names."""
    count = len(_IDENTITIES)
    if len(seen) != count + len(_NAMESPACE) or len(before) < count:
        return ["the canary's own report"]
    index = {path: i for i, path in enumerate(_IDENTITIES)}
    wrong = [path for path, now, then in zip(_IDENTITIES, seen, before, strict=False) if now != then]
    wrong += [f"the name {name}" for (name, path), now in zip(_NAMESPACE, seen[count:], strict=True)
              if now != "-" and now != before[index[path]]]
    return wrong


def _judge(checks, fails, canary: _Canary, where: str, before: list[str] | None = None) -> str | None:
    """None if the executed canary cells behaved, else the reason (``where``: "after cell 9").
    ``before``: the addresses the canary at the start printed, before any learner code ran."""
    the = f"the canary {where}"
    starved = [o for cell in (checks, fails) for o in cell.get("outputs", [])
               if o.get("output_type") == "error" and o.get("ename") == "MemoryError"]
    if starved:  # the learner's own memory use, kept: no tampering, and no kernel left to vouch for
        return (f"out of memory: {the} raised MemoryError: the submission had used up its memory limit "
                f"and kept it, so its kernel could not be checked from there on")
    text = _stdout(checks)   # searched, not split: a learner's background thread may print into it
    seen = _identities(checks, canary)
    if before is not None and (seen is not None or canary.token in text):   # neither: said below
        wrong = _replaced(seen, before) if seen is not None else ["the canary's own report"]
        if wrong:
            return (f"tampered: {the} found what the tests compare with replaced since the start: "
                    f"{shorten(', '.join(wrong), 120)}")
    outside = found(text, canary.prefix)
    if outside:
        return outside_reason(the, outside)
    errors = [o for o in checks.get("outputs", []) if o.get("output_type") == "error"]
    if canary.token not in text:
        ours = re.findall(re.escape(canary.prefix) + r" (-?\d+) ([01]+)", text)
        if ours:
            # strict=False: the bits come from the cell's (possibly tampered) output, any length
            wrong = [name for name, bit in zip(_COMPARISONS, ours[-1][1], strict=False) if bit != "0"]
            if wrong:
                return f"tampered: in {the} checks that must fail passed: {', '.join(wrong)}"
            return f"tampered: {the} printed a wrong value"
        if errors:
            return f"tampered: {the} raised {_error_text(errors[0])} before its checks ran"
        return f"tampered: {the} neither ran its checks nor printed their result (the cell was skipped or hidden)"
    if errors:
        return f"tampered: {the} raised {_error_text(errors[0])} after its checks"
    errors = [o for o in fails.get("outputs", []) if o.get("output_type") == "error"]
    if not any(o.get("ename") == "AssertionError" and o.get("evalue") == canary.message for o in errors):
        if errors:
            return f"tampered: {the} should have failed with its own assertion but raised {_error_text(errors[0])}"
        return f"tampered: {the} should have failed but ran without an error"
    return None


def check_canaries(nb, secret: str, timeouts: Iterable[Mapping] = ()):
    """``(reason, cleaned)`` for an executed notebook: reason is None when every canary behaved
    (or the run stopped before reaching it: a dead kernel or a notebook time limit, which the
    grading run reports itself), else one line naming the first canary that did not; cleaned
    is a copy of ``nb`` without the canary cells. Cells are numbered from 1 in the reason, as
    in the cleaned notebook. ``timeouts``: the cells the grading run stopped at their time limit
    (``{"cell": index in nb, "label": "cell N (id)"}``); a canary that misbehaves after one of
    them is blamed on the interruption ("timed out in cell N ..."), never called tampering:
    an interrupted cell (an import cut halfway, say) can leave the kernel broken by itself."""
    reason, cleaned = _check_canaries(nb, secret)
    stops = sorted((t for t in timeouts if isinstance(t.get("cell"), int)), key=lambda t: t["cell"])
    if reason and stops and reason.startswith("tampered:"):
        where = re.search(r"(after cells? (?:(\d+)-)?(\d+)|at the end)", reason)
        first = stops[0]
        number = int(first["label"].split()[1]) if first.get("label", "").startswith("cell ") else 0
        if where is not None and (where[1] == "at the end" or int(where[3]) >= number):
            # the check covers cells from before the stop too: the change may have come before it
            before = f"; cells {where[2]}-{number - 1} ran before the stop since the last check: look at them too" \
                if where[2] and int(where[2]) < number else ""
            return (f"timed out in {first['label']}: the cell was stopped at its time limit, and the "
                    f"canaries after it could not vouch for the kernel ({reason[len('tampered: '):]}{before})"), cleaned
    return reason, cleaned


def _check_canaries(nb, secret: str):
    ids = {}
    for k in range(len(nb.cells) // 2 + 1):
        first, second = _canary(secret, k).ids
        ids[first], ids[second] = 2 * k, 2 * k + 1
    found: list[tuple[int, int]] = []           # (cell index, j)
    for i, cell in enumerate(nb.cells):
        j = _canary_index(cell, secret, ids)
        if j is not None:
            found.append((i, j))
    canary_cells = {i for i, _ in found}
    # test cells with a canary's inline check on their first line: index -> that canary
    inline = {i + 2: _canary(secret, j // 2) for i, j in found if j % 2 == 0 and i + 2 < len(nb.cells)
              and i + 2 not in canary_cells
              and str(nb.cells[i + 2].get("source", "")).startswith(_canary(secret, j // 2).inline)}
    cleaned = copy.deepcopy(nb)
    for i, canary in inline.items():
        _remove_inline(cleaned.cells[i], canary)
    cleaned.cells = [c for i, c in enumerate(cleaned.cells) if i not in canary_cells]
    if not found:
        return "tampered: no canary cells in the graded notebook (grading pipeline error)", cleaned
    if [j for _, j in found] != list(range(len(found))) or len(found) % 2 or \
            any(found[p + 1][0] != found[p][0] + 1 for p in range(0, len(found), 2)):
        return "tampered: canary cells missing or out of order (grading pipeline error)", cleaned
    last_ran = max((i for i, c in enumerate(nb.cells) if i not in canary_cells and c.get("cell_type") == "code"
                    and _ran(c)), default=-1)
    guard = _canary(secret, 0).prefix + "! "
    refused = [i for i, c in enumerate(cleaned.cells) if guard in "".join(
        o.get("text", "") for o in c.get("outputs", []) if o.get("output_type") == "stream")]
    if refused:
        return (f"tampered: cell {refused[0] + 1} tried to add an audit hook (code the interpreter would call "
                f"inside the tests); the grading kernel refused it"), cleaned
    before: list[str] | None = None   # set by the first canary, at the start
    checked = 0                       # cells of the cleaned notebook the canaries so far came after
    for p in range(0, len(found), 2):
        i, j = found[p]
        kept = i - sum(1 for c in canary_cells if c < i)      # cells of the cleaned notebook before it
        if p == len(found) - 2 and kept == len(cleaned.cells):
            where = "at the end"
        elif kept == 0:
            where = "at the start"
        else:
            gid = grade_id(cleaned.cells[kept - 1])
            span = f"cell {kept}" if kept - checked <= 1 else f"cells {checked + 1}-{kept}"
            where = f"after {span}" + (f" ({gid})" if gid else "")
        checked = kept
        checks, fails = nb.cells[i], nb.cells[i + 1]
        if not (_ran(checks) and _ran(fails)):
            if last_ran > i:
                return f"tampered: the canary {where} did not run while later cells did", cleaned
            return None, cleaned  # execution stopped before here; the grading run reports why
        canary = _canary(secret, j // 2)
        reason = _judge(checks, fails, canary, where, before)
        if reason:
            return reason, cleaned
        if before is None:
            before = _identities(checks, canary)
        test = inline.get(i + 2)
        if test is not None and _ran(nb.cells[i + 2]):
            gid = grade_id(cleaned.cells[kept])
            reason = _judge_inline(nb.cells[i + 2], test, f"the check at the top of cell {kept + 1}"
                                   + (f" ({gid})" if gid else "") + ("" if kept == 0 else f", {where}"), before)
            if reason:
                return reason, cleaned
    return None, cleaned


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _remove_inline(cell, canary: _Canary) -> None:
    """The test cell as the course wrote it: its source without the inline check, its output without what
    the check printed, and a traceback that shows the cell's first line as the course wrote it."""
    cell.source = cell.source[len(canary.inline):]
    first = cell.source.split("\n", 1)[0]
    line = re.compile(r"(?m)^" + re.escape(canary.inline_prefix) + r"[=^] .*(\n|$)")
    start = canary.inline.split(";", 1)[0]   # "import builtins as _q..._b": where the check begins
    outputs = []
    for output in cell.get("outputs", []):   # adjacent stdout outputs as one: a long line may come in pieces
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            if outputs and outputs[-1].get("output_type") == "stream" and outputs[-1].get("name") == "stdout":
                outputs[-1]["text"] += "".join(output.get("text", ""))
                continue
            output["text"] = "".join(output.get("text", ""))
        outputs.append(output)
    cleaned, outputs = outputs, []
    for output in cleaned:   # the check's line; the check itself where the test's code printed the cell
        if output.get("output_type") == "stream" and output.get("name") == "stdout":
            output["text"] = line.sub("", output["text"].replace(canary.inline, ""))
            if not output["text"]:
                continue
        if output.get("output_type") == "error":
            output["traceback"] = ["\n".join(_first_line(row, start, first) for row in frame.split("\n"))
                                   for frame in output.get("traceback", [])]
        outputs.append(output)
    cell["outputs"] = outputs


def _first_line(row: str, start: str, first: str) -> str:
    """A traceback's line showing the check (IPython prints the lines around a failing one), shown as
    the course's first line, after the same gutter ("      1 ", "----> 1 ")."""
    plain = _ANSI.sub("", row)
    at = plain.find(start)
    return row if at < 0 else plain[:at] + first


def _judge_inline(cell, canary: _Canary, the: str, before: list[str] | None) -> str | None:
    """None if the check at the top of a test cell found the kernel as the canary at the start did."""
    # the first such line: the check runs first; the test's code may print look-alikes (its cell's source) later
    line = re.search("(?m)^" + re.escape(canary.inline_prefix) + r"= (.*)", _stdout(cell))
    if line is None:
        return f"tampered: {the} did not print what it saw: the test cell did not run as written"
    wrong = _replaced(line[1].split(), before) if before is not None else []
    if wrong:
        return (f"tampered: {the} found what the test compares with replaced since the start: "
                f"{shorten(', '.join(wrong), 120)}")
    return None
