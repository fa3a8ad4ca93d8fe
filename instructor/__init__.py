"""Instructor tooling: autograde, feedback, grades and collection on nbgrader's own commands,
with every student's notebook run in a confined kernel (see ``instructor.sandbox``).

    python -m instructor --help
"""
