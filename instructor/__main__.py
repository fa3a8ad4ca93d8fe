"""Command line: ``python -m instructor COMMAND`` (run in the course folder, or pass --course).

    check                          is student code confined on this machine? (says so loudly)
    autograde [--part P] [--jobs N | --cluster tcp://HOST:8786] [--student S] [--force]
    feedback  [--part P] [--jobs N | --cluster tcp://HOST:8786] [--force]
                                   HTML feedback per student, in feedback/ (held ones listed)
    clear     STUDENT PART         release a submission held for review to feedback
    grades    [--out FILE] [--format csv|canvas|moodle] [--roster roster.csv] [--provenance]
                                   nbgrader's CSV export, or the file Canvas or Moodle imports
    collect   DIR --part P [--map STUDENT=FILE ...]
                                   an LMS download -> submitted/<student>/<part>/ (+ timestamp.txt)
    release   [PART]               stamp the solutions, then nbgrader generate_assignment
    stamp     [NB ...]             Colab setup cell + embedded figures, in place
    execute   NB [...]             re-run solution notebooks and store their outputs
    report    [--out report]       class report: report/index.html, PNG plots and CSV files
    similarity [--part P] [--out report/similarity] [--threshold 0.6] [--graded]
                                   similar answers per part (pairs to read, never a penalty)

Exit status: 0 done; 1 autograde finished but submissions need a look (flagged, tampered or
for review), or collect rejected or skipped a file; 2 refused.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from . import collect, coordinator, deadlines, feedback, lms, notebooks, outcome, report
from .course import LOG_DIR, PART_NAMES, GradingError, existing_parts, part_notebook
from .settings import Settings, confinement
from .similarity import pages as similarity


def _parts(value: str | None) -> list[str] | None:
    return [p for p in (value or "").replace(",", " ").split() if p] or None


def _on(stream, fd: int) -> bool:
    try:
        return stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # pytest's capture, a StringIO: not a file
        return False


@contextmanager
def _output_to(log: Path):
    """Files 1 and 2 of this process (what worker processes and their kernels print, library
    warnings and log records) to ``log``, appended; ``sys.stdout`` (the result lines) and
    ``sys.stderr`` (the progress bar) stay on the terminal."""
    import logging
    import warnings

    import distributed  # noqa: F401 - its log handlers are made now, on file 2: the log

    log.parent.mkdir(parents=True, exist_ok=True)
    streams = (sys.stdout, sys.stderr)
    for stream in streams:
        stream.flush()
    saved, fd = [os.dup(1), os.dup(2)], os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    terminal = [os.fdopen(os.dup(keep), "w", buffering=1) for keep in saved]
    shown, last = warnings.showwarning, logging.lastResort
    sys.stdout, sys.stderr = (t if _on(s, n) else s for t, s, n in zip(terminal, streams, (1, 2), strict=True))
    logging.lastResort = logging.StreamHandler(streams[1])
    warnings.showwarning = lambda msg, cat, file, line, f=None, text=None: streams[1].write(
        warnings.formatwarning(msg, cat, file, line, text))
    try:
        yield
    finally:
        for stream in (*streams, sys.stdout, sys.stderr):
            stream.flush()
        sys.stdout, sys.stderr = streams
        logging.lastResort, warnings.showwarning = last, shown
        for n, keep in zip((1, 2), saved, strict=True):
            os.dup2(keep, n)
            os.close(keep)
        for t in terminal:
            t.close()


def _pair(text: str, parser) -> tuple[str, str]:
    student, sep, file = text.partition("=")
    if not sep or not student.strip() or not file.strip():
        parser.error(f"--map wants STUDENT=FILE, not {text!r}")
    return student.strip(), file.strip()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m instructor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--course", type=Path, default=Path.cwd(), help="course folder (default: here)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="report whether student code can be confined here")
    p = sub.add_parser("autograde", help="autograde submitted/ into autograded/ and the gradebook")
    p.add_argument("--part", help="one part, or several separated by spaces/commas (default: all released)")
    p.add_argument("--student", help="only these students (spaces/commas)")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (submissions graded in parallel)")
    p.add_argument("--cluster", help="address of a running Dask scheduler, e.g. tcp://HOST:8786 (default: local)")
    p.add_argument("--force", action="store_true", help="grade again what was graded before, unchanged")
    p.add_argument("--processes", type=int, help="processes and threads per submission (default 512)")
    p.add_argument("--timeout", type=int, help="seconds per cell (default GRADING_TIMEOUT or nbgrader_config.py)")
    p.add_argument("--notebook-timeout", type=int, help="seconds per notebook")
    p.add_argument("--memory", help="address space per kernel, e.g. 6G")
    p.add_argument("--sandbox", choices=["bwrap", "rlimits"], help="default GRADING_SANDBOX or bwrap")
    p = sub.add_parser("feedback", help="HTML feedback for every graded submission")
    p.add_argument("--part")
    p.add_argument("--jobs", type=int, default=1, help="local worker processes rendering pages")
    p.add_argument("--cluster", help="address of a running Dask scheduler whose workers render the pages")
    p.add_argument("--force", action="store_true", help="render again pages that are up to date")
    p = sub.add_parser("clear", help="release a submission held for review: make feedback renders its page")
    p.add_argument("student")
    p.add_argument("part")
    p = sub.add_parser("grades", help="export the gradebook to CSV (nbgrader's, Canvas's or Moodle's)")
    p.add_argument("--format", choices=lms.FORMATS, default="csv",
                   help="csv: nbgrader's export with status columns (default); canvas or moodle: their import file")
    p.add_argument("--out", type=Path, help="default: grades.csv, canvas-grades.csv or moodle-grades.csv")
    p.add_argument("--roster", type=Path, help="CSV of student_id and the platform's ids (see instructor/lms.py)")
    p.add_argument("--provenance", action="store_true",
                   help="csv: add what produced each row (submission and release digests, versions, sandbox, limits)")
    p = sub.add_parser("collect", help="collect an LMS download (Canvas, Moodle, nbgrader, a plain folder)")
    p.add_argument("source", type=Path, help="folder of files, folders, .zip archives (see instructor/collect.py)")
    p.add_argument("--part", required=True)
    p.add_argument("--map", action="append", default=[], metavar="STUDENT=FILE",
                   help="take FILE (its name or its path in the download) as STUDENT's submission; repeatable")
    p = sub.add_parser("release", help="stamp the solutions, then generate the student notebooks")
    p.add_argument("part", nargs="?", default="", help="one part (default: every part)")
    p = sub.add_parser("stamp", help="update setup cells and embedded figures in place")
    p.add_argument("notebooks", nargs="*", type=Path, help="default: every solution notebook")
    p = sub.add_parser("execute", help="re-run solution notebooks and store their outputs")
    p.add_argument("notebooks", nargs="+", type=Path)
    p = sub.add_parser("report", help="class report (plots and CSV) from the gradebook")
    p.add_argument("--out", type=Path, default=Path("report"))
    p = sub.add_parser("similarity", help="similar answers per part: ranked pairs and clusters (changes no grade)")
    p.add_argument("--part", help="one part, or several separated by spaces/commas (default: every part submitted)")
    p.add_argument("--out", type=Path, default=Path("report/similarity"), help="folder; one subfolder per part")
    p.add_argument("--threshold", type=float, default=similarity.THRESHOLD,
                   help=f"list pairs scoring at least this (0-1, default {similarity.THRESHOLD})")
    p.add_argument("--graded", action="store_true", help="read autograded/ instead of submitted/")
    return parser


def _notebook_command(args, parser) -> int:
    """``release``, ``stamp`` or ``execute``."""
    if args.cmd == "release":
        if args.part and args.part not in PART_NAMES:
            parser.error(f"unknown part {args.part!r}; parts are: {', '.join(PART_NAMES)}")
        notebooks.release(args.course, [args.part] if args.part else None)
        return 0
    if args.cmd == "stamp":
        for path in args.notebooks or [part_notebook(p) for p in existing_parts()]:
            print(f"{path}: {'updated' if notebooks.stamp_file(path) else 'up to date'}")
        return 0
    if args.cmd == "execute":
        for path in args.notebooks:
            notebooks.stamp_file(path)
            notebooks.execute(path)
            print(f"executed {path}")
    return 0


def _grading_command(args, parser) -> int:
    """Every other command: it reads or writes the course's gradebook and folders."""
    if args.cmd == "check":
        ok, lines = confinement()
        print("\n".join(lines))
        return 0 if ok else 2
    if args.cmd == "autograde":
        settings = Settings.resolve(args.course, jobs=args.jobs, timeout=args.timeout,
                                    notebook_timeout=args.notebook_timeout, memory=args.memory,
                                    sandbox_mode=args.sandbox, processes=args.processes)
        deadlines.load(args.course)  # a bad deadlines.toml: refused before anything is written
        log = Path(args.course).resolve() / "autograded" / LOG_DIR / "autograde.log"
        with _output_to(log):
            results = coordinator.autograde(args.course, _parts(args.part), _parts(args.student), settings,
                                            cluster=args.cluster, force=args.force)
        if outcome.journal_path(args.course).exists():
            print(f"autograde: {lms.summary(args.course, _parts(args.part))}; library warnings and kernel "
                  f"output in {log}")
        return 1 if any(r.needs_a_look for r in results) else 0
    if args.cmd in ("feedback", "report"):
        deadlines.reapply(args.course)  # a due date or extension added since grading counts
    if args.cmd == "feedback":
        summary = feedback.feedback(args.course, _parts(args.part), cluster=args.cluster, jobs=args.jobs,
                                    force=args.force)
        print(f"feedback under {Path(args.course).resolve() / 'feedback'}")
        return 1 if any(counts["failed"] for counts in summary.values()) else 0
    if args.cmd == "clear":
        from .held import clear

        try:
            print(clear(Path(args.course).resolve(), args.student, args.part))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "grades":
        out = args.out or Path("grades.csv" if args.format == "csv" else f"{args.format}-grades.csv")
        out = lms.export(args.course, out if out.is_absolute() else Path(args.course) / out, args.format, args.roster,
                         with_provenance=args.provenance)
        print(f"{'' if args.format == 'csv' else args.format + ' '}grades written to {out}")
    elif args.cmd == "collect":
        mapping = dict(_pair(text, parser) for text in args.map)
        got = collect.collect(args.course, args.source, args.part, mapping=mapping)
        print(f"collected into {Path(args.course).resolve() / 'submitted'}")
        return 1 if got["rejected"] or got["skipped"] else 0
    elif args.cmd == "report":
        report.build(args.course, args.out)
    elif args.cmd == "similarity":
        parts = _parts(args.part)
        unknown = [p for p in parts or [] if p not in PART_NAMES]
        if unknown:
            parser.error(f"unknown part {unknown[0]!r}; parts are: {', '.join(PART_NAMES)}")
        out = args.out if args.out.is_absolute() else Path(args.course) / args.out
        if not similarity.run(args.course, parts, out, args.threshold, args.graded):
            print("no submissions to compare", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command (see the module docstring); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cmd in ("release", "stamp", "execute"):
        return _notebook_command(args, parser)
    try:
        return _grading_command(args, parser)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
