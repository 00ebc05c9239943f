"""Template helpers: `{{ body|markdown }}`, `{% if access.role|role_at_least:"reviewer" %}`,
`{% item_data item project compact=True %}`, `{% example_data example project %}`,
`{% for kind, line in diff|diff_lines %}`, `{% spans_text text spans labels %}`,
`{% span_editor text spans labels %}`."""

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

from labeling import permissions
from labeling.item_display import item_display, worked_example_display
from labeling.markdown_render import render_markdown
from labeling.spans import span_colours, token_bounds

register = template.Library()


@register.filter(name="markdown")
def markdown_filter(text: str) -> str:
    """Render markdown and sanitize it; the result is safe to output unescaped."""
    return mark_safe(render_markdown(text))  # noqa: S308 - nh3 sanitized it


@register.filter
def role_at_least(role: str | None, min_role: str) -> bool:
    """True when `role` (the view's `access.role`) reaches `min_role`; False without one."""
    return permissions.role_at_least(role, min_role)


@register.inclusion_tag("labeling/_item_data.html")
def item_data(item, project, compact: bool = True) -> dict:
    """An item's data as text, image or fields (see labeling.item_display); compact in lists."""
    return {"view": item_display(project, item), "compact": compact}


@register.inclusion_tag("labeling/_item_data.html")
def example_data(example, project, compact: bool = True) -> dict:
    """A worked example's content shown like any item (never a data: URL as text)."""
    return {"view": worked_example_display(project, example), "compact": compact}


@register.filter
def diff_lines(diff: str) -> list[tuple[str, str]]:
    """A unified diff as (kind, line) rows: kind is "file", "hunk", "added", "removed" or "".

    The `---`/`+++` file names come before the first hunk only; inside a hunk a removed line
    that starts with `--` (a markdown rule, say) is still a removed line.
    """
    rows, in_hunk = [], False
    for line in diff.splitlines():
        if line.startswith("@@"):
            kind, in_hunk = "hunk", True
        elif not in_hunk and line.startswith(("---", "+++")):
            kind = "file"
        else:
            kind = {"+": "added", "-": "removed"}.get(line[:1], "")
        rows.append((kind, line))
    return rows


@register.simple_tag
def spans_text(text, spans, labels) -> str:
    """A text with its spans marked: `<mark class="span span-cK" data-label="NAME">`.

    text: the item's text; spans: stored `[[start, end, label_id], ...]` (code-point offsets);
    labels: the project's LabelClass rows in order, or a dict {label id: name}. The colour
    class follows the label's position (`labeling.spans.span_colours`), as the span editor
    (spans.js) colours it. Every piece of text and every label name is escaped.
    """
    text = text if isinstance(text, str) else ""
    styles = span_colours(labels)
    stored = sorted(
        (s[0], s[1], s[2])
        for s in spans or []
        if isinstance(s, list | tuple) and len(s) == 3 and all(type(v) is int for v in s[:2])
    )
    pieces, at = [], 0
    for start, end, label_id in stored:
        if not at <= start < end <= len(text):
            continue  # out of range or overlapping: never stored, never shown
        colour, name = styles.get(label_id, ("unknown", "?"))
        pieces.append(conditional_escape(text[at:start]))
        pieces.append(
            format_html(
                '<mark class="span span-c{}" data-label="{}" title="{}">{}</mark>',
                colour,
                name,
                name,
                text[start:end],
            )
        )
        at = end
    pieces.append(conditional_escape(text[at:]))
    return format_html('<span class="span-text">{}</span>', mark_safe("".join(pieces)))  # noqa: S308 - every piece escaped above


@register.inclusion_tag("labeling/_span_editor.html")
def span_editor(text, spans, labels, own_keys: bool = False, starts=None) -> dict:
    """The span editor (concord/spans.js) on a text, starting from `spans`.

    text: the item's text; spans: `[[start, end, label_id], ...]` to start from (snapped to
    tokens by the script); labels: the project's LabelClass rows in order. own_keys: the
    editor takes keys only while it has the focus (the reviewer's page); otherwise the page
    routes keys to it (the annotator's page, see annotate.js). starts: {name: spans} the
    editor can start over from (buttons; the reviewer's majority and each annotator's spans).
    """
    text = text if isinstance(text, str) else ""
    labels = list(labels)
    colours = span_colours(labels)
    data = {
        "text": text,
        "tokens": token_bounds(text),
        "labels": [
            {"id": lab.pk, "name": lab.name, "key": lab.key, "colour": colours[lab.pk][0]}
            for lab in labels
        ],
        "spans": [list(span) for span in spans or [] if isinstance(span, list | tuple)],
        "starts": [[name, start] for name, start in (starts or {}).items()],
    }
    names = list(starts or {})
    begins = next((name for name in names if starts[name] == spans), None)
    return {
        "data": data,
        "legend": [(lab, colours[lab.pk][0]) for lab in labels],
        "text": text,
        "spans": spans,
        "labels": labels,
        "own_keys": own_keys,
        # (name, pressed): the (first) start the editor begins from is shown pressed
        "starts": [(name, name == begins) for name in names],
    }
