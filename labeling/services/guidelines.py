"""Versioned labeling instructions: edit a draft, publish it as an immutable version N+1.

A project has at most one draft (a database constraint). A draft starts as a copy of the
newest version (body and worked examples), so edits are always relative to what annotators
see now. Publishing freezes the draft row itself as the next version; the model refuses any
later edit of a published row.

Text is stored with LF line endings: a browser's textarea posts CRLF, and one CRLF version
next to an LF one would diff as "every line changed".
"""

import difflib

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from labeling.item_display import field_text
from labeling.models import Guideline, Item, LabelClass, Project, WorkedExample
from labeling.services import webhooks

MAX_BODY_CHARS = 200_000
MAX_CHANGELOG_CHARS = 5_000


def line_endings_normalized(text: str | None) -> str | None:
    """CRLF and lone CR line endings as LF (None stays None)."""
    if text is None:
        return None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _lock_project(project: Project) -> None:
    # Serializes draft creation and publishing per project (one draft, consecutive versions).
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()


def _draft(project: Project, user) -> Guideline:
    """The project's draft, created from the newest version when there is none."""
    draft = project.guidelines.drafts().first()
    if draft is not None:
        return draft
    newest = project.current_guideline()
    draft = Guideline.objects.create(
        project=project,
        body=newest.body if newest else "",
        changelog="",
        created_by=user,
    )
    if newest is not None:
        WorkedExample.objects.bulk_create(
            WorkedExample(
                guideline=draft,
                item_id=example.item_id,
                text=example.text,
                label_id=example.label_id,
                why=example.why,
                order=example.order,
            )
            for example in newest.examples.all()
        )
    return draft


def _check_lengths(body: str | None, changelog: str | None) -> None:
    errors = {}
    if body is not None and len(body) > MAX_BODY_CHARS:
        errors["body"] = f"The guideline may have at most {MAX_BODY_CHARS} characters."
    if changelog is not None and len(changelog) > MAX_CHANGELOG_CHARS:
        errors["changelog"] = f"The changelog may have at most {MAX_CHANGELOG_CHARS} characters."
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def guideline_draft_update(
    *, project: Project, body: str | None = None, changelog: str | None = None, user
) -> Guideline:
    """Save the draft's body and/or changelog (None leaves a field as it is)."""
    body, changelog = line_endings_normalized(body), line_endings_normalized(changelog)
    _check_lengths(body, changelog)
    _lock_project(project)
    draft = _draft(project, user)
    if body is not None:
        draft.body = body
    if changelog is not None:
        draft.changelog = changelog
    draft.save()
    return draft


@transaction.atomic
def guideline_publish(*, project: Project, user, changelog: str | None = None) -> Guideline:
    """Freeze the draft as version N+1 (its worked examples go with it).

    A new version must say what changed: the changelog (given here or saved on the draft)
    may not be empty.
    """
    changelog = line_endings_normalized(changelog)
    _check_lengths(None, changelog)
    _lock_project(project)
    draft = project.guidelines.drafts().first()
    if draft is None:
        raise ValidationError({"detail": "There is no draft to publish; edit the guideline first."})
    if changelog is not None:
        draft.changelog = changelog
    if not draft.changelog.strip():
        raise ValidationError({"changelog": "Say what changed in this version."})
    newest = project.guidelines.aggregate(v=Max("version"))["v"] or 0
    draft.version = newest + 1
    draft.published_at = timezone.now()
    draft.created_by = draft.created_by or user
    draft.save()
    webhooks.emit(
        project_id=project.pk,
        event="guideline.published",
        data=lambda: {
            "version": draft.version,
            "changelog": draft.changelog[: webhooks.TEXT_CHARS],
            "published_at": draft.published_at,
            "published_by": getattr(user, "username", None),
        },
    )
    return draft


@transaction.atomic
def worked_example_add(
    *, project: Project, item: Item, label: LabelClass | str, why: str, user
) -> WorkedExample:
    """Attach an item, its correct label and why to the draft (created if needed)."""
    if item.project_id != project.pk:
        raise ValidationError({"item": "The item belongs to another project."})
    if isinstance(label, str):
        found = project.labels.filter(name=label).first()
        if found is None:
            raise ValidationError({"label": f"Unknown label {label!r}."})
        label = found
    elif label.project_id != project.pk:
        raise ValidationError({"label": "The label belongs to another project."})
    why = line_endings_normalized(why or "").strip()
    if not why:
        raise ValidationError({"why": "Say why this is the correct label."})
    _lock_project(project)
    draft = _draft(project, user)
    order = (draft.examples.aggregate(o=Max("order"))["o"] or 0) + 1
    example = WorkedExample(
        guideline=draft,
        item=item,
        text=line_endings_normalized(item_text(item)),
        label=label,
        why=why,
        order=order,
    )
    example.full_clean()
    example.save()
    draft.save()  # bumps updated_at: the draft changed
    return example


@transaction.atomic
def worked_example_remove(*, project: Project, example_id: int, user) -> None:
    """Remove an example from the draft; published versions keep theirs."""
    _lock_project(project)
    deleted, _ = WorkedExample.objects.filter(
        pk=example_id, guideline__in=project.guidelines.drafts()
    ).delete()
    if not deleted:
        raise ValidationError({"example": "Only examples of the draft can be removed."})


def item_text(item: Item) -> str:
    """The part of an item an example shows: its text, image URL or fields."""
    data = item.data or {}
    for key in ("text", "image", "image_url", "url"):
        if isinstance(data.get(key), str):
            return data[key]
    return ", ".join(f"{k}={v}" for k, v in data.items())


def guideline_as_text(guideline: Guideline) -> str:
    """Body plus worked examples as plain text: what a diff compares.

    Line endings are normalized here too, for versions stored before saving normalized them;
    an example's image is named, not printed (a data: URL can be megabytes).
    """
    body = line_endings_normalized(guideline.body)
    lines = [body.rstrip("\n"), "", "## Worked examples"]
    for example in guideline.examples.select_related("item", "label"):
        external_id = example.item.external_id if example.item else "(deleted item)"
        text = field_text(line_endings_normalized(example.text))
        lines.append(f"- {external_id} -> {example.label.name}: {text}")
        lines.append(f"  why: {line_endings_normalized(example.why)}")
    return "\n".join(lines) + "\n"


def guideline_diff(a: Guideline, b: Guideline) -> str:
    """Unified diff from version `a` to version `b` (bodies and worked examples)."""
    name = lambda g: f"v{g.version}" if g.version else "draft"  # noqa: E731
    return "".join(
        difflib.unified_diff(
            guideline_as_text(a).splitlines(keepends=True),
            guideline_as_text(b).splitlines(keepends=True),
            fromfile=name(a),
            tofile=name(b),
        )
    )
