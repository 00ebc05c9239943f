"""CoNLL: IOB2 tags of a span project, one token per line (`token<TAB>tag`), `# id =
<external_id>` before each item's sentence and a blank line after it.

The tokens are the contract's (`labeling.spans`, DESIGN.md "Span projects (contract)"), so
the file re-imports into Concord (`format=conll`) with the same text and spans. An item
without a decision is not written (every tag `O` would claim it has no entities): the export
leaves such items out and counts them (`no_decision`). One tag column holds one set of spans,
so `include=annotations` is refused for this format (params.py). A line break inside an
external id is written as a space (the `# id =` line is one line).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from analysis.exports.formats.file_format import FileFormat
from analysis.metrics.span_tags import tag_names, tags_from_spans, token_ranges
from labeling.spans import token_bounds_many

if TYPE_CHECKING:  # the plan imports the registry (see file_format.py)
    from analysis.exports.plan import DatasetExport

_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\x0b": " ", "\x0c": " ", "\x85": " ",
                              "\u2028": " ", "\u2029": " "})  # fmt: skip


def sentence_lines(texts: list[str], spans, external_ids: list[str]) -> list[str]:
    """The lines of the page's sentences (texts and `ItemSpans` item by item)."""
    lengths, starts, ends = token_bounds_many(texts)
    sequence = np.repeat(np.arange(len(texts)), np.diff(spans.offsets))
    first, after, on_tokens = token_ranges(sequence, spans.start, spans.end, lengths, starts, ends)
    tags = tags_from_spans(
        lengths, sequence[on_tokens], first[on_tokens], after[on_tokens], spans.label[on_tokens]
    )
    names = np.array(tag_names(list(spans.class_names)), dtype=object)[tags].tolist()
    starts, ends = starts.tolist(), ends.tolist()
    lines, k = [], 0
    for external_id, text, n in zip(external_ids, texts, lengths.tolist(), strict=True):
        lines.append(f"# id = {external_id.translate(_LINE_BREAKS)}")
        lines.extend(f"{text[starts[j] : ends[j]]}\t{names[j]}" for j in range(k, k + n))
        lines.append("")
        k += n
    return lines


def write(export: DatasetExport) -> Iterator[bytes]:
    for page in export.pages(typed=True):
        if page.n_rows:
            lines = sentence_lines(list(page.text), page.spans, list(page.external_id))
            yield ("\n".join(lines) + "\n").encode("utf-8")


FORMAT = FileFormat(
    name="conll",
    content_type="text/plain; charset=utf-8",
    extension="conll",
    write=write,
    typed_columns=False,  # the data and metadata columns are not written
)
