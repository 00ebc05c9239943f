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
  annotator, the project, their number of gold answers and the regular item the queue would
  give: deterministic for a given history (no flakiness), different from one claim to the
  next. A gold item is served at most once per annotator (skipped ones do not come back under
  the same version). While any regular item is left; with none left, no gold either (a
  stream of nothing but gold would give them away).
- Gold items are not limited by the overlap: every annotator may answer each once. Their
  answers do not move `Item.done_count` (they are not regular progress).
- An answer is right when it equals the gold answer exactly: the same class (single-label),
  the same set of classes (multi-label), the same set of spans (span projects). The
  annotator's newest answer per gold item counts.

Cost: a claim reads the member's role and pause and whether the project has gold items (the
small `GoldLabel` table) in one query; in a project with gold, an annotator's claim also counts
their gold answers (one index probe per gold item). Serving a gold item reads the gold items
by the `GoldLabel` table, never by a scan of the project's items or the annotator's work.
"""

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from labeling import rawsql
from labeling.gold_scores import gold_answers
from labeling.models import Annotation, GoldLabel, Guideline, Item, Lease, Membership, Project, Skip
from labeling.services.leases import leases_release, leases_summarize

# The member's standing and whether the project has gold, read on every claim: written out, as
# the rest of the queue (compiling it through the ORM cost more than the claim's own statements).
MEMBER_FIELDS = ("id", "role", "paused_at", "pause_reason", "onboarded_at")
MEMBER_WITH_HAS_GOLD = (
    f"SELECT {rawsql.columns(Membership, MEMBER_FIELDS, alias='m')}, EXISTS ("
    f" SELECT 1 FROM {GoldLabel._meta.db_table} g JOIN {Item._meta.db_table} i"
    " ON i.id = g.item_id WHERE i.project_id = %s)"
    f" FROM {Membership._meta.db_table} m WHERE m.project_id = %s AND m.user_id = %s"
)

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


def _draw(*, project: Project, annotator, n_gold_answered: int, item_id: int) -> float:
    """A number in [0, 1) fixed by the claim's history: the gold-or-not draw of a claim."""
    key = f"{project.pk}:{annotator.pk}:{n_gold_answered}:{item_id}"
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


def _gold_answered(*, project: Project, annotator) -> int:
    """How many gold items the annotator answered: one probe of the (item, annotator) index
    per gold item, never a scan of the annotator's annotations."""
    gold = GoldLabel.objects.filter(item__project=project).values("item_id")
    answers = Annotation.objects.filter(annotator=annotator, item_id__in=gold)
    return answers.values("item_id").distinct().count()


def _lease(*, item: Item, annotator, guideline: Guideline, lease_seconds: int) -> Item:
    Lease.objects.update_or_create(
        item=item,
        annotator=annotator,
        defaults={
            "guideline": guideline,
            "expires_at": timezone.now() + timedelta(seconds=lease_seconds),
        },
    )
    with connection.cursor() as cursor:
        leases_summarize(cursor, [item.pk])
    return item


def gold_claim(
    *,
    project: Project,
    annotator,
    guideline: Guideline,
    excluded: set,
    lease_seconds: int,
    regular: Callable[[], Item | None],
) -> Item | None:
    """The item of this claim, leased to the annotator: a gold item or the regular one.

    `regular`: the queue's regular claim (it leases the item it returns). Called by
    `queue.next_item` when the annotator holds no lease to come back to. Raises
    AnnotatorPaused for a paused annotator.

    One query for members who get no gold (other roles, projects without gold items). While
    an annotator is onboarded, a gold item they have not answered comes before any regular
    claim. Afterwards the regular item is claimed first and the draw, keyed by that item and
    the number of gold answers so far, replaces it by a gold item with probability
    `gold_rate` (the regular item's lease is released): the key changes with every answer, and
    costs no count of the annotator's regular work.
    """
    found = rawsql.fetch_with_extra(
        Membership, MEMBER_WITH_HAS_GOLD, [project.pk, project.pk, annotator.pk], MEMBER_FIELDS
    )
    if not found or found[0][0].role != Membership.Role.ANNOTATOR:
        return regular()
    membership, (has_gold,) = found[0]
    if membership.paused_at is not None:
        raise AnnotatorPaused(membership)
    if not has_gold:
        return regular()
    n_answered = _gold_answered(project=project, annotator=annotator)
    if membership.onboarded_at is None and project.gold_onboarding:
        n_gold = GoldLabel.objects.filter(item__project=project).count()
        if n_answered < onboarding_size(project=project, n_gold=n_gold):
            gold = _unanswered_gold(
                project=project, annotator=annotator, guideline=guideline, excluded=excluded
            )
            if gold is not None:
                return _lease(
                    item=gold, annotator=annotator, guideline=guideline, lease_seconds=lease_seconds
                )
    item = regular()
    if item is None or not project.gold_rate:
        return item
    draw = _draw(project=project, annotator=annotator, n_gold_answered=n_answered, item_id=item.pk)
    if draw >= project.gold_rate:
        return item
    gold = _unanswered_gold(
        project=project, annotator=annotator, guideline=guideline, excluded=excluded
    )
    if gold is None:
        return item
    leases_release(item=item, annotator=annotator)
    return _lease(item=gold, annotator=annotator, guideline=guideline, lease_seconds=lease_seconds)


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
    leases_release(annotator=annotator, project=project)
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
