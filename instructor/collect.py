"""Collecting uploads: downloaded files and .zip archives -> submitted/<student>/<part>/<part>.ipynb.

Each upload on its own: a hostile or broken one is rejected with a one-line reason, nothing of an
archive is written before it is checked, and nothing but the notebooks themselves is extracted.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from .course import GradingError, check_course, notebook_in, one_line, read_regular_file, submission_dir


def collect_regexp(part: str) -> str:
    """How a downloaded file is named: ``<student>_<part>.ipynb`` or ``<student>_<anything>_<part>.ipynb``."""
    return (r"(?:.*/)?(?P<student_id>[A-Za-z0-9.@-]+)_(?:.*_)?(?P<file_id>"
            + re.escape(part) + r")\.ipynb$")


@dataclass
class CollectLimits:
    """Bounds checked BEFORE anything of an uploaded archive is written."""

    members: int = 200              # entries in one archive
    member_bytes: int = 64 * 2**20  # one notebook, expanded
    total_bytes: int = 256 * 2**20  # one archive, expanded (what it declares and what it holds)
    ratio: int = 200                # expanded / compressed size of one member (zip bombs)


def _archive_notebooks(path: Path, pattern: re.Pattern, lim: CollectLimits) -> list[tuple[str, bytes]]:
    """The notebooks in one .zip that match ``pattern``: [(student, bytes)]. Raises ValueError with
    a one-line reason for anything hostile or broken; nothing is extracted to disk."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"not a readable zip archive ({one_line(exc, 80)})") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > lim.members:
            raise ValueError(f"{len(infos)} entries (limit {lim.members})")
        declared = 0
        for info in infos:
            name = info.filename
            mode = info.external_attr >> 16
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
        found = []
        for info in infos:
            m = pattern.match(info.filename)
            if info.is_dir() or not m:
                continue
            try:
                with archive.open(info) as member:  # read at most the declared size + 1: never trust it
                    data = member.read(min(info.file_size, lim.member_bytes) + 1)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{info.filename!r} is corrupt ({one_line(exc, 80)})") from None
            if len(data) > info.file_size:
                raise ValueError(f"{info.filename!r} holds more than it declares")
            found.append((m["student_id"], data))
        return found


def collect(course: Path, source: Path, part: str, say=print) -> dict:
    """Downloaded files and .zip archives in ``source`` -> submitted/<student>/<part>/<part>.ipynb.

    Each upload on its own: a bad one (hostile or broken archive, link, oversized file) is reported
    with a one-line reason and skipped; everyone else is collected. Archives are checked (entry
    count, sizes, compression ratio, traversal, absolute and link entries) before anything of
    them is read, and nothing is extracted to disk but the notebooks themselves.
    Returns {"collected": [(student, file)], "rejected": [(file, reason)]}."""
    course = check_course(course)
    source = Path(source).resolve()
    if not source.is_dir():
        raise GradingError(f"{source} is not a folder of downloaded submissions")
    pattern = re.compile(collect_regexp(part))
    lim = CollectLimits()
    collected: list[tuple[str, str]] = []
    rejected: list[tuple[str, str]] = []
    notebooks: dict[str, tuple[str, bytes]] = {}
    for path in sorted(source.iterdir()):
        name = path.name
        try:
            if path.is_symlink() or not path.is_file():
                raise ValueError("not a regular file (link, folder or device)")
            if name.endswith(".zip"):
                found = _archive_notebooks(path, pattern, lim)
                if not found:
                    raise ValueError(f"no notebook named <student>_{part}.ipynb inside")
                for student, data in found:
                    notebooks[student] = (name, data)
            elif pattern.match(name):
                m = pattern.match(name)
                notebooks[m["student_id"]] = (name, read_regular_file(path, lim.member_bytes))
            else:
                continue  # another part's file, or not a submission
        except (ValueError, OSError) as exc:
            rejected.append((name, one_line(exc, 200)))
    for student, (name, data) in sorted(notebooks.items()):
        if re.search(r"^[-.]", student):
            rejected.append((name, f"unusable student id {student!r}"))
            continue
        folder = submission_dir(course, student, part)
        if folder.is_symlink():
            folder.unlink()
        elif folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        notebook_in(folder, part).write_bytes(data)
        collected.append((student, name))
    say(f"collected {len(collected)} submission(s) of {part}; rejected {len(rejected)} upload(s)")
    for name, reason in rejected:
        say(f"!! rejected {name}: {reason}")
    return {"collected": collected, "rejected": rejected}
