"""Creating projects and managing who works in them."""

import uuid

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import (
    Annotation,
    AnnotationRevision,
    Guideline,
    LabelClass,
    Membership,
    Project,
    Review,
    WorkedExample,
)
from labeling.selectors import labels_contain
from labeling.services.leases import leases_release
from labeling.services.queue import SCORED_ORDERS
from labeling.services.queue_scores import model_refresh_ask

User = get_user_model()
DEFAULT_KEYS = "1234567890"


def default_keys(n_labels: int) -> list[str]:
    """Shortcut keys 1-9, 0, then none (custom keys may be set per label)."""
    return [DEFAULT_KEYS[i] if i < len(DEFAULT_KEYS) else "" for i in range(n_labels)]


@transaction.atomic
def project_create(
    *,
    name: str,
    labels: list[dict],
    created_by,
    data_type: str = Project.DataType.TEXT,
    task_type: str = Project.TaskType.SINGLE,
    overlap: int = 1,
    ordered: bool = False,
    description: str = "",
    guideline: str = "",
    **options,
) -> Project:
    """A project with its label classes, its creator as manager and guideline version 1.

    labels: [{"name": str, "key": str (optional)}], in display (and ordinal) order.
    Every annotation needs a guideline version, so version 1 (body `guideline`, markdown) is
    published at once.
    """
    names = [str(label.get("name", "")).strip() for label in labels]
    if not names or any(not n for n in names):
        raise ValidationError({"labels": "Give at least one label, each with a name."})
    if len(set(names)) != len(names):
        raise ValidationError({"labels": "Label names must be unique."})
    keys = [str(label.get("key") or "").strip() for label in labels]
    fallback = iter(k for k in default_keys(len(labels) + len(DEFAULT_KEYS)) if k not in keys)
    keys = [k or next(fallback, "") for k in keys]
    if any(len(k) > 1 for k in keys) or len({k for k in keys if k}) != len([k for k in keys if k]):
        raise ValidationError({"labels": "Shortcut keys must be single, distinct characters."})
    if int(overlap) < 1:
        raise ValidationError({"overlap": "Overlap must be at least 1."})
    project = Project(
        name=name,
        description=description,
        data_type=data_type,
        task_type=task_type,
        overlap=overlap,
        ordered=ordered,
        created_by=created_by,
        **options,
    )
    project.full_clean()
    project.save()
    LabelClass.objects.bulk_create(
        LabelClass(project=project, name=n, key=k, order=i)
        for i, (n, k) in enumerate(zip(names, keys, strict=True))
    )
    if created_by is not None:
        Membership.objects.create(project=project, user=created_by, role=Membership.Role.MANAGER)
    Guideline.objects.create(
        project=project,
        version=1,
        body=guideline,
        changelog="Initial version.",
        published_at=timezone.now(),
        created_by=created_by,
    )
    return project


LAST_MANAGER = "A project needs at least one manager: make someone else manager first."


def _lock_memberships(project: Project) -> None:
    # Serializes membership changes per project, so two managers demoting each other at the
    # same moment cannot leave the project without one.
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()


def _is_last_manager(project: Project, user) -> bool:
    managers = Membership.objects.filter(project=project, role=Membership.Role.MANAGER)
    return managers.filter(user=user).exists() and not managers.exclude(user=user).exists()


