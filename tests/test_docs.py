"""The README and the pages in docs/: a README a newcomer reads in five minutes, links that lead
somewhere, and commands that exist. (The course map's rows: tests/instructor/test_notebooks.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from instructor.course import ROOT

pytestmark = pytest.mark.course_data()

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 100  # two screens
FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code, where brackets are not links."""
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found, seen = set(), {}
    for line in FENCE.sub("", page.read_text()).splitlines():
        if m := re.match(r"#{1,6} (.+)", line):
            base = slug(m[1])
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def test_readme_fits_on_two_screens():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, \
        f"README.md has {len(lines)} lines, more than {README_MAX_LINES}: move the detail to a page in docs/"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = README.read_text()
    assert re.search(r"^make lab\b", readme, flags=re.M) and re.search(r"^make test\b", readme, flags=re.M), \
        "README.md should open with `make lab` (learners) and `make test` (maintainers)"
    assert re.search(r"^make test\b", (ROOT / ".ci" / "run").read_text(), flags=re.M), \
        "CI (.ci/run) should run the README's test command, `make test`"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_and_headings_that_exist(page):
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no file {path})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no heading #{anchor} in {file.name})")
    assert not broken, f"{page.relative_to(ROOT)}: broken links: {'; '.join(broken)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_make_targets_named_exist(page):
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))
    # as code: `make X` inline, or a command line starting (or going on with &&) with it
    named = set(re.findall(r"(?:^|`|&& )make ([a-z][\w-]*)", page.read_text(), flags=re.M))
    assert named <= targets, f"{page.relative_to(ROOT)} names make targets that do not exist: {sorted(named - targets)}"


def test_slugs_follow_github():
    assert slug("What a learner waits for") == "what-a-learner-waits-for"
    assert slug("Where a task's time goes") == "where-a-tasks-time-goes"
    assert slug("The floor: the oldest versions pyproject.toml allows") == \
        "the-floor-the-oldest-versions-pyprojecttoml-allows"
    assert slug("Exact versions: requirements.txt") == "exact-versions-requirementstxt"


PICTURES = ROOT / "docs" / "pictures"
SHOWN = {"lab-exercise", "feedback-page", "class-report-mistakes"}  # the course as a visitor first sees it


def readme_pictures() -> dict[str, str]:
    """{picture's path: its alt text} of every image in the README (HTML or markdown)."""
    readme, shown = prose(README.read_text()), {}
    for tag in re.findall(r"<img\b[^>]*>", readme):
        src, alt = re.search(r'\bsrc="([^"]+)"', tag), re.search(r'\balt="([^"]*)"', tag)
        shown[src[1] if src else ""] = alt[1] if alt else ""
    shown.update({src: alt for alt, src in re.findall(r"!\[([^\]]*)\]\(([^)\s]+)", readme)})
    return shown


def test_readme_shows_the_course_in_pictures_taken_by_the_browser_tests():
    """A part in JupyterLab, a feedback page, the class report's mistakes: each file exists (a PNG),
    is shown with alt text that says what it shows, and is taken by a browser test
    (`make pictures` takes them again)."""
    shown = {src: alt for src, alt in readme_pictures().items() if src.startswith("docs/pictures/")}
    assert {Path(src).stem for src in shown} == SHOWN
    assert {p.stem for p in PICTURES.iterdir()} == SHOWN, "a picture in docs/pictures/ the README does not show"
    browser_tests = (ROOT / "tests" / "workflow" / "test_browser.py").read_text()
    for src, alt in shown.items():
        assert (ROOT / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{src} is not a PNG"
        assert len(alt.split()) >= 8, f"{src}: alt text should say what the picture shows, not {alt!r}"
        assert f'picture(page, "{Path(src).stem}")' in browser_tests, f"no browser test takes {src}"
