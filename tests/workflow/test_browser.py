"""What learners and instructors see, in a real browser (headless Chromium through Playwright).

Two JupyterLab servers started as the Makefile starts them, each on 127.0.0.1, a free port
and a token, in a temporary copy of the course:

- learner (`make lab`): notebooks/ with jupyter/learner + jupyter/common on JUPYTER_CONFIG_PATH;
- instructor (`make formgrader`): the course root with jupyter/common, a gradebook with known
  scores (built with nbgrader's API, as tests/instructor/test_report.py does) and the class report.

Screenshots of every step go to test-output/browser/; the README's pictures (a part open in
JupyterLab, a learner's feedback page, the class report's mistakes) are taken here too, and
`make pictures` (COURSE_PICTURES=docs/pictures) writes them where the README shows them.
Debian's `chromium` is driven through ``executable_path`` (Playwright's own browser download is
never used); without it the module is skipped with one line, except in CI (CI=true), where it
fails. Every request to anything but 127.0.0.1 is refused, and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from instructor import feedback, mistakes, report, testing, verdicts
from instructor.course import ROOT, is_test_cell
from tests.instructor import test_report

ROOT = ROOT
OUT = ROOT / "test-output" / "browser"
PARTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if (p / f"{p.name}.ipynb").exists())
FIRST = "01-tensors"
WIDGETS = "03-training"          # a solution whose training loop shows tqdm progress widgets
pytestmark = [pytest.mark.slow, pytest.mark.course_data(WIDGETS)]
NEWS = "official Jupyter news"   # JupyterLab's news question, switched off for the course
CREATE_ASSIGNMENT = ".lm-TabBar-tab[title*='Create Assignment']"  # nbgrader's sidebar panel
SERVER_START = 90                # seconds, bounded waits (the machine may be busy)
UI = 60_000                      # ms, for anything the page shows
RUN = 120_000                    # ms, for kernels to run cells

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PICTURES = os.environ.get("COURSE_PICTURES")  # `make pictures`: the README's pictures are written there too


def make_recipe(target: str) -> dict:
    """How `make TARGET` starts JupyterLab: folder, JUPYTER_CONFIG_PATH and default URL, read
    from the Makefile itself (``make -n``), so the servers below start as the Makefile's do."""
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_CONFIG_PATH", "MAKEFLAGS")}
    proc = subprocess.run(["make", "-n", "-o", "install", target, f"VENV={sys.prefix}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    line = next(x for x in proc.stdout.splitlines() if " lab " in x)
    folder = re.match(r"cd (\S+) &&", line)
    return {
        "folder": folder[1] if folder else ".",
        "config_path": [Path(p) for p in re.search(r"JUPYTER_CONFIG_PATH=(\S+)", line)[1].split(":")],
        "default_url": re.search(r"--LabApp.default_url=(\S+)", line)[1],
        "allow_root": "--allow-root" in line,
    }


def test_make_targets_use_the_course_jupyter_config():
    lab, formgrader = make_recipe("lab"), make_recipe("formgrader")
    assert lab["folder"] == "notebooks" and lab["default_url"] == f"/lab/tree/{FIRST}/{FIRST}.ipynb"
    assert lab["config_path"] == [ROOT / "jupyter" / "learner", ROOT / "jupyter" / "common"]
    assert formgrader["folder"] == "." and formgrader["default_url"] == "/formgrader"
    assert formgrader["config_path"] == [ROOT / "jupyter" / "common"], "instructors keep every nbgrader panel"
    assert lab["allow_root"] == formgrader["allow_root"] == (os.getuid() == 0)


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_browser() -> str:
    """Debian's chromium and Playwright for Python, or skip (fail in CI) with one line."""
    path = chromium_path()
    reason = None
    if path is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "Playwright for Python is not installed (pip install playwright)"
    if reason:
        if IN_CI:
            pytest.fail(f"browser tests are required in CI: {reason}", pytrace=False)
        pytest.skip(reason)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shot(page, name: str, full_page: bool = False) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=full_page)


def picture(page, name: str) -> None:
    """A README picture: :func:`shot`, copied to $COURSE_PICTURES when set (`make pictures`)."""
    shot(page, name)
    if PICTURES:
        Path(PICTURES).mkdir(parents=True, exist_ok=True)
        shutil.copy(OUT / f"{name}.png", Path(PICTURES) / f"{name}.png")


def write_user_settings(config_dir: Path) -> None:
    """Test-only user settings: render every cell (no windowing), so images below the fold
    load too; no autosave."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for name, value in settings.items():
        path = config_dir / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@contextmanager
def lab_server(root: Path, target: str, home: Path):
    """`jupyter lab` as `make TARGET` runs it, in ``root`` (a copy of the course), on 127.0.0.1,
    a free port and a token; yields its base URL and token."""
    recipe = make_recipe(target)
    root = root / recipe["folder"]
    port, token = free_port(), uuid.uuid4().hex
    config_dir = home / ".jupyter"
    write_user_settings(config_dir)
    env = {
        **os.environ,
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        "JUPYTER_CONFIG_PATH": os.pathsep.join(str(p) for p in recipe["config_path"]),
        "JUPYTER_CONFIG_DIR": str(config_dir),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "HOME": str(home),
        "TQDM_MININTERVAL": "0.5",
    }
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--LabApp.default_url={recipe['default_url']}", *(["--allow-root"] if recipe["allow_root"] else [])]
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not start within {SERVER_START} s:\n"
                            + (home / "server.log").read_text()[-3000:], pytrace=False)
            time.sleep(0.5)
        yield base, token
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()


def make_learner_copy(folder: Path) -> Path:
    """notebooks/ as a learner has it, plus one notebook with every exercise solved."""
    shutil.copytree(ROOT / "notebooks", folder)
    solved = testing.student_notebook(ROOT, FIRST, "all")
    nbformat.write(solved, folder / FIRST / f"{FIRST}-solved.ipynb")
    return folder


def make_instructor_copy(folder: Path) -> Path:
    """The course root: every part's solution and release, a gradebook with known scores, the report."""
    folder.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", folder)
    shutil.copytree(ROOT / "solutions", folder / "solutions")
    shutil.copytree(ROOT / "notebooks", folder / "notebooks")
    (folder / "exchange").mkdir()  # as `make formgrader` does
    test_report.make_gradebook(folder)
    (folder / "autograded").mkdir(exist_ok=True)
    test_report.write_grading_report(folder, with_review=False)
    released = nbformat.read(ROOT / "notebooks" / FIRST / f"{FIRST}.ipynb", as_version=4)
    for part, student in test_report.SCORES:
        for kind in ("submitted", "autograded"):
            path = folder / kind / student / part / f"{part}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(released, path)
    plant_mistakes(folder)
    report.build(folder, say=lambda *_: None)
    return folder


def plant_mistakes(folder: Path) -> dict[str, dict[int, tuple[str, str]]]:
    """Part 1's messages given ids (the tagging tool, on this copy), then ben, cat and dan's graded
    Part 1 failing tests with those messages, dan's second test with an error no message names;
    ben's submission answered, and the feedback pages rendered. Returns what was planted:
    {student: {test cell index: (error type, message)}}."""
    source = folder / "solutions" / FIRST / f"{FIRST}.ipynb"
    mistakes.tag_notebook(source)
    tests = [c for c in nbformat.read(source, as_version=4).cells if is_test_cell(c)]

    def said(i: int) -> tuple[str, str]:
        return "AssertionError", verdicts.templates(tests[i].source)[0].text.replace(verdicts.HOLE, "3")

    planted = {"ben": {0: said(0), 1: said(1)}, "cat": {0: said(0)},
               "dan": {1: ("ZeroDivisionError", "division by zero")}}
    for student, failed in planted.items():
        path = folder / "autograded" / student / FIRST / f"{FIRST}.ipynb"
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(c for c in nb.cells if is_test_cell(c)):
            if i in failed:
                ename, evalue = failed[i]
                cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[evalue])]
        nbformat.write(nb, path)
    answered = testing.student_notebook(ROOT, FIRST, "all")
    nbformat.write(answered, folder / "submitted" / "ben" / FIRST / f"{FIRST}.ipynb")
    feedback.feedback(folder, [FIRST], say=lambda *_: None)
    return planted


