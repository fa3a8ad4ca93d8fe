"""nbgrader preprocessors the grading run swaps in (``Autograde.autograde_preprocessors``)."""

from __future__ import annotations

from nbgrader.preprocessors import LimitOutput
from traitlets import Integer


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
