"""Creating projects and managing who works in them."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.models import Guideline, LabelClass, Membership, Project

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
    **options,
) -> Project:
    """A project with its label classes, its creator as manager and guideline version 1.

    labels: [{"name": str, "key": str (optional)}], in display (and ordinal) order.
    Every annotation needs a guideline version, so version 1 is published at once.
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
        body="",
        changelog="Initial version.",
        published_at=timezone.now(),
        created_by=created_by,
    )
    return project


def member_set(*, project: Project, user, role: str) -> Membership:
    """Add a member or change their role."""
    if role not in Membership.Role.values:
        raise ValidationError({"role": f"Role must be one of {', '.join(Membership.Role.values)}."})
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership
