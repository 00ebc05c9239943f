"""The labeling domain: projects, members, items, guidelines, annotations, reviews, exports."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class Project(models.Model):
    class DataType(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        TABULAR = "tabular", "Tabular"

    class TaskType(models.TextChoices):
        SINGLE = "single_label", "Single label"
        MULTI = "multi_label", "Multi label"
        SPANS = "spans", "Spans (named entities)"

    class QueueOrder(models.TextChoices):
        IMPORT = "import", "Import order"
        RANDOM = "random", "Seeded random"
        # Model in the loop: `Item.priority` (lowest first), written by the queue-scores job.
        UNCERTAINTY = "uncertainty", "Least confident model prediction first"
        ACTIVELAB = "activelab", "Most useful next label first (ActiveLab)"

    class Suggestions(models.TextChoices):
        OFF = "off", "Off"
        SHOW = "show", "Show the model's label beside the item"
        PREFILL = "prefill", "Pre-select the model's label"

    class LabelStrategy(models.TextChoices):
        MAJORITY = "majority", "Majority vote"
        DAWID_SKENE = "dawid_skene", "Dawid-Skene"
        CROWDLAB = "crowdlab", "CROWDLAB"
        REVIEWED = "reviewed", "Reviewed only"

    class TieRule(models.TextChoices):
        UNRESOLVED = "unresolved", "Ties stay unresolved"
        FIRST_CLASS = "first_class", "Ties go to the first class in label order"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    data_type = models.CharField(max_length=16, choices=DataType.choices, default=DataType.TEXT)
    task_type = models.CharField(max_length=16, choices=TaskType.choices, default=TaskType.SINGLE)
    ordered = models.BooleanField(default=False, help_text="Classes are ordinal.")
    overlap = models.PositiveSmallIntegerField(default=1)
    queue_order = models.CharField(
        max_length=16, choices=QueueOrder.choices, default=QueueOrder.IMPORT
    )
    queue_seed = models.IntegerField(default=0)
    default_label_strategy = models.CharField(
        max_length=16, choices=LabelStrategy.choices, default=LabelStrategy.MAJORITY
    )
    tie_rule = models.CharField(max_length=16, choices=TieRule.choices, default=TieRule.UNRESOLVED)
    # Model in the loop (README, "Models in the loop").
    suggestions = models.CharField(
        max_length=16, choices=Suggestions.choices, default=Suggestions.OFF
    )
    suggestion_model = models.CharField(
        max_length=100, default="builtin", help_text="The prediction set suggestions come from."
    )
    suggestion_rate = models.FloatField(
        default=1.0, help_text="Share of (item, annotator) pairs shown a suggestion, 0 to 1."
    )
    scores_refresh_every = models.PositiveIntegerField(
        default=200, help_text="Refresh the queue scores after this many new annotations."
    )
    # Gold questions.
    gold_rate = models.FloatField(
        default=0.05, help_text="Share of an annotator's items that are gold questions."
    )
    gold_onboarding = models.PositiveSmallIntegerField(
        default=5, help_text="A new annotator's first items that are gold questions."
    )
    gold_pass_score = models.FloatField(
        default=0.8, help_text="Onboarding accuracy below which an annotator is paused."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="project_overlap_gte_1"),
            models.CheckConstraint(
                condition=Q(suggestion_rate__gte=0, suggestion_rate__lte=1),
                name="project_suggestion_rate_share",
            ),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="project_gold_rate_share"
            ),
            models.CheckConstraint(
                condition=Q(gold_pass_score__gte=0, gold_pass_score__lte=1),
                name="project_gold_pass_score_share",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_multi_label(self) -> bool:
        return self.task_type == self.TaskType.MULTI

    @property
    def is_single_label(self) -> bool:
        return self.task_type == self.TaskType.SINGLE

    @property
    def is_spans(self) -> bool:
        return self.task_type == self.TaskType.SPANS

    def clean(self):
        if self.is_spans and self.data_type != self.DataType.TEXT:
            raise ValidationError({"task_type": "Span projects label text items."})

    def current_guideline(self) -> "Guideline | None":
        """The newest published guideline version (None before the first)."""
        return self.guidelines.current()


class LabelClass(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=100)
    key = models.CharField(max_length=1, blank=True, help_text="Keyboard shortcut.")
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="label_name_unique"),
            models.UniqueConstraint(
                fields=["project", "key"], condition=~Q(key=""), name="label_key_unique"
            ),
            models.CheckConstraint(condition=~Q(name=""), name="label_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class Profile(models.Model):
    """Extra facts about a user; `is_external` marks accounts created by an import."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="concord_profile"
    )
    is_external = models.BooleanField(default=False)