@transaction.atomic
def member_set(*, project: Project, user, role: str) -> Membership:
    """Add a member or change their role; the last manager cannot be demoted."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Membership.Role.values)}."})
    _lock_memberships(project)
    if role != Membership.Role.MANAGER and _is_last_manager(project, user):
        raise ValidationError({"role": LAST_MANAGER})
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def member_remove(*, project: Project, user) -> None:
    """Take a member out of the project; their annotations stay, their claims are released.

    The last manager cannot be removed.
    """
    _lock_memberships(project)
    if not Membership.objects.filter(project=project, user=user).exists():
        raise ValidationError({"user": f"{user.username} is not a member of this project."})
    if _is_last_manager(project, user):
        raise ValidationError({"user": LAST_MANAGER})
    Membership.objects.filter(project=project, user=user).delete()
    leases_release(annotator=user, project=project)


EDITABLE_FIELDS = (
    "name",
    "description",
    "overlap",
    "ordered",
    "queue_order",
    "queue_seed",
    "default_label_strategy",
    "tie_rule",
    "suggestions",
    "suggestion_model",
    "suggestion_rate",
    "scores_refresh_every",
    "gold_rate",
    "gold_onboarding",
    "gold_pass_score",
)


@transaction.atomic
def project_update(*, project: Project, user, **fields) -> Project:
    """Change a project's settings (not its data or task type: annotations depend on them)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be changed." for name in sorted(unknown)})
    newly_scored = (
        fields.get("queue_order") in SCORED_ORDERS and project.queue_order not in SCORED_ORDERS
    )
    # Suggestions turned on or pointed at another model need that model's probabilities now.
    suggestions_on = fields.get("suggestions", project.suggestions) != Project.Suggestions.OFF
    new_source = suggestions_on and (
        project.suggestions == Project.Suggestions.OFF
        or fields.get("suggestion_model", project.suggestion_model) != project.suggestion_model
    )
    for name, value in fields.items():
        setattr(project, name, value)
    project.full_clean(exclude=["created_by"])
    project.save(update_fields=list(fields) or None)
    if newly_scored or new_source:
        model_refresh_ask(project=project)  # scores and suggestions now, not in N labels
    return project


def _label_in_use(label: LabelClass) -> bool:
    return (
        Annotation.objects.filter(label=label).exists()
        or labels_contain(Annotation.objects.filter(project_id=label.project_id), label.pk).exists()
        or Review.objects.filter(label=label).exists()
        or labels_contain(
            Review.objects.filter(item__project_id=label.project_id), label.pk
        ).exists()
        or AnnotationRevision.objects.filter(label=label).exists()
        or WorkedExample.objects.filter(label=label).exists()
    )


@transaction.atomic
def project_labels_set(*, project: Project, labels: list[dict]) -> list[LabelClass]:
    """Replace the project's label classes, in the given order.

    labels: [{"id": existing id (optional), "name": str, "key": str (optional)}]. Rows with an
    id rename / re-key that class (annotations keep pointing at it); rows without one are new;
    classes left out are deleted, which is refused while anything uses them.
    """
    names = [str(row.get("name", "")).strip() for row in labels]
    keys = [str(row.get("key") or "").strip() for row in labels]
    if not names or any(not n for n in names):
        raise ValidationError({"labels": "Give at least one label, each with a name."})
    if any(len(n) > 100 for n in names):
        raise ValidationError({"labels": "Label names may have at most 100 characters."})
    if len(set(names)) != len(names):
        raise ValidationError({"labels": "Label names must be unique."})
    if any(len(k) > 1 for k in keys) or len({k for k in keys if k}) != len([k for k in keys if k]):
        raise ValidationError({"labels": "Shortcut keys must be single, distinct characters."})
    existing = {label.pk: label for label in project.labels.select_for_update()}
    ids = []
    for row in labels:
        raw = row.get("id")
        if raw in (None, ""):
            ids.append(None)
            continue
        try:
            label_id = int(raw)
        except (TypeError, ValueError):
            raise ValidationError({"labels": f"Unknown label id {raw!r}."})
        if label_id not in existing or label_id in ids:
            raise ValidationError({"labels": f"Unknown label id {raw!r}."})
        ids.append(label_id)
    removed = [label for pk, label in existing.items() if pk not in ids]
    in_use = [label.name for label in removed if _label_in_use(label)]
    if in_use:
        names_in_use = ", ".join(in_use)
        raise ValidationError(
            {"labels": f"Labels in use cannot be removed: {names_in_use}. Rename them instead."}
        )
    LabelClass.objects.filter(pk__in=[label.pk for label in removed]).delete()
    # Names and keys are unique per project; park the kept rows first so swaps do not collide.
    kept = [existing[pk] for pk in ids if pk is not None]
    parking = uuid.uuid4().hex
    for label in kept:
        label.name, label.key = f"~parked~{label.pk}~{parking}", ""
    LabelClass.objects.bulk_update(kept, ["name", "key"])
    result = []
    for order, (label_id, name, key) in enumerate(zip(ids, names, keys, strict=True)):
        label = existing[label_id] if label_id else LabelClass(project=project)
        label.name, label.key, label.order = name, key, order
        label.save()
        result.append(label)
    return result
