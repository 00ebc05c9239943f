"""Template helpers: `{{ body|markdown }}`, `{% if access.role|role_at_least:"reviewer" %}`,
`{% item_data item project compact=True %}`, `{% example_data example project %}`,
`{% for kind, line in diff|diff_lines %}`."""

from django import template
from django.utils.safestring import mark_safe

from labeling import permissions
from labeling.item_display import item_display, worked_example_display
from labeling.markdown_render import render_markdown

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