class Membership(models.Model):
    class Role(models.TextChoices):
        MANAGER = "manager", "Manager"
        REVIEWER = "reviewer", "Reviewer"
        ANNOTATOR = "annotator", "Annotator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # Gold onboarding: an annotator below the pass score is paused until a manager lets them
    # continue (`onboarded_at` is set then, or when they pass).
    paused_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=255, blank=True)
    onboarded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="membership_unique"),
            models.CheckConstraint(
                condition=Q(role__in=["manager", "reviewer", "annotator"]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project}"


class ImportBatch(models.Model):
    class Kind(models.TextChoices):
        ITEMS = "items", "Items"
        ANNOTATIONS = "annotations", "Annotations"
        GOLD = "gold", "Gold labels"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        LABELSTUDIO = "labelstudio", "Label Studio JSON"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ITEMS)
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.CSV)
    filename = models.CharField(max_length=255, blank=True)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=255, blank=True)
    rows = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class ImportUpload(models.Model):
    """The uploaded bytes of an import that runs as a job, in chunks.

    Kept in the database because a worker may run on another machine than the web process.
    """

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["batch", "seq"], name="import_chunk_unique")]


class Item(models.Model):
    # No separate index on project: the unique (project, external_id) index serves it, and
    # every index slows bulk imports.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    batch = models.ForeignKey(
        ImportBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="items"
    )
    external_id = models.CharField(max_length=255)
    data = models.JSONField(default=dict)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Relabel requests come first in queues until they are labeled under a newer version.
    relabel_requested_at = models.DateTimeField(null=True, blank=True)
    # Annotations counting towards the item's overlap in its current round (all annotations,
    # or those made since `relabel_requested_at`). Kept in step by the annotating and
    # relabeling services, so the queue finds open items through an index instead of counting
    # annotations; `labeling.services.queue.progress_refresh` recomputes it after bulk writes.
    done_count = models.PositiveIntegerField(default=0)
    # The queue score of `uncertainty` and `activelab` orders, lowest first; NULL until the
    # queue-scores job has scored the item (NULL items come after scored ones).
    priority = models.FloatField(null=True, blank=True)
    # A gold question (it has a `GoldLabel`): served by the gold path of the queue only, and
    # its annotations never count in agreement or consensus.
    is_gold = models.BooleanField(default=False)
    # The item's lease rows as of the last lease write: how many, and the earliest expiry.
    # The queue's claim reads them to pass over items its leases fill without probing the
    # lease table per item (`labeling.services.queue`, "Lease summary").
    lease_count = models.PositiveSmallIntegerField(default=0)
    leases_expire_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # Scored queues: partial, so imports (priority NULL) never pay for it.
            models.Index(
                fields=["project", "priority", "id"],
                condition=Q(priority__isnull=False),
                name="item_priority_idx",
            ),
            # The queue: open items of a project, the most advanced first, in import order.
            models.Index(fields=["project", "-done_count", "id"], name="item_queue_idx"),
            # Open relabel requests come first; few items have one, and the done_count key
            # passes over relabeled items whose new round is already complete.
            models.Index(
                fields=["project", "done_count", "relabel_requested_at"],
                condition=Q(relabel_requested_at__isnull=False),
                name="item_relabel_idx",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="item_external_id_unique"
            ),
            models.CheckConstraint(condition=~Q(external_id=""), name="item_external_id_set"),
        ]

    def __str__(self) -> str:
        return self.external_id


class GuidelineQuerySet(models.QuerySet):
    """The publication rule in one place: a draft has no `published_at`."""

    def published(self):
        return self.filter(published_at__isnull=False)

    def drafts(self):
        return self.filter(published_at__isnull=True)

    def current(self) -> "Guideline | None":
        """The newest published version among these (None when none is published)."""
        return self.published().order_by("-version").first()


