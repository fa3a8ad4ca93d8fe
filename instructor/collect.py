"""Collecting an LMS download: every file in it either collected to
``submitted/<student>/<part>/<part>.ipynb`` (with nbgrader's ``timestamp.txt``) or listed with the
reason it was not.

    collect(course, source, part, mapping={student: file}) -> {"collected", "rejected", "skipped", "other"}

Read loose in ``source``, in folders under it, or inside ``.zip`` archives (one zip inside another
too): Canvas's ``<name>_[LATE_]<user id>_<attachment id>_<file>`` with the ``-1``, ``-2`` of a
re-upload; Moodle's per-student folders ``<Full Name>_<id>_assignsubmission_file_/``; nbgrader's
exchange (``<student>+<part>+<time>/``) and ``submitted/<student>/<part>/`` with ``timestamp.txt``;
a plain folder of ``<student>_<part>.ipynb`` (or ``<student> <part>``) and ``<student>/<part>.ipynb``.

The part is found in the file name in any case, with ``-``, ``_`` or spaces between its words and
a browser's ``(1)`` tolerated. The student is the LMS's folder or prefix (Moodle, Canvas, the
exchange), else the file name's prefix, else the folder the file is in; spaces in a name are
dropped (``Erin Smith`` -> ``ErinSmith``). Of a student's files the newest is taken (Canvas's
re-upload number, then the browser's copy number, then the time); the others are listed.

Each upload on its own: a hostile or broken archive is rejected with a one-line reason before
anything of it is written, and only notebooks are extracted; an invalid notebook is rejected here.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .course import (
    EXCHANGE_FILES,
    PART_NAMES,
    GradingError,
    check_course,
    notebook_in,
    one_line,
    read_regular_file,
    submission_dir,
    usable_student_id,
)

STAMP = "%Y-%m-%d %H:%M:%S.%f %Z"   # nbgrader's timestamp.txt: 2025-10-06 21:59:00.000000 UTC
JUNK = re.compile(r"(^|/)(__MACOSX|\.ipynb_checkpoints|\.DS_Store|\._[^/]*|Thumbs\.db|desktop\.ini)(/|$)", re.I)
MOODLE = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assign(?:submission|feedback)_\w*$")
EXCHANGE = re.compile(r"^(?P<student>[^+]+)\+(?P<part>[^+]+)\+(?P<time>[^+]+)(?:\+.*)?$")
CANVAS = re.compile(r"^(?P<name>[^_]+)_(?:late_)?\d+_\d+_", re.I)   # <name>_[LATE_]<user id>_<attachment id>_


@dataclass
class CollectLimits:
    """Bounds checked BEFORE anything of an uploaded archive is written. An LMS's download of
    the whole class is one archive: its entries and total size are a class's."""

    members: int = 2000             # entries in one archive
    member_bytes: int = 64 * 2**20  # one notebook, expanded
    total_bytes: int = 2 * 2**30    # one archive, expanded (what it declares); and all that is read
    ratio: int = 200                # expanded / compressed size of one member (zip bombs)
    spent: int = 0                  # bytes read so far


@dataclass
class Upload:
    """One file of the download: where it is, what is known of its time, and (for notebooks
    and nested archives) its bytes."""

    where: str                       # shown: relative to the download; a zip's members as a.zip/b/c
    folders: tuple[str, ...]         # the folders (and archive names) it is in, outermost first
    name: str
    data: bytes | None = None
    when: datetime | None = None     # UTC, and where it comes from:
    how: str = ""
    student: str = ""
    rank: tuple = field(default_factory=tuple)  # newer is larger: (Canvas re-upload, browser copy, time)


def stamp(when: datetime) -> str:
    """``when`` (UTC) as nbgrader's timestamp.txt writes it."""
    return when.astimezone(timezone.utc).strftime(STAMP)


def _parse_stamp(text: str) -> datetime | None:
    from nbgrader.utils import parse_utc
    try:
        return parse_utc(text.strip()).replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, TypeError):
        return None


def _zip_time(info: zipfile.ZipInfo, zone) -> tuple[datetime | None, str]:
    """The entry's time: its extended timestamp field (UTC) when it has one, else its DOS time
    read in ``zone`` (the course's time zone)."""
    extra, i = info.extra, 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack("<HH", extra[i:i + 4])
        body = extra[i + 4:i + 4 + size]
        if tag == 0x5455 and len(body) >= 5 and body[0] & 1:
            return datetime.fromtimestamp(struct.unpack("<i", body[1:5])[0], timezone.utc), "the zip entry's time"
        i += 4 + size
    try:
        return datetime(*info.date_time, tzinfo=zone).astimezone(timezone.utc), "the zip entry's time"
    except ValueError:
        return None, ""


