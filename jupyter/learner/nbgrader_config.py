"""nbgrader settings on the learners' side (`make lab` puts this folder on JUPYTER_CONFIG_PATH;
on a shared JupyterHub copy it to /etc/jupyter/): which course, and where its exchange is.
Must match the course's nbgrader_config.py."""

import os

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "intro-pytorch"
c.Exchange.root = os.environ.get("NBGRADER_EXCHANGE") or os.path.normpath(os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "exchange"))
