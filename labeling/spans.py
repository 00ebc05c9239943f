"""Spans of text (named entities): the contract's tokens, and the rules a span set obeys.

The contract (DESIGN.md, "Span projects"): a text is split by `\\w+|[^\\w\\s]` (words, and each
other non-space character on its own); offsets are Python string indices, `end` exclusive; a
span covers whole tokens and the spans of one annotation do not overlap. Stored spans are
`[start, end, label_id]` lists, sorted by start.
"""

import re
from functools import lru_cache

import numpy as np
from django.core.exceptions import ValidationError

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
MAX_SPANS = 10_000
# Span colours: CSS classes `.span-c0` .. `.span-c9` (concord.css), by the label's position.
N_SPAN_COLOURS = 10


def token_bounds(text: str) -> list[tuple[int, int]]:
    """The text's tokens as `(start, end)` character offsets, in order."""
    return [m.span() for m in TOKEN_PATTERN.finditer(text)]


def token_bounds_many(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`token_bounds` of many texts at once, as arrays: what a loader of 100,000 items needs.

    The same tokens as `TOKEN_PATTERN.finditer` (tested against it): each character is a word
    character (`\\w`), a space (`\\s`) or another mark, classified by the pattern's own `re`
    classes per distinct code point; a token is a maximal run of word characters or one other
    mark. Returns (lengths (n_texts,) token counts; starts, ends (sum(lengths),) int64
    character offsets within their text, texts in order).
    """
    n = len(texts)
    # One newline (a space: never inside a token) after each text keeps their tokens apart.
    joined = "\n".join(texts) + "\n"
    if joined.isascii():
        # One byte per character: a quarter of the memory of UTF-32, and no lookup of wide ones.
        kind = _ascii_kinds()[np.frombuffer(joined.encode("ascii"), dtype=np.uint8)]
    else:
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        kind = _ascii_kinds()[np.minimum(codes, 127)]
        wide = np.flatnonzero(codes > 127)
        if len(wide):
            distinct, inverse = np.unique(codes[wide], return_inverse=True)
            kinds = [_kind(chr(c)) for c in distinct.tolist()]
            kind[wide] = np.array(kinds, dtype=np.int8)[inverse]
        del codes, wide
    del joined
    word, mark = kind == WORD, kind == MARK
    del kind
    # A token starts at a mark or at a word character after a non-word one (the text's first
    # character follows the previous text's newline), and ends likewise.
    start = word.copy()
    start[1:] &= ~word[:-1]
    start |= mark
    starts = np.flatnonzero(start)
    del start
    end = word
    end[:-1] &= ~word[1:]
    end |= mark
    ends = np.flatnonzero(end)
    ends += 1
    del end, word, mark
    base = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=n) + 1, out=base[1:])
    lengths = np.diff(np.searchsorted(starts, base))
    text_base = np.repeat(base[:-1], lengths)
    starts -= text_base
    ends -= text_base
    return lengths, starts, ends


SPACE, WORD, MARK = 0, 1, 2
_WORD_CHAR = re.compile(r"\w")
_SPACE_CHAR = re.compile(r"\s")


def _kind(char: str) -> int:
    """SPACE, WORD or MARK: how TOKEN_PATTERN (`\\w+|[^\\w\\s]`) treats the character."""
    if _WORD_CHAR.fullmatch(char):
        return WORD
    return SPACE if _SPACE_CHAR.fullmatch(char) else MARK


@lru_cache(maxsize=1)
def _ascii_kinds() -> np.ndarray:
    return np.array([_kind(chr(c)) for c in range(128)], dtype=np.int8)


def token_spans(bounds: list[tuple[int, int]], spans) -> list[tuple[int, int, int]]:
    """Stored spans `[start, end, label_id]` -> `(first token, last token + 1, label_id)`.

    The spans must be on token boundaries (as every stored span is).
    """
    first = {start: i for i, (start, _) in enumerate(bounds)}
    after = {end: i + 1 for i, (_, end) in enumerate(bounds)}
    return [(first[start], after[end], label_id) for start, end, label_id in spans]


def _word(char: str) -> bool:
    """`\\w` of the pattern: str.isalnum() or "_" (checked equal on every code point)."""
    return char.isalnum() or char == "_"


def is_token_start(text: str, index: int) -> bool:
    """Whether a token of `token_bounds(text)` starts at `index`, found from its neighbours
    alone: a non-space character, unless it is a word character after another one. (`\\s` is
    str.isspace(), checked equal on every code point like `_word`.)"""
    if not 0 <= index < len(text) or text[index].isspace():
        return False
    return index == 0 or not (_word(text[index]) and _word(text[index - 1]))


def is_token_end(text: str, index: int) -> bool:
    """Whether a token of `token_bounds(text)` ends at `index` (exclusive)."""
    if not 0 < index <= len(text) or text[index - 1].isspace():
        return False
    return index == len(text) or not (_word(text[index - 1]) and _word(text[index]))


def _label_id(value, by_name: dict[str, int], ids: set[int]) -> int:
    if isinstance(value, str) and value in by_name:
        return by_name[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in ids:
        return value
    raise ValueError(f"unknown label {value!r}; the labels are: {', '.join(by_name)}")


def _describe(text: str, start, end) -> str:
    if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
        return f"[{start}, {end}) {text[start:end]!r}"
    return f"[{start!r}, {end!r})"


def spans_clean(text: str, spans, *, labels: dict[str, int]) -> list[list[int]]:
    """Check spans given as `{start, end, label}` (or `[start, end, label]`) against the text.

    labels: the project's label names -> ids (a label may be given by name or id).
    Returns the stored form, `[[start, end, label_id], ...]` sorted by start. Raises
    ValidationError({"spans": ...}) naming the first span that is not on token boundaries,
    overlaps another, or names an unknown label.
    """
    if not isinstance(spans, list | tuple):
        raise ValidationError({"spans": "`spans` must be a list of {start, end, label}."})
    if len(spans) > MAX_SPANS:
        raise ValidationError({"spans": f"At most {MAX_SPANS} spans per annotation."})
    size = len(text)
    cleaned = []
    # The checks run once per span of every import row: the messages are built only on failure.
    for n, span in enumerate(spans, start=1):
        if isinstance(span, dict):
            start, end, label = span.get("start"), span.get("end"), span.get("label")
        elif isinstance(span, list | tuple) and len(span) == 3:
            start, end, label = span
        else:
            raise ValidationError({"spans": f"Span {n}: give {{start, end, label}}."})
        if type(start) is not int or type(end) is not int:  # noqa: E721 - bool is not whole
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
                where = f"Span {n} {_describe(text, start, end)}"
                raise ValidationError({"spans": f"{where}: start and end are whole numbers."})
        if not 0 <= start < end <= size:
            where = f"Span {n} {_describe(text, start, end)}"
            raise ValidationError(
                {"spans": f"{where}: needs 0 <= start < end <= {size} (the text's length)."}
            )
        if not (is_token_start(text, start) and is_token_end(text, end)):
            where = f"Span {n} {_describe(text, start, end)}"
            why = "does not fall on token boundaries (a span covers whole words and marks)"
            raise ValidationError({"spans": f"{where}: {why}."})
        label_id = labels.get(label) if type(label) is str else None  # noqa: E721
        if label_id is None:
            try:
                label_id = _label_id(label, labels, set(labels.values()))
            except ValueError as exc:
                where = f"Span {n} {_describe(text, start, end)}"
                raise ValidationError({"spans": f"{where}: {exc}."}) from None
        cleaned.append([start, end, label_id])
    cleaned.sort()
    for before, after in zip(cleaned, cleaned[1:], strict=False):
        if after[0] < before[1]:
            raise ValidationError(
                {
                    "spans": f"Spans {_describe(text, before[0], before[1])} and "
                    f"{_describe(text, after[0], after[1])} overlap; spans may not overlap."
                }  # fmt: skip
            )
    return cleaned


def spans_as_dicts(spans, names: dict[int, str]) -> list[dict]:
    """Stored spans -> the contract's `[{start, end, label}]` (label by name)."""
    return [{"start": s, "end": e, "label": names.get(label_id, "")} for s, e, label_id in spans]


def item_text(data) -> str:
    """The text of a span project's item (`data.text`; '' when missing)."""
    text = data.get("text") if isinstance(data, dict) else None
    return text if isinstance(text, str) else ""


def span_colours(labels) -> dict[int, tuple[int, str]]:
    """{label id: (colour number, name)}: the colour of a label's spans on every page.

    labels: the project's LabelClass rows in their order, or a dict {label id: name} in that
    order. The n-th label gets `.span-c{n % N_SPAN_COLOURS}` in the span editor and in the
    read-only display alike.
    """
    pairs = labels.items() if isinstance(labels, dict) else ((lab.pk, lab.name) for lab in labels)
    return {pk: (n % N_SPAN_COLOURS, name) for n, (pk, name) in enumerate(pairs)}


def spans_after_suggestions(given_spans, flagged_tokens, tokens) -> list[list[int]]:
    """The spans a reviewer accepts from a label-issue row: `given_spans` with each flagged
    token's suggested type applied.

    given_spans: stored `[[start, end, label_id], ...]` on token boundaries, not overlapping
    (the spans the run judged). flagged_tokens: `[[start, end, given_id, suggested_id], ...]`,
    each one token of the text, an id None for O (outside any entity). tokens: the text's
    `token_bounds`. A token suggested O leaves its span (a span it splits becomes two); a
    token suggested a type joins the adjacent tokens of that type into one span, or starts one.
    Two adjacent given spans of one type stay two unless a changed token touches their
    border. Returns stored spans sorted by start, on token boundaries and not overlapping.
    Raises ValueError naming a span or a flagged token that is not on the text's tokens.
    """
    first = {start: i for i, (start, _) in enumerate(tokens)}
    after = {end: i + 1 for i, (_, end) in enumerate(tokens)}
    label: list = [None] * len(tokens)
    begins = [False] * len(tokens)
    for start, end, label_id in given_spans:
        a, b = first.get(start), after.get(end)
        if a is None or b is None or a >= b or any(v is not None for v in label[a:b]):
            raise ValueError(f"the given span [{start}, {end}) is not on the text's tokens")
        label[a:b] = [label_id] * (b - a)
        begins[a] = True
    changed = [False] * len(tokens)
    for start, end, _given, suggested in flagged_tokens:
        t = first.get(start)
        if t is None or tokens[t][1] != end:
            raise ValueError(f"the flagged token [{start}, {end}) is not a token of the text")
        if label[t] != suggested:
            label[t], changed[t] = suggested, True
    spans: list[list[int]] = []
    for t, label_id in enumerate(label):
        if label_id is None:
            continue
        kept_border = begins[t] and not changed[t] and not changed[t - 1]
        if t > 0 and label[t - 1] == label_id and not kept_border:
            spans[-1][1] = tokens[t][1]
        else:
            spans.append([tokens[t][0], tokens[t][1], label_id])
    return spans