def _check_archive(archive: zipfile.ZipFile, lim: CollectLimits) -> None:
    """ValueError (one line) for anything hostile or too large in ``archive``, before reading it."""
    infos = archive.infolist()
    if len(infos) > lim.members:
        raise ValueError(f"{len(infos)} entries (limit {lim.members})")
    declared = 0
    for info in infos:
        name, mode = info.filename, info.external_attr >> 16
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
            raise ValueError(f"absolute path in the archive: {name!r}")
        if ".." in re.split(r"[/\\]", name):
            raise ValueError(f"path leaving the folder (..) in the archive: {name!r}")
        if stat.S_ISLNK(mode):
            raise ValueError(f"symbolic link in the archive: {name!r}")
        if info.flag_bits & 0x1:
            raise ValueError(f"encrypted entry in the archive: {name!r}")
        if info.file_size > lim.member_bytes:
            raise ValueError(f"{name!r} expands to {info.file_size:,} bytes (limit {lim.member_bytes:,})")
        if info.compress_size and info.file_size / info.compress_size > lim.ratio:
            raise ValueError(f"{name!r} is compressed {info.file_size // info.compress_size}:1 (a zip bomb?)")
        declared += info.file_size
    if declared > lim.total_bytes:
        raise ValueError(f"expands to {declared:,} bytes (limit {lim.total_bytes:,})")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, lim: CollectLimits) -> bytes:
    try:
        with archive.open(info) as member:  # read at most the declared size + 1: never trust it
            data = member.read(min(info.file_size, lim.member_bytes) + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as exc:
        raise ValueError(f"{info.filename!r} is corrupt ({one_line(exc, 80)})") from None
    if len(data) > info.file_size:
        raise ValueError(f"{info.filename!r} holds more than it declares")
    return _spend(lim, data)


def _spend(lim: CollectLimits, data: bytes) -> bytes:
    lim.spent += len(data)
    if lim.spent > lim.total_bytes:
        raise ValueError(f"the download holds more than {lim.total_bytes:,} bytes of notebooks and archives")
    return data


def _archive(file, where: str, folders: tuple, lim: CollectLimits, zone, rejected: list, depth: int = 0) -> list:
    """Every file in one .zip (``file``: a path or bytes) as Uploads, notebooks, timestamps and
    nested archives read. ValueError with a one-line reason for anything hostile or broken (a
    nested archive's to ``rejected``, on its own); nothing is extracted to disk."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(file) if isinstance(file, bytes) else file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"not a readable zip archive ({one_line(exc, 80)})") from None
    out: list[Upload] = []
    with archive:
        _check_archive(archive, lim)
        stamps = {}
        for info in archive.infolist():
            if info.is_dir():
                continue
            parts = [p for p in re.split(r"[/\\]", info.filename) if p]
            inner = folders + (Path(where).stem,) + tuple(parts[:-1])
            up = Upload(f"{where}/{'/'.join(parts)}", inner, parts[-1])
            up.when, up.how = _zip_time(info, zone)
            low = up.name.lower()
            if low.endswith((".ipynb", ".zip")) or low in EXCHANGE_FILES:
                up.data = _read_member(archive, info, lim)
            if low.endswith(".zip") and not JUNK.search(info.filename):
                try:
                    if depth >= 1:
                        raise ValueError("a zip inside a zip inside a zip: unpack it first")
                    out += _archive(up.data, up.where, inner, lim, zone, rejected, depth + 1)
                except ValueError as exc:
                    rejected.append((up.where, one_line(exc, 200)))
                continue
            if low == "timestamp.txt":
                stamps[inner] = _parse_stamp(up.data.decode("utf-8", "replace"))
            out.append(up)
        for up in out:
            if stamps.get(up.folders) and up.name.lower().endswith(".ipynb"):
                up.when, up.how = stamps[up.folders], "its timestamp.txt"
    return out


def _walk(source: Path, lim: CollectLimits, zone, rejected: list) -> list[Upload]:
    """Every file under ``source`` (zips opened) as Uploads; links, devices and bad archives to
    ``rejected``."""
    out: list[Upload] = []
    for top, dirs, files in os.walk(source):
        dirs.sort()
        here = Path(top)
        for name in sorted(dirs + files):
            path = here / name
            where = str(path.relative_to(source))
            if name in dirs and not path.is_symlink():
                continue
            folders = tuple(path.relative_to(source).parts[:-1])
            try:
                if path.is_symlink() or not path.is_file():
                    raise ValueError("not a regular file (link, folder or device)")
                if name.lower().endswith(".zip") and not JUNK.search(where):
                    out += _archive(path, where, folders, lim, zone, rejected)
                    continue
                up = Upload(where, folders, name)
                mtime = datetime.fromtimestamp(os.lstat(path).st_mtime, timezone.utc)
                up.when, up.how = mtime, "the file's modification time, a last resort"
                if name.lower().endswith(".ipynb") or name.lower() in EXCHANGE_FILES:
                    up.data = _spend(lim, read_regular_file(path, lim.member_bytes))
                out.append(up)
            except (ValueError, OSError) as exc:
                rejected.append((where, one_line(exc, 200)))
    beside = {u.folders: _parse_stamp(u.data.decode("utf-8", "replace")) for u in out
              if u.name.lower() == "timestamp.txt" and u.data is not None}
    for up in out:
        if beside.get(up.folders) and up.name.lower().endswith(".ipynb"):
            up.when, up.how = beside[up.folders], "its timestamp.txt"
    return out


def _part_pattern(part: str) -> re.Pattern:
    words = [re.escape(w) for w in re.split(r"[-_\s]+", part) if w]
    return re.compile(r"(?<!\d)" + r"[-_\s]*".join(words) + r"(?![a-z])", re.I)


def _clean(name: str) -> str:
    return re.sub(r"\s+", "", name).strip("_-.")


def _student(up: Upload, part: str, prefix: str) -> str:
    """Who ``up`` belongs to: an LMS's folder or prefix, else the name's prefix, else its folder."""
    plain = ""
    for folder in reversed(up.folders):
        if _part_pattern(part).fullmatch(folder.strip()):
            continue
        for pattern in (MOODLE, EXCHANGE, CANVAS):
            m = pattern.match(folder)
            if m:
                return _clean(m.groupdict().get("name") or m["student"])
        plain = plain or _clean(folder)
    m = CANVAS.match(prefix)
    return _clean(m["name"] if m else re.split(r"_+", prefix.strip(" _-"))[0]) or plain


def _classify(up: Upload, part: str, patterns: dict) -> str | None:
    """Set ``up.student`` and ``up.rank`` when ``up`` is a submission of ``part``; else why not."""
    stem = up.name[:-len(".ipynb")]
    m = patterns[part].search(stem)
    if not m:
        other = [p for p, pattern in patterns.items() if p != part and pattern.search(stem)]
        return f"another part ({other[0]}): collect it with --part {other[0]}" if other else "no part in the name"
    after = stem[m.end():]
    resub = re.match(r"\s*-(\d+)", after)
    copy = re.search(r"\((\d+)\)", after)
    up.student = _student(up, part, stem[:m.start()])
    up.rank = (int(resub[1]) if resub else 0, int(copy[1]) if copy else 0,
               up.when or datetime.min.replace(tzinfo=timezone.utc))
    return None


def check_notebook(data: bytes) -> None:
    """ValueError (one line) when ``data`` is not a valid Jupyter notebook."""
    import nbformat

    os.environ.setdefault("NBFORMAT_VALIDATOR", "fastjsonschema")
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except (UnicodeDecodeError, nbformat.reader.NotJSONError):
        raise ValueError("not a notebook: not JSON") from None
    except Exception as exc:  # noqa: BLE001 - nbformat's readers and validators raise many kinds
        raise ValueError(f"not a valid notebook: {one_line(exc, 120)}") from None


def _choose(candidates: list[Upload], rejected: list, skipped: list) -> dict[str, Upload]:
    """The newest valid notebook of each student; the others to ``skipped``/``rejected``."""
    by_student: dict[str, list[Upload]] = {}
    for up in candidates:
        if not up.student or not usable_student_id(up.student):
            rejected.append((up.where, f"cannot tell whose it is (student {up.student!r}): use --map student=file"))
            continue
        try:
            check_notebook(up.data)
        except ValueError as exc:
            rejected.append((up.where, str(exc)))
            continue
        by_student.setdefault(up.student, []).append(up)
    chosen = {}
    for student, ups in sorted(by_student.items()):
        ups.sort(key=lambda u: u.rank)
        newest = ups[-1]
        ties = [u for u in ups[:-1] if u.rank == newest.rank and u.data != newest.data]
        if ties:
            for u in ups:
                rejected.append((u.where, f"{len(ties) + 1} files for {student} and nothing says which is "
                                 "newer: pick one with --map"))
            continue
        chosen[student] = newest
        for u in ups[:-1]:
            skipped.append((u.where, f"older resubmission of {student}" if u.data != newest.data
                            else f"a copy of {student}'s {newest.where}"))
    return chosen


def _mapped(ups: list[Upload], mapping: dict[str, str], rejected: list) -> dict[str, Upload]:
    """{student: upload} for each ``--map student=file`` (the file named by its place in the
    download or its name, any case)."""
    out = {}
    for student, file in mapping.items():
        want = file.strip().lower()
        found = [u for u in ups if u.data is not None and want in (u.where.lower(), u.name.lower())]
        if len(found) != 1:
            rejected.append((file, f"--map {student}={file}: " + ("no such file in the download" if not found else
                                                                 f"{len(found)} files of that name: give its path")))
            continue
        try:
            check_notebook(found[0].data)
        except ValueError as exc:
            rejected.append((found[0].where, str(exc)))
            continue
        found[0].student = student
        out[student] = found[0]
    return out


def collect(course: Path, source: Path, part: str, say=print, mapping: dict[str, str] | None = None) -> dict:
    """Every file in ``source`` (an LMS download: files, folders, .zip archives) collected to
    submitted/<student>/<part>/ with its timestamp.txt, or listed with its reason.

    Returns {"collected": [(student, file)], "rejected": [(file, reason)] (hostile, broken, not a
    notebook, nobody's), "skipped": [(file, reason)] (older resubmissions, no part, not a
    notebook), "other": [(file, reason)] (other parts' files, system junk: listed, no error)}."""
    from .deadlines import course_zone

    course, source = check_course(course), Path(source).resolve()
    if not source.is_dir():
        raise GradingError(f"{source} is not a folder of downloaded submissions")
    zone, lim = course_zone(course), CollectLimits()
    rejected, skipped, other = [], [], []  # [(file, reason)]
    ups = _walk(source, lim, zone, rejected)
    chosen = _mapped(ups, mapping or {}, rejected)
    taken = {id(u) for u in chosen.values()}
    patterns = {p: _part_pattern(p) for p in dict.fromkeys((part, *PART_NAMES))}
    candidates = []
    for up in ups:
        low = up.name.lower()
        if id(up) in taken or low in EXCHANGE_FILES:
            continue
        if JUNK.search(up.where):
            other.append((up.where, "system or checkpoint file"))
        elif not low.endswith(".ipynb"):
            skipped.append((up.where, "not a notebook"))
        else:
            why = _classify(up, part, patterns)
            if why is None:
                candidates.append(up)
            else:
                (other if why.startswith("another part") else skipped).append((up.where, why))
    for student, up in _choose([u for u in candidates if u.student not in chosen], rejected, skipped).items():
        chosen.setdefault(student, up)
    collected = []
    for student, up in sorted(chosen.items()):
        folder = submission_dir(course, student, part)
        if folder.is_symlink():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        notebook_in(folder, part).write_bytes(up.data)
        if up.when is not None:
            (folder / "timestamp.txt").write_text(stamp(up.when) + "\n")
        collected.append((student, up.where))
    _say(say, part, chosen, rejected, skipped, other)
    return {"collected": collected, "rejected": rejected, "skipped": skipped, "other": other}


def _say(say, part: str, chosen: dict[str, Upload], rejected, skipped, other) -> None:
    say(f"collected {len(chosen)} submission(s) of {part}; rejected {len(rejected)} file(s), "
        f"skipped {len(skipped)}" + (f", {len(other)} not for this part" if other else ""))
    for student, up in sorted(chosen.items()):
        when = f"{stamp(up.when)} ({up.how})" if up.when else "no time"
        say(f"   {student:<16} {up.where}: {when}")
    for label, rows in (("!! rejected", rejected), ("!! skipped", skipped), ("   not taken", other)):
        for name, reason in rows:
            say(f"{label} {name}: {reason}")
    last = sum(up.how.endswith("a last resort") for up in chosen.values())
    if last:
        say(f"!! {last} submission(s) dated by the file's modification time: when it was downloaded or "
            "unpacked, perhaps not when it was submitted (edit submitted/<student>/<part>/timestamp.txt)")
    if rejected or skipped:
        say("to take a file the names did not place: collect ... --map student=FILE "
            "(make collect ... MAP='student=FILE'); then collect again")