class Guideline(models.Model):
    """One version of a project's labeling instructions.

    A draft has no `published_at`; publishing freezes it as version N+1. At most one draft.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guidelines")
    version = models.PositiveIntegerField(null=True, blank=True)
    body = models.TextField(blank=True)
    changelog = models.TextField(blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GuidelineQuerySet.as_manager()

    class Meta:
        ordering = ["project", "version"]
        constraints = [
            models.UniqueConstraint(fields=["project", "version"], name="guideline_version_unique"),
            models.UniqueConstraint(
                fields=["project"],
                condition=Q(published_at__isnull=True),
                name="guideline_one_draft",
            ),
            models.CheckConstraint(
                condition=Q(published_at__isnull=True, version__isnull=True)
                | Q(published_at__isnull=False, version__gte=1),
                name="guideline_published_has_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project} v{self.version}" if self.version else f"{self.project} draft"

    def save(self, *args, **kwargs):
        if self.pk and not kwargs.pop("allow_published_edit", False):
            stored = Guideline.objects.filter(pk=self.pk).values("published_at").first()
            if stored and stored["published_at"] is not None:
                raise ValidationError("A published guideline version is immutable.")
        super().save(*args, **kwargs)

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class WorkedExample(models.Model):
    guideline = models.ForeignKey(Guideline, on_delete=models.CASCADE, related_name="examples")
    item = models.ForeignKey(Item, null=True, blank=True, on_delete=models.SET_NULL)
    text = models.TextField(blank=True, help_text="The example's content, kept as shown.")
    label = models.ForeignKey(LabelClass, on_delete=models.CASCADE, related_name="+")
    why = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]


class Annotation(models.Model):
    """One annotator's label(s) for one item under one guideline version.

    Single-label projects use `label`; multi-label projects use `labels` (label class ids);
    span projects use `spans`: `[[start, end, label_id], ...]`, character offsets into the
    item's text on token boundaries, sorted, not overlapping (`labeling/spans.py`). Flat
    integer lists rather than a row per span, so a million spans load as one column.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotations"
    )
    guideline = models.ForeignKey(Guideline, on_delete=models.RESTRICT, related_name="annotations")
    label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.RESTRICT, related_name="annotations"
    )
    labels = models.JSONField(default=list, blank=True)
    spans = models.JSONField(default=list, blank=True)
    unsure = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    lead_time_ms = models.PositiveIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=64, null=True, blank=True)
    # The model suggestion the annotator was shown ("" = none): its model, and its label
    # (classification) or spans (span projects).
    suggestion_model = models.CharField(max_length=100, blank=True, default="")
    suggestion_label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    suggestion_spans = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator", "guideline"], name="annotation_once_per_version"
            ),
            models.UniqueConstraint(
                fields=["annotator", "request_id"],
                condition=Q(request_id__isnull=False),
                name="annotation_request_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "guideline"]),
            models.Index(fields=["project", "annotator"]),
        ]


class AnnotationRevision(models.Model):
    """A previous value of an annotation its author changed within the same version."""

    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    label = models.ForeignKey(LabelClass, null=True, on_delete=models.RESTRICT, related_name="+")
    labels = models.JSONField(default=list, blank=True)
    spans = models.JSONField(default=list, blank=True)
    unsure = models.BooleanField(default=False)
    comment = models.TextField(blank=True)
    replaced_at = models.DateTimeField(auto_now_add=True)


class Skip(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    guideline = models.ForeignKey(Guideline, on_delete=models.RESTRICT, related_name="+")
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator", "guideline"], name="skip_once_per_version"
            )
        ]


class GuidelineSeen(models.Model):
    """The newest guideline version an annotator has been shown the "updated" banner for."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    version = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="guideline_seen_unique")
        ]


class Lease(models.Model):
    """A short claim on an item, so concurrent annotators never over-fill its overlap."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    guideline = models.ForeignKey(Guideline, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="lease_once_per_annotator")
        ]


class Review(models.Model):
    """A reviewer's final label for an item; it always wins over any aggregate."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="review")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.ForeignKey(LabelClass, null=True, on_delete=models.RESTRICT, related_name="+")
    labels = models.JSONField(default=list, blank=True)
    spans = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class Suggestion(models.Model):
    """A model's suggestion for an item: the top class of its newest probabilities.

    Written in bulk by analysis (`analysis/services/suggestions.py`) from the project's
    `suggestion_model` prediction set; read by the labeling pages and API.
    """

    item = models.OneToOneField(
        Item, on_delete=models.CASCADE, primary_key=True, related_name="suggestion"
    )
    model = models.CharField(max_length=100)
    label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    probability = models.FloatField(null=True, blank=True)
    spans = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)


class GoldLabel(models.Model):
    """The known answer of a gold question (its item has `is_gold` set)."""

    item = models.OneToOneField(
        Item, on_delete=models.CASCADE, primary_key=True, related_name="gold"
    )
    label = models.ForeignKey(
        LabelClass, null=True, blank=True, on_delete=models.RESTRICT, related_name="+"
    )
    labels = models.JSONField(default=list, blank=True)
    spans = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)


class Webhook(models.Model):
    """A project's subscription: Concord POSTs the chosen events to `url`, signed with `secret`
    (README, "Webhooks"; the delivery rules are in labeling/services/webhooks.py)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=2000)
    secret = models.CharField(max_length=200)
    events = models.JSONField(default=list)
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret_hint(self) -> str:
        """The secret as lists show it: its last four characters."""
        return f"…{self.secret[-4:]}"


class WebhookDelivery(models.Model):
    """One attempt to deliver one event to one webhook: the delivery log.

    Every attempt is a row; `event_id` is the same for every attempt of an event (receivers
    dedupe on it). Bounded: the newest `CONCORD_WEBHOOK_LOG_KEEP` rows per webhook are kept.
    """

    class Status(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        RETRYING = "retrying", "Failed, will retry"
        FAILED = "failed", "Failed"

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=64)
    event_id = models.UUIDField()
    payload = models.JSONField(default=dict)
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["webhook", "-created_at", "-id"], name="webhook_delivery_log_idx")
        ]
