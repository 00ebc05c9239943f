"""A likely label error that teaches: the item becomes a worked example with the reviewer's label.

`analysis.services.label_issues.issue_resolve` adds the example with the *suggested* label;
from the review queue a reviewer often knows better (the suggestion is a model's guess, and a
tie has none), so this use case takes the label they chose.
"""

from django.db import transaction
from django.utils import timezone

from analysis.models import LabelIssue
from labeling.models import LabelClass
from labeling.services.guidelines import worked_example_add
from labeling.services.relabeling import relabel_request


@transaction.atomic
def issue_example_add(
    *, issue: LabelIssue, user, label: LabelClass | str, why: str, relabel: bool = False
) -> LabelIssue:
    """Mark the issue ambiguous and add its item to the guideline draft as a worked example
    of `label` (a class or its name) with the reviewer's `why`; optionally send the item back
    to be labeled again. Nothing changes when the example is refused (no reason, unknown
    label)."""
    issue = LabelIssue.objects.select_for_update().select_related("item", "run").get(pk=issue.pk)
    project = issue.run.project
    worked_example_add(project=project, item=issue.item, label=label, why=why, user=user)
    if relabel:
        relabel_request(project=project, item_ids=[issue.item_id])
    issue.resolution = LabelIssue.Resolution.AMBIGUOUS
    issue.resolved_by = user
    issue.resolved_at = timezone.now()
    issue.save(update_fields=["resolution", "resolved_by", "resolved_at"])
    return issue
