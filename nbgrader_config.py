"""nbgrader configuration for the course.

Layout (nbgrader's CourseDirectory, renamed to read well in this repository):

    solutions/<part>/<part>.ipynb      source: the instructor's notebooks, the ONE source
    notebooks/<part>/<part>.ipynb      release: what learners open (`make release`)
    submitted/<student>/<part>/...     collected submissions (not committed)
    autograded/, feedback/             written by `make autograde` / `make feedback`

Each part (`01-tensors` ... `08-transfer-learning`) is its own nbgrader assignment.
"""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "intro-pytorch"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
# Only notebooks are released; never the helper package, data or anything else.
c.CourseDirectory.include = ["*.ipynb"]

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
