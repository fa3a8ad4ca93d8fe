"""nbgrader preprocessors the grading run swaps in (``Autograde.autograde_preprocessors``)."""

from __future__ import annotations

import json

from nbgrader.preprocessors import LimitOutput, NbGraderPreprocessor
from traitlets import Integer, Unicode


class LimitOutputSize(LimitOutput):
    """nbgrader's LimitOutput (at most ``max_lines`` lines of printed output per cell), plus a
    cap on characters: one 50 MB line, or a huge ``repr``, passes a line limit untouched and
    would end up in the gradebook's notebook and in the feedback HTML."""

    max_chars = Integer(
        100_000,
        help="maximum characters kept in one output (stream text or one rich-output value); -1: no limit",
    ).tag(config=True)

    def _cut(self, text: str) -> str:
        if self.max_chars < 0 or len(text) <= self.max_chars:
            return text
        return text[:self.max_chars] + f"\n... Output truncated ({len(text):,} characters) ..."

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.outputs:
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in list(output.get("data", {}).items()):
                    if isinstance(value, str) and len(value) > self.max_chars >= 0:
                        if mime.startswith("text/"):
                            output.data[mime] = self._cut(value)
                        else:  # an image or JSON too large to keep: drop it, say so
                            del output.data[mime]
                            output.data.setdefault("text/plain", f"[{mime} output removed: {len(value):,} characters]")
            elif output.output_type == "error":
                output.evalue = self._cut(output.evalue)
        return cell, resources


def _is_graded_test(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {}) or {}
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


class HarmlessStderr(NbGraderPreprocessor):
    """nbgrader scores a graded cell 0 when it printed anything on stderr. A correct answer that
    shows a progress bar or a warning must not lose its points: stderr becomes ordinary output.
    A failed test still fails: its error output is untouched."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.output_type == "stream" and output.name == "stderr":
                    output.name = "stdout"
        return cell, resources


class InsertCanaries(NbGraderPreprocessor):
    """Hidden cells that check, after student code ran, that the kernel still behaves: see
    :func:`instructor.integrity.insert_canaries`. They are removed again by :class:`CheckCanaries`."""

    secret = Unicode("", help="per-run secret the canaries are derived from").tag(config=True)

    def preprocess(self, nb, resources):
        from . import integrity

        return integrity.insert_canaries(nb, self.secret), resources


class CheckCanaries(NbGraderPreprocessor):
    """Reads the canaries' outputs, removes the canary cells and writes the verdict (JSON) to
    ``verdict_path``: ``{"reason": null}`` or a one-line reason the kernel was tampered with."""

    secret = Unicode("", help="the secret InsertCanaries used").tag(config=True)
    verdict_path = Unicode("", help="where the verdict is written").tag(config=True)

    def preprocess(self, nb, resources):
        from . import integrity

        executed = sum(map(integrity.cell_seconds, nb.cells))  # canaries included
        reason, nb = integrity.check_canaries(nb, self.secret)
        if self.verdict_path:
            with open(self.verdict_path, "w") as f:
                json.dump({"reason": reason, "execute_seconds": executed}, f)
        return nb, resources


class FeedbackWithoutHiddenTests(NbGraderPreprocessor):
    """For feedback: hidden tests removed from the test cells (nbgrader's ClearHiddenTests), and a
    failed test's traceback cut to its last line (``AssertionError: <message>``), since IPython's
    traceback quotes the lines around the failing assert, hidden ones included."""

    def preprocess(self, nb, resources):
        from nbgrader.preprocessors import ClearHiddenTests

        nb, resources = ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources)
        for cell in nb.cells:
            if not _is_graded_test(cell):
                continue
            for output in cell.outputs:
                if output.output_type == "error":
                    message = f"{output.ename}: {output.evalue}" if output.evalue else output.ename
                    output.traceback = [message]
        return nb, resources
