"""Collecting untrusted uploads: each archive on its own, hostile ones rejected with a reason
before anything of them is written, everyone else collected."""

from __future__ import annotations

import io
import stat
import subprocess
import sys
import zipfile

import nbformat
import pytest

from instructor import collect
from instructor.course import ROOT

PART = "01-tensors"


def notebook_text() -> str:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))


def zip_with(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode:
                info.external_attr = mode[0] << 16
            zf.writestr(info, data)


@pytest.fixture
def uploads(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("")
    src = tmp_path / "downloads"
    src.mkdir()
    nb = notebook_text()
    (src / f"alice_{PART}.ipynb").write_text(nb)
    zip_with(src / "bob.zip", [(f"bob_{PART}.ipynb", nb)])
    zip_with(src / "slip.zip", [(f"../../evil_{PART}.ipynb", nb)])
    zip_with(src / "absolute.zip", [(f"/tmp/abs_{PART}.ipynb", nb)])
    zip_with(src / "link.zip", [(f"lnk_{PART}.ipynb", "/etc/passwd", stat.S_IFLNK | 0o777)])
    zip_with(src / "bomb.zip", [(f"bomb_{PART}.ipynb", b"\0" * (200 * 2**20))])  # 200 MB of zeros: ~200 KB
    zip_with(src / "many.zip", [(f"m{i}_{PART}.ipynb", nb) for i in range(500)])
    (src / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not a zip at all")
    good = io.BytesIO()
    zip_with(good, [(f"carol_{PART}.ipynb", nb)])
    data = bytearray(good.getvalue())
    data[40:60] = b"\xff" * 20  # damage the compressed member
    (src / "damaged.zip").write_bytes(bytes(data))
    (src / f"dave_{PART}.ipynb").symlink_to(course / "nbgrader_config.py")
    return course, src


def test_hostile_archives_rejected_honest_ones_collected(uploads):
    course, src = uploads
    said = []
    outcome = collect.collect(course, src, PART, say=said.append)
    assert sorted(s for s, _ in outcome["collected"]) == ["alice", "bob"], said
    reasons = dict(outcome["rejected"])
    assert "(..)" in reasons["slip.zip"]
    assert "absolute path" in reasons["absolute.zip"]
    assert "symbolic link" in reasons["link.zip"]
    assert "zip bomb" in reasons["bomb.zip"] or "expands" in reasons["bomb.zip"]
    assert "entries" in reasons["many.zip"]
    assert "not a readable zip" in reasons["corrupt.zip"]
    assert "damaged.zip" in reasons
    assert "regular file" in reasons[f"dave_{PART}.ipynb"]
    assert all(len(r.splitlines()) == 1 for r in reasons.values())
    assert not (course.parent / f"evil_{PART}.ipynb").exists() and not list(course.parent.glob("evil*"))
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob"]
    assert not (course / "downloaded").exists(), "nothing is extracted to disk but the notebooks"


def test_collect_exits_1_when_anything_was_rejected(uploads):
    course, src = uploads
    proc = subprocess.run([sys.executable, "-m", "instructor", "--course", str(course), "collect", str(src),
                           "--part", PART], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "rejected slip.zip" in proc.stdout and "collected 2 submission(s)" in proc.stdout
