"""nbgrader configuration for the course.

Layout (nbgrader's CourseDirectory, renamed to read well in this repository):

    solutions/<part>/<part>.ipynb      source: the instructor's notebooks, the ONE source
    notebooks/<part>/<part>.ipynb      release: what learners open (`make release`)
    submitted/<student>/<part>/...     collected submissions (not committed)
    autograded/, feedback/             written by `make autograde` / `make feedback`
    exchange/                          nbgrader's exchange (release_assignment, submit,
                                       collect, release_feedback); NBGRADER_EXCHANGE overrides

Each part (`01-tensors` ... `08-transfer-learning`) is its own nbgrader assignment.
"""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "intro-pytorch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# The exchange (release -> fetch -> submit -> collect -> release_feedback -> fetch_feedback):
# a folder inside the course, so it works without root; on a shared JupyterHub point
# NBGRADER_EXCHANGE at a folder every learner can reach (nbgrader's default is
# /usr/local/share/nbgrader/exchange). Learners' side: jupyter/learner/nbgrader_config.py.
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "exchange")

# Only notebooks are released; never the helper package, data or anything else. The exchange
# copies with the same filter: the two files `nbgrader submit` writes beside the notebook must
# pass it, or `collect` drops them and `release_feedback` cannot match feedback to submissions.
c.CourseDirectory.include = ["*.ipynb", "timestamp.txt", "submission_secret.txt"]

# What a learner sees in place of a solution.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# nbgrader 0.9 reads the per-cell execution timeout from Execute (not
# ExecutePreprocessor). Generous enough for Part 8's training on 2 CPU cores.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
# Never let a student's notebook choose the kernel that grades it.
c.Execute.kernel_name = "python3"

# Feedback never shows hidden tests: nbgrader's ClearHiddenTests, and a failed test's traceback
# cut to its last line (`AssertionError: <message>`). Needs this repository importable (the
# make targets put it on PYTHONPATH); `python -m instructor feedback` sets the same pipeline.
# The page's templates: the course's (it loads no MathJax from a CDN; formulas are MathML), then
# nbgrader's feedback template, as `python -m instructor feedback` renders them.
try:
    from instructor.feedback import feedback_templates

    c.HTMLExporter.extra_template_basedirs = feedback_templates()
except ImportError:  # this repository not importable: nbgrader's own template, MathJax from its CDN
    pass
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "instructor.preprocessors.FeedbackFromSubmission",
]
