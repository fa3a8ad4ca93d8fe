"""Collecting untrusted uploads: each archive on its own, hostile ones rejected with a reason
before anything of them is written, everyone else collected."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import zipfile

import nbformat
import pytest

from instructor import collect
from instructor.__main__ import main
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
    zip_with(src / "many.zip", [(f"m{i}_{PART}.ipynb", "") for i in range(collect.CollectLimits().members + 1)])
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


# ---------------------------------------------------------------------------
# LMS downloads: every file collected or listed with its reason, every submission dated
# ---------------------------------------------------------------------------

P3 = "03-training"


def notebook(marker: str) -> str:
    """A valid notebook told apart from others by ``marker``."""
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"x = {marker!r}", id="c1")]))


def zip_dated(path, members):
    """A zip whose entries carry DOS times only (no extended timestamp), as Canvas and Moodle write them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, when in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=when), data)


def new_course(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("")
    src = tmp_path / "download"
    src.mkdir()
    return course, src


def run(course, src, part=P3, mapping=None):
    said = []
    got = collect.collect(course, src, part, say=said.append, mapping=mapping)
    listed = {name: reason for name, reason in got["rejected"] + got["skipped"] + got["other"]}
    return got, listed, said


def submitted(course, student, part=P3):
    folder = course / "submitted" / student / part
    return (folder / f"{part}.ipynb").read_text(), (folder / "timestamp.txt").read_text().strip()


NOON = (2025, 10, 6, 12, 0, 0)


@pytest.fixture
def canvas(tmp_path):
    """Canvas's "Download Submissions" zip: <name>_[LATE_]<user id>_<attachment id>_<file>, erin's
    three uploads of the same file (-1, -2), a PDF, a file that is not JSON, a JSON file that is
    not a notebook, and a notebook named without its part."""
    course, src = new_course(tmp_path)
    zip_dated(src / "submissions.zip", [
        ("adams_1001_5001_03-training.ipynb", notebook("adams"), NOON),
        ("brown_LATE_1002_5002_03-training.ipynb", notebook("brown"), (2025, 10, 8, 9, 30, 0)),
        ("erin_1005_5004_03-training.ipynb", notebook("erin first"), (2025, 10, 5, 8, 0, 0)),
        ("erin_1005_5005_03-training-1.ipynb", notebook("erin second"), (2025, 10, 5, 9, 0, 0)),
        ("erin_1005_5006_03-training-2.ipynb", notebook("erin third"), (2025, 10, 5, 10, 0, 0)),
        ("carr_1003_5003_report.pdf", b"%PDF-1.4", NOON),
        ("dunn_1004_5007_03-training.ipynb", "this is not JSON", NOON),
        ("fox_1006_5008_03-training.ipynb", '{"cells": 5}', NOON),
        ("gray_1007_5009_homework.ipynb", notebook("gray"), NOON),
    ])
    return course, src


def test_canvas_download_every_file_collected_or_listed(canvas):
    course, src = canvas
    got, listed, said = run(course, src)
    assert sorted(s for s, _ in got["collected"]) == ["adams", "brown", "erin"], said
    assert submitted(course, "erin")[0] == notebook("erin third"), "Canvas's -2 is the latest upload"
    for older in ("erin_1005_5004_03-training.ipynb", "erin_1005_5005_03-training-1.ipynb"):
        assert listed[f"submissions.zip/{older}"] == "older resubmission of erin"
    assert listed["submissions.zip/carr_1003_5003_report.pdf"] == "not a notebook"
    assert listed["submissions.zip/dunn_1004_5007_03-training.ipynb"] == "not a notebook: not JSON"
    assert listed["submissions.zip/fox_1006_5008_03-training.ipynb"].startswith("not a valid notebook")
    assert listed["submissions.zip/gray_1007_5009_homework.ipynb"] == "no part in the name"
    zipped = [n for n in zipfile.ZipFile(src / "submissions.zip").namelist()]
    assert len(got["collected"]) + len(listed) == len(zipped), "every file accounted for"
    assert all(len(r.splitlines()) == 1 for r in listed.values())
    assert [p.name for p in (course / "submitted").iterdir()] and not (course / "submitted" / "dunn").exists()
    assert any("--map student=FILE" in line for line in said)


def test_canvas_times_come_from_the_zip_entries(canvas):
    """No extended timestamp: the entry's DOS time, read in the course's time zone (UTC here)."""
    course, src = canvas
    run(course, src)
    assert submitted(course, "brown")[1] == "2025-10-08 09:30:00.000000 UTC"
    assert submitted(course, "erin")[1] == "2025-10-05 10:00:00.000000 UTC"
    (course / "deadlines.toml").write_text('[policy]\ntimezone = "Europe/Berlin"\n')
    got, _, said = run(course, src)
    assert submitted(course, "brown")[1] == "2025-10-08 07:30:00.000000 UTC", "Berlin summer time is UTC+2"
    assert any("brown" in line and "the zip entry's time" in line for line in said)


def test_map_places_a_file_the_names_did_not(canvas, capsys):
    course, src = canvas
    args = ["--course", str(course), "collect", str(src), "--part", P3]
    assert main(args) == 1, "skipped and rejected files: exit 1"
    out = capsys.readouterr().out
    assert "!! skipped submissions.zip/gray_1007_5009_homework.ipynb: no part in the name" in out
    assert main(args + ["--map", "gray=gray_1007_5009_homework.ipynb"]) == 1
    assert submitted(course, "gray")[0] == notebook("gray")
    assert main(args + ["--map", "nobody=missing.ipynb"]) == 1
    assert "--map nobody=missing.ipynb: no such file in the download" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(args + ["--map", "gray"])


def test_moodle_zip_and_unpacked_folders(tmp_path):
    """Moodle's "Download all submissions": a folder per learner, <Full Name>_<id>_assignsubmission_file_,
    holding the file as uploaded (any name, or a zip of it), and macOS's __MACOSX junk."""
    course, src = new_course(tmp_path)
    inner = io.BytesIO()
    zip_dated(inner, [("work/03-training.ipynb", notebook("bob"), NOON)])
    members = [
        ("Erin Smith_1005_assignsubmission_file_/03-training.ipynb", notebook("erin"), NOON),
        ("Ann Lee_1001_assignsubmission_file_/ann 03-Training (1).ipynb", notebook("ann"), NOON),
        ("Bob Ray_1002_assignsubmission_file_/bob-work.zip", inner.getvalue(), NOON),
        ("Cy Ho_1003_assignsubmission_file_/essay.docx", b"PK", NOON),
        ("__MACOSX/Erin Smith_1005_assignsubmission_file_/._03-training.ipynb", b"\0\5\26\7", NOON),
    ]
    zip_dated(src / "Part 3-Training-42.zip", members)
    got, listed, said = run(course, src)
    assert sorted(s for s, _ in got["collected"]) == ["AnnLee", "BobRay", "ErinSmith"], said
    assert submitted(course, "BobRay")[0] == notebook("bob"), "a learner's own zip inside Moodle's"
    assert listed["Part 3-Training-42.zip/Cy Ho_1003_assignsubmission_file_/essay.docx"] == "not a notebook"
    assert "system" in listed["Part 3-Training-42.zip/__MACOSX/Erin Smith_1005_assignsubmission_file_/"
                              "._03-training.ipynb"]
    # the same download, unpacked into per-student folders
    (tmp_path / "unpacked").mkdir()
    course2, src2 = new_course(tmp_path / "unpacked")
    for name, data, _ in members:
        (src2 / name).parent.mkdir(parents=True, exist_ok=True)
        (src2 / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    got2, _, said2 = run(course2, src2)
    assert sorted(s for s, _ in got2["collected"]) == ["AnnLee", "BobRay", "ErinSmith"], said2


def test_plain_folder_of_odd_names(tmp_path):
    """Spaces, a browser's (1) copy, another case, a bare <part>.ipynb in a student's folder,
    another part's file, a non-notebook; a file dated by its modification time says so."""
    course, src = new_course(tmp_path)
    files = {
        "alice_03-training.ipynb": notebook("alice old"),
        "alice_03-training (1).ipynb": notebook("alice new"),
        "bob 03-training.ipynb": notebook("bob"),
        "cara_03-Training.ipynb": notebook("cara"),
        "dave/03-training.ipynb": notebook("dave"),
        "eve_02-neural-networks.ipynb": notebook("eve"),
        "notes.txt": "hello",
    }
    for i, (name, text) in enumerate(files.items()):
        (src / name).parent.mkdir(exist_ok=True)
        (src / name).write_text(text)
        os.utime(src / name, (1759752000 + 60 * i, 1759752000 + 60 * i))  # 2025-10-06 12:00 UTC on
    got, listed, said = run(course, src)
    assert sorted(s for s, _ in got["collected"]) == ["alice", "bob", "cara", "dave"], said
    assert submitted(course, "alice")[0] == notebook("alice new"), "the browser's (1) is the later download"
    assert listed["alice_03-training.ipynb"] == "older resubmission of alice"
    assert listed["eve_02-neural-networks.ipynb"].startswith("another part (02-neural-networks)")
    assert listed["notes.txt"] == "not a notebook"
    assert submitted(course, "dave")[1] == "2025-10-06 12:04:00.000000 UTC"
    assert any("modification time" in line and "last resort" in line for line in said)
    assert len(got["collected"]) + len(listed) == len(files)


def test_a_clean_download_exits_0_and_other_parts_are_no_error(tmp_path, capsys):
    course, src = new_course(tmp_path)
    (src / "alice_03-training.ipynb").write_text(notebook("alice"))
    (src / "alice_01-tensors.ipynb").write_text(notebook("alice 1"))
    assert main(["--course", str(course), "collect", str(src), "--part", P3]) == 0
    out = capsys.readouterr().out
    assert "collected 1 submission(s) of 03-training; rejected 0 file(s), skipped 0, 1 not for this part" in out
    assert "not taken alice_01-tensors.ipynb: another part (01-tensors): collect it with --part 01-tensors" in out


def test_nbgrader_exchange_takes_the_latest_and_its_timestamp(tmp_path):
    """nbgrader's exchange inbound: <student>+<part>+<time>/ with the notebook and timestamp.txt."""
    course, src = new_course(tmp_path)
    for when, text in (("2025-10-06 20:00:00.000000 UTC", "first"), ("2025-10-07 09:15:00.000000 UTC", "second")):
        folder = src / "inbound" / f"zoe+{P3}+{when}"
        folder.mkdir(parents=True)
        (folder / f"{P3}.ipynb").write_text(notebook(text))
        (folder / "timestamp.txt").write_text(when)
    got, listed, said = run(course, src)
    assert got["collected"] == [("zoe", f"inbound/zoe+{P3}+2025-10-07 09:15:00.000000 UTC/{P3}.ipynb")], said
    assert submitted(course, "zoe") == (notebook("second"), "2025-10-07 09:15:00.000000 UTC")
    assert list(listed.values()) == ["older resubmission of zoe"]
    assert any("its timestamp.txt" in line for line in said)


def test_a_bad_archive_inside_the_class_download_costs_only_its_learner(tmp_path):
    """A learner's hostile or broken zip inside Moodle's zip is rejected on its own; the class is collected."""
    course, src = new_course(tmp_path)
    slip, bomb = io.BytesIO(), io.BytesIO()
    zip_with(slip, [(f"../../evil_{P3}.ipynb", notebook("evil"))])
    zip_with(bomb, [(f"{P3}.ipynb", b"\0" * (64 * 2**20))])
    zip_dated(src / "class.zip", [
        ("Erin Smith_1005_assignsubmission_file_/03-training.ipynb", notebook("erin"), NOON),
        ("Sly Fox_1006_assignsubmission_file_/work.zip", slip.getvalue(), NOON),
        ("Big Bo_1007_assignsubmission_file_/work.zip", bomb.getvalue(), NOON),
        ("Cy Ho_1003_assignsubmission_file_/corrupt.zip", b"PK\x03\x04 not a zip", NOON),
    ])
    got, listed, said = run(course, src)
    assert [s for s, _ in got["collected"]] == ["ErinSmith"], said
    assert "(..)" in listed["class.zip/Sly Fox_1006_assignsubmission_file_/work.zip"]
    assert "zip bomb" in listed["class.zip/Big Bo_1007_assignsubmission_file_/work.zip"]
    assert "not a readable zip" in listed["class.zip/Cy Ho_1003_assignsubmission_file_/corrupt.zip"]
    assert not list(tmp_path.rglob("evil*"))
