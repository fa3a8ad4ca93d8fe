"""Instructor tooling: autograde, feedback, grades and collection on nbgrader's own commands,
with every student's notebook run in a confined kernel (see ``instructor.sandbox``).

    python -m instructor --help
"""

import sys

# jsonschema (which nbformat and nbgrader import) loads rfc3987_syntax when it is installed, as
# jupyter-events' dependencies make sure it is; that module builds about forty parsers on import:
# 1.5 s added to every command, worker and nbgrader call of the course. It serves one string
# format, "iri", that no notebook or gradebook schema uses; without it jsonschema checks the
# others as before.
sys.modules.setdefault("rfc3987_syntax", None)
