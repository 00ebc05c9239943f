"""Gold questions: items with a known answer (`GoldLabel`), served to annotators to check them.

Rules (README, "Gold questions"):

- Only members with the annotator role get gold questions (managers and reviewers can see
  every label, so a test of them proves nothing).
- Onboarding: until an annotator is onboarded (`Membership.onboarded_at`), their claims are
  gold items they have not answered, up to the project's `gold_onboarding` answers (or every
  gold item, when the project has fewer). Their answer to the last of these is scored: an
  accuracy below `gold_pass_score` pauses them (`paused_at`, `pause_reason`), otherwise they
  are onboarded. A paused annotator gets nothing (`AnnotatorPaused`) until a manager lets
  them continue (`membership_continue`).
- Afterwards each claim is a gold item with probability `gold_rate`, drawn from a hash of the
  annotator, the project, their newest annotation and the items already shown: deterministic
  for a given history (no flakiness), different from one claim to the next. A gold item is
  served at most once per annotator (skipped ones do not come back under the same version).
- Gold items are not limited by the overlap: every annotator may answer each once. Their
  answers do not move `Item.done_count` (they are not regular progress).
- An answer is right when it equals the gold answer exactly: the same class (single-label),
  the same set of classes (multi-label), the same set of spans (span projects). The
  annotator's newest answer per gold item counts.

Cost: a claim of an annotator reads their membership and whether the project has gold items
(the small `GoldLabel` table); only then their newest annotation id, and, while they are being
onboarded, their gold answers (few). Serving a gold item reads the gold items by the
`GoldLabel` table, never by a scan of the project's items.
"""

import hashlib
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from labeling.gold_scores import gold_answers
from labeling.models import Annotation, GoldLabel, Guideline, Item, Lease, Membership, Project, Skip

# The pause reason shown to the annotator and the manager (the figures filled in).
PAUSE_REASON = (
    "Onboarding: {correct} of {n} gold questions right ({accuracy:.0%}; pass: {pass_score:.0%})."
)


class AnnotatorPaused(Exception):
    """The annotator is paused after failing onboarding (HTTP 409 in the API)."""

    def __init__(self, membership: Membership):
        self.membership = membership
        super().__init__(membership.pause_reason or "Paused until a manager lets you continue.")


def onboarding_size(*, project: Project, n_gold: int) -> int:
    """How many gold answers onboarding takes: `gold_onboarding`, or every gold item if fewer."""
    return min(project.gold_onboarding, n_gold)


def _draw(*, project: Project, annotator, newest_annotation_id, excluded: set) -> float:
    """A number in [0, 1) fixed by the annotator's history: the gold-or-not draw of a claim."""
    key = f"{project.pk}:{annotator.pk}:{newest_annotation_id}:{sorted(excluded)}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _unanswered_gold(*, project: Project, annotator, guideline: Guideline, excluded: set):
    """The annotator's first gold item they have neither answered nor skipped, or None."""
    answered = Annotation.objects.filter(project=project, annotator=annotator).values("item_id")
    skipped = Skip.objects.filter(annotator=annotator, guideline=guideline).values("item_id")
    gold_ids = (
        GoldLabel.objects.filter(item__project=project)
        .exclude(item_id__in=answered)
        .exclude(item_id__in=skipped)
        .exclude(item_id__in=excluded)
        .order_by("item_id")
        .values_list("item_id", flat=True)
    )
    item_id = gold_ids.first()
    return None if item_id is None else Item.objects.get(pk=item_id)


def gold_claim(
    *, project: Project, annotator, guideline: Guideline, excluded: set, lease_seconds: int
) -> Item | None:
    """A gold item for this claim (leased to the annotator), or None for a regular claim.

    Raises AnnotatorPaused for a paused annotator. Called by `queue.next_item` before the
    regular claim, when the annotator holds no lease to come back to.
    """
    membership = (
        Membership.objects.filter(project=project, user=annotator)
        .only("id", "role", "paused_at", "pause_reason", "onboarded_at")
        .first()
    )
    if membership is None or membership.role != Membership.Role.ANNOTATOR:
        return None
    if membership.paused_at is not None:
        raise AnnotatorPaused(membership)
    n_gold = GoldLabel.objects.filter(item__project=project).count()
    if not n_gold:
        return None
    onboarding = membership.onboarded_at is None and onboarding_size(project=project, n_gold=n_gold)
    if onboarding:
        answered = (
            Annotation.objects.filter(project=project, annotator=annotator, item__is_gold=True)
            .values("item_id")
            .distinct()
            .count()
        )
        serve = answered < onboarding
    else:
        newest = (
            Annotation.objects.filter(project=project, annotator=annotator)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        draw = _draw(
            project=project, annotator=annotator, newest_annotation_id=newest, excluded=excluded
        )
        serve = draw < project.gold_rate
    if not serve:
        return None
    item = _unanswered_gold(
        project=project, annotator=annotator, guideline=guideline, excluded=excluded
    )
    if item is not None:
        Lease.objects.update_or_create(
            item=item,
            annotator=annotator,
            defaults={
                "guideline": guideline,
                "expires_at": timezone.now() + timedelta(seconds=lease_seconds),
            },
        )
    return item


def gold_answer_recorded(*, project: Project, annotator) -> Membership | None:
    """After an annotator answered a gold item: score their onboarding once it is complete.

    Below `gold_pass_score` the annotator is paused (and their leases released, so the page
    they have open cannot hand them another item); otherwise they are onboarded. Returns the
    membership when it changed.
    """
    membership = (
        Membership.objects.select_for_update()
        .filter(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
        .first()
    )
    if membership is None or membership.onboarded_at is not None or membership.paused_at:
        return None
    n_gold = GoldLabel.objects.filter(item__project=project).count()
    needed = onboarding_size(project=project, n_gold=n_gold)
    answers = gold_answers(project=project, annotator_ids=[annotator.pk])
    if not needed or len(answers) < needed:
        return None
    correct = sum(a.correct for a in answers)
    accuracy = correct / len(answers)
    now = timezone.now()
    if accuracy >= project.gold_pass_score:
        membership.onboarded_at = now
        membership.save(update_fields=["onboarded_at"])
        return membership
    membership.paused_at = now
    membership.pause_reason = PAUSE_REASON.format(
        correct=correct, n=len(answers), accuracy=accuracy, pass_score=project.gold_pass_score
    )[:255]
    membership.save(update_fields=["paused_at", "pause_reason"])
    Lease.objects.filter(annotator=annotator, item__project=project).delete()
    return membership


@transaction.atomic
def membership_continue(*, project: Project, user) -> Membership:
    """A manager lets a paused (or not yet onboarded) annotator label: onboarded, not paused."""
    membership = Membership.objects.select_for_update().filter(project=project, user=user).first()
    if membership is None:
        raise ValidationError({"user": "This user is not a member of the project."})
    if membership.role != Membership.Role.ANNOTATOR:
        raise ValidationError({"user": "Only annotators are paused and continued."})
    membership.paused_at = None
    membership.pause_reason = ""
    membership.onboarded_at = timezone.now()
    membership.save(update_fields=["paused_at", "pause_reason", "onboarded_at"])
    return membership