@pytest.fixture(scope="module")
def browser():
    path = require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.getuid() == 0 else []
        b = p.chromium.launch(executable_path=path, headless=True, args=[*args, "--disable-dev-shm-usage"])
        yield b
        b.close()


def new_page(browser, base: str, token: str, blocked: list):
    """A page that can reach the server under test and nothing else."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})

    def route(r):
        if re.match(r"^https?://127\.0\.0\.1(:\d+)?/", r.request.url):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(UI)
    page.goto(f"{base}/?token={token}")  # log in once; the cookie serves the rest
    return page


@pytest.fixture(scope="module")
def learner(kernel, browser, tmp_path_factory):
    base_dir = tmp_path_factory.mktemp("learner")
    make_learner_copy(base_dir / "course" / "notebooks")
    blocked = []
    with lab_server(base_dir / "course", "lab", base_dir / "home") as (base, token):
        page = new_page(browser, base, token, blocked)
        yield page, base, token
        page.context.close()
    assert not blocked, f"the learner's lab tried to reach other hosts: {blocked[:5]}"


@pytest.fixture(scope="module")
def instructor(kernel, browser, tmp_path_factory):
    base_dir = tmp_path_factory.mktemp("instructor")
    root = make_instructor_copy(base_dir / "course")
    blocked = []
    with lab_server(root, "formgrader", base_dir / "home") as (base, token):
        page = new_page(browser, base, token, blocked)
        yield page, base, token
        page.context.close()
    assert not blocked, f"the instructor's lab tried to reach other hosts: {blocked[:5]}"


# ---------------------------------------------------------------------------
# JupyterLab helpers
# ---------------------------------------------------------------------------

def open_notebook(page, base: str, path: str) -> None:
    """Open ``path`` alone (``?reset``: no notebook of an earlier test restored beside it)."""
    page.goto(f"{base}/lab/tree/{path}?reset")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=RUN)


def menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()


def no_news_popup(page) -> None:
    """JupyterLab asks its news question a moment after start-up: give it that moment."""
    page.wait_for_timeout(2000)
    assert page.get_by_text(NEWS).count() == 0, "JupyterLab's news popup greets the user"


# ---------------------------------------------------------------------------
# Learner: `make lab`
# ---------------------------------------------------------------------------

def test_lab_opens_the_first_notebook(learner):
    page, base, _ = learner
    page.goto(f"{base}/lab/tree/{FIRST}/{FIRST}.ipynb")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN)
    no_news_popup(page)
    assert page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").count() == 1, "no Nbgrader menu"
    assert page.get_by_role("button", name="Validate").count() >= 1, "no Validate button on the notebook"
    shot(page, "01-lab-learner-notebook")


def test_lab_shows_no_instructor_panels(learner):
    page, base, _ = learner
    open_notebook(page, base, f"{FIRST}/{FIRST}.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
    items = page.locator(".lm-Menu-content .lm-Menu-itemLabel").all_inner_texts()
    shot(page, "02-lab-nbgrader-menu")
    page.keyboard.press("Escape")
    assert "Assignment List" in items, f"learners should keep their Assignments list: {items}"
    assert not [i for i in items if "Formgrader" in i or "Course List" in i], \
        f"instructor entries for learners: {items}"
    assert page.locator(CREATE_ASSIGNMENT).count() == 0, "the Create Assignment panel is shown to learners"


def test_run_all_stops_at_the_first_exercise(learner):
    page, base, _ = learner
    open_notebook(page, base, f"{FIRST}/{FIRST}.ipynb")
    menu(page, "Run", "Run All Cells")
    error = page.locator(".jp-OutputArea-output", has_text="NotImplementedError").first
    error.wait_for(timeout=RUN)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN)
    error.scroll_into_view_if_needed()
    shot(page, "03-lab-run-all-stops")
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    sources = cells.locator(".jp-InputArea-editor").all_inner_texts()
    first = next(i for i, s in enumerate(sources) if "raise NotImplementedError" in s)
    errors = [i for i in range(cells.count())
              if "NotImplementedError" in (cells.nth(i).locator(".jp-OutputArea").inner_text() or "")]
    # the exercise cell only defines the function; its test cell, next, calls it and stops the run
    assert errors == [first + 1], (f"Run All should stop at the test of the first exercise (code cell "
                                   f"{first + 1}); NotImplementedError shown in cells {errors}")
    prompts = cells.locator(".jp-InputPrompt").all_inner_texts()
    assert all(p.strip() in ("[ ]:", "") for p in prompts[first + 2:]), "cells after the first exercise ran"


def test_markdown_images_decode(learner):
    page, base, _ = learner
    open_notebook(page, base, f"{FIRST}/{FIRST}.ipynb")
    # JupyterLab renders markdown cells when they come into view: walk down the whole notebook.
    page.evaluate("""async () => {
        for (const cell of document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')) {
            cell.scrollIntoView();
            await new Promise(r => setTimeout(r, 20));
        }
    }""")
    page.wait_for_function("() => document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown img').length > 0"
                           " && [...document.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown img')]"
                           ".every(i => i.complete)", timeout=UI)
    widths = page.eval_on_selector_all(".jp-MarkdownCell .jp-RenderedMarkdown img",
                                       "imgs => imgs.map(i => i.naturalWidth)")
    page.locator(".jp-MarkdownCell .jp-RenderedMarkdown img").first.scroll_into_view_if_needed()
    shot(page, "04-lab-markdown-image")
    assert widths and all(w > 0 for w in widths), f"markdown images that do not decode: {widths}"


def test_validate_reports_success_on_a_solved_notebook(learner):
    page, base, _ = learner
    open_notebook(page, base, f"{FIRST}/{FIRST}-solved.ipynb")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").get_by_role("button", name="Validate").click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=RUN)
    page.wait_for_function("() => !document.querySelector('.jp-Dialog').innerText.includes('Validating')",
                           timeout=RUN)
    shot(page, "05-lab-validate-success")
    text = dialog.inner_text()
    assert "passes all the tests" in text, f"Validate on a solved notebook said: {text[:500]}"
    page.keyboard.press("Escape")


# ---------------------------------------------------------------------------
# Instructor: `make formgrader`, a solution with progress bars, `make report`
# ---------------------------------------------------------------------------

def test_formgrader_lists_every_part(instructor):
    page, base, _ = instructor
    page.goto(f"{base}/formgrader")
    for part in PARTS:
        page.get_by_text(part, exact=True).first.wait_for(timeout=UI)
    shot(page, "06-formgrader-assignments")
    assert len(PARTS) == 8
    assert page.get_by_text("could not be created").count() == 0, "formgrader finds no exchange"
    release = page.locator("tr", has_text=PARTS[-1]).locator("td").nth(6)
    assert release.locator("a, button, span").count() >= 1, "no Release button: the exchange is not usable"


def test_formgrader_shows_a_graded_score_and_the_flag(instructor):
    page, base, _ = instructor
    page.goto(f"{base}/formgrader/manage_submissions/{FIRST}")
    row = page.locator("tr", has_text="ann").first
    row.wait_for(timeout=UI)
    shot(page, "07-formgrader-submissions")
    assert re.search(r"3(\.0)?\s*/\s*3(\.0)?", row.inner_text()), f"ann's score is not shown: {row.inner_text()}"
    page.goto(f"{base}/formgrader/gradebook/{FIRST}/{FIRST}")
    flagged = page.locator("tr", has_text="dan").first
    flagged.wait_for(timeout=UI)
    shot(page, "08-formgrader-flagged")
    assert flagged.locator(".glyphicon-flag").count() == 1, "the flagged submission shows no flag"
    assert page.locator("tr", has_text="ann").first.locator(".glyphicon-flag").count() == 0


def test_solution_progress_bars_render_as_widgets(instructor):
    page, base, _ = instructor
    open_notebook(page, base, f"solutions/{WIDGETS}/{WIDGETS}.ipynb")
    no_news_popup(page)
    assert page.locator(CREATE_ASSIGNMENT).count() == 1, "instructors lost nbgrader's Create Assignment panel"
    menu(page, "Edit", "Clear Outputs of All Cells")
    menu(page, "Run", "Run All Cells")
    bar = page.locator(".jp-OutputArea-output .widget-hprogress, .jp-OutputArea-output .widget-progress").first
    bar.wait_for(timeout=RUN)
    bar.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    shot(page, "09-lab-solution-progress-widgets")
    assert page.get_by_text("Error displaying widget").count() == 0, "a widget failed to render"


def test_class_report_shows_its_plots(instructor):
    page, base, token = instructor
    page.goto(f"{base}/files/report/index.html?token={token}")  # /files wants a token or a Referer
    page.wait_for_function("() => document.images.length > 0 && [...document.images].every(i => i.complete)",
                           timeout=UI)
    images = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.dataset.file, i.naturalWidth])")
    page.set_viewport_size({"width": 1100, "height": 900})
    shot(page, "10-class-report", full_page=True)
    assert sorted(src for src, _ in images) == sorted(report.PLOTS.values())
    assert all(width > 0 for _, width in images), f"plots that do not decode: {images}"


# ---------------------------------------------------------------------------
# The README's pictures
# ---------------------------------------------------------------------------

def feedback_viewer(browser, base: str, token: str, blocked: list):
    """A page for feedback pages: it may reach the server under test and nothing else. A feedback
    page asks for nothing (its formulas are MathML, no MathJax from a CDN): ``blocked`` stays empty."""
    return new_page(browser, base, token, blocked)


def test_picture_a_part_open_in_lab(learner):
    """An exercise of Part 1 with the figure above it, the answer cell and its visible test."""
    page, base, _ = learner
    open_notebook(page, base, f"{FIRST}/{FIRST}.ipynb")
    page.set_viewport_size({"width": 1280, "height": 1350})
    page.wait_for_function("() => [...document.querySelectorAll('.jp-RenderedMarkdown img')].every("
                           "i => i.complete && i.naturalWidth > 0)", timeout=UI)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN)
    show = """(scroll) => {
        const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')];
        const test = cells.find(c => c.innerText.includes('Check that activation'));
        if (scroll) cells[cells.indexOf(test) - 2].scrollIntoView({block: 'start'});
        const box = test.getBoundingClientRect();
        return box.top > 0 && box.bottom <= window.innerHeight;
    }"""
    for _ in range(10):  # JupyterLab may scroll back to the active cell once, while it settles
        page.evaluate(show, True)
        page.wait_for_timeout(700)
        if page.evaluate(show, False):
            break
    picture(page, "lab-exercise")
    assert page.evaluate(show, False), "the exercise's visible test is not in the picture"


def test_picture_a_learners_feedback_page(instructor, browser):
    _, base, token = instructor
    blocked: list[str] = []
    page = feedback_viewer(browser, base, token, blocked)
    page.goto(f"{base}/files/feedback/ben/{FIRST}/{FIRST}.html?token={token}")
    failed = page.get_by_text("AssertionError: ").first
    failed.wait_for(timeout=UI)
    page.evaluate("(y) => window.scrollBy(0, y)", failed.bounding_box()["y"] - 450)
    picture(page, "feedback-page")
    text = page.inner_text("body")
    # Part 1's formulas, drawn by Chromium from MathML: each takes room on the page
    widths = page.evaluate("() => [...document.querySelectorAll('math')].map(m => m.getBoundingClientRect().width)")
    page.context.close()
    assert text.count("AssertionError: ") == 2, "ben's two planted mistakes, in the tests' own words"
    assert len(widths) >= 5 and all(w > 0 for w in widths), widths
    assert "\\sigma" not in text and "\\dfrac" not in text, "a formula left as LaTeX"
    assert not blocked, f"the feedback page asked other hosts for {blocked[:5]}"


def test_picture_the_class_reports_mistakes(instructor, browser):
    page, base, token = instructor
    page.goto(f"{base}/files/report/index.html?token={token}")
    heading = page.locator("h2", has_text="Mistakes by name")
    heading.wait_for(timeout=UI)
    page.set_viewport_size({"width": 1100, "height": 700})
    heading.evaluate("h => h.scrollIntoView({block: 'start'})")
    picture(page, "class-report-mistakes")
    section = page.locator("h2:has-text('Mistakes by name') ~ table").first.inner_text()
    assert "01-" in section and "unexplained" in section and "ZeroDivisionError: division by zero" in section
    link = page.locator("h2:has-text('Mistakes by name') ~ table a", has_text="ben").first
    target = link.evaluate("a => a.href")
    assert target == f"{base}/files/feedback/ben/{FIRST}/{FIRST}.html", "the learner's link leads to their page"
    blocked: list[str] = []
    viewer = feedback_viewer(browser, base, token, blocked)
    viewer.goto(f"{target}?token={token}")
    viewer.get_by_text("AssertionError: ").first.wait_for(timeout=UI)
    viewer.context.close()
    assert not blocked, f"the feedback page asked other hosts for {blocked[:5]}"
