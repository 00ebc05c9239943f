"""Quality analytics: analysis runs and their result tables, uploaded model predictions, and
the dataset versions that exports record (analysis.exports)."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.models import Item, LabelClass, Project


class AnalysisRunQuerySet(models.QuerySet):
    def latest_succeeded(self, project: Project, kind: str) -> "AnalysisRun | None":
        """The newest succeeded run of `kind` in the project (by finish time), or None."""
        return (
            self.filter(project=project, kind=kind, status=AnalysisRun.Status.SUCCEEDED)
            .order_by("-finished_at", "-id")
            .first()
        )


class AnalysisRun(models.Model):
    class Kind(models.TextChoices):
        AGREEMENT = "agreement", "Agreement"
        LABEL_ISSUES = "label_issues", "Label issues"
        BASELINES = "baselines", "Baselines"
        SLICES = "slices", "Slices"
        DRIFT = "drift", "Drift"
        MODEL_REFRESH = "model_refresh", "Model refresh"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    message = models.CharField(max_length=255, blank=True)
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The Celery node (`celery@host`) that ran the latest attempt: which machine a run was on.
    worker = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AnalysisRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "kind", "status"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="run_progress_0_1"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class PredictionSet(models.Model):
    """Class probabilities for a project's items from one named model (uploaded or built in).

    Span projects store token probabilities: `classes` is `["O", <entity types in label
    order>]` and each Prediction holds the item's (n_tokens, len(classes)) matrix, row-major.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="prediction_sets")
    model = models.CharField(max_length=100)
    classes = models.JSONField(default=list, help_text="Label names, in probability order.")
    n_rows = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "model"], name="prediction_set_unique")
        ]


class Prediction(models.Model):
    prediction_set = models.ForeignKey(
        PredictionSet, on_delete=models.CASCADE, related_name="predictions"
    )
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    # float64 little-endian bytes, one value per class of the set (span projects: per token
    # and class, row-major): exact round trip of the
    # uploaded numbers, and at 100k x 10 about 7x faster to read back than JSON (see README).
    probabilities = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prediction_set", "item"], name="prediction_unique")
        ]


class LabelIssue(models.Model):
    """One item's row of a label-issue run; `resolution` records the reviewer's decision.

    Span projects: `given_label` and `suggested_label` are null, `quality` is the item's
    label quality score (cleanlab token classification), `is_issue` says a token was flagged,
    `flagged_tokens` says which and `given_spans` holds the spans judged.
    """

    class Resolution(models.TextChoices):
        OPEN = "open", "Open"
        ACCEPTED = "accepted", "Suggestion accepted"
        KEPT = "kept", "Label kept"
        AMBIGUOUS = "ambiguous", "Ambiguous"

    # Derived rows, written 100,000 at a time by the job from ids it has just read: checking
    # four foreign keys per row at commit cost more than cleanlab itself (bench/label_issues.py),
    # so these references are kept by the ORM's cascades rather than database constraints, and
    # only the indexes that reads use are kept (the unique (run, item) index serves `run`).
    run = models.ForeignKey(
        AnalysisRun,
        on_delete=models.CASCADE,
        related_name="label_issues",
        db_constraint=False,
        db_index=False,
    )
    item = models.ForeignKey(
        Item, on_delete=models.CASCADE, related_name="label_issues", db_constraint=False
    )
    given_label = models.ForeignKey(
        LabelClass,
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    suggested_label = models.ForeignKey(
        LabelClass,
        null=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    quality = models.FloatField()
    is_issue = models.BooleanField(default=False)
    rank = models.PositiveIntegerField()
    votes = models.JSONField(default=dict, blank=True)
    # Span projects: the tokens the run flagged, `[[start, end, given_id, suggested_id], ...]`
    # (character offsets; a label id, or null for O, outside any entity). Classification: [].
    flagged_tokens = models.JSONField(default=list, blank=True)
    # Span projects: the spans the run judged (the single annotation or the consensus),
    # `[[start, end, label_id], ...]`; accepting the issue applies the suggestions to them.
    given_spans = models.JSONField(default=list, blank=True)
    resolution = models.CharField(
        max_length=16, choices=Resolution.choices, default=Resolution.OPEN
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="label_issue_once_per_run")
        ]
        indexes = [models.Index(fields=["run", "is_issue", "rank"])]


class AnnotatorScore(models.Model):
    """Per-annotator figures of a run (agreement with others, quality, HLP, speed)."""

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="annotator_scores")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    n = models.PositiveIntegerField(default=0)
    agreement = models.FloatField(null=True, blank=True)
    quality = models.FloatField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "annotator"], name="annotator_score_unique")
        ]


class ItemDisagreement(models.Model):
    """Per-item disagreement of an agreement run; `score` ranks the items, highest first.

    Classification projects: `score` is the entropy of the item's labels in bits (the same
    value as `entropy`), `label_counts` is {label: times given}. Span projects: `score` is
    1 - the mean pairwise exact span F1 of the item's annotations (0: every pair marked the
    same spans), `entropy` is null (a span item has no label distribution) and `label_counts`
    is {annotator: spans marked}. An item with a score of 0 has no disagreement.
    """

    run = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="disagreements")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(default=0.0)
    entropy = models.FloatField(null=True, blank=True)
    n_annotations = models.PositiveIntegerField()
    label_counts = models.JSONField(default=dict)

    class Meta:
        ordering = ["-score", "item_id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="disagreement_once_per_run")
        ]


class WorkerHeartbeat(models.Model):
    """Written by the `heartbeat` task: proof that a worker picks up jobs."""

    hostname = models.CharField(max_length=255)
    token = models.CharField(max_length=64, blank=True)
    seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-seen_at", "-id"]


class DatasetVersion(models.Model):
    """A recorded export: enough to reproduce it and to diff it against another.

    Moved here from the labeling app with its table (`labeling_datasetversion`) and rows kept:
    see migrations analysis 0002 and labeling 0002.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    params = models.JSONField(default=dict)
    format = models.CharField(max_length=16)
    row_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    runs = models.JSONField(default=list, blank=True)
    # item id -> label snapshot (compressed numpy arrays) used for diffs between versions.
    label_snapshot = models.BinaryField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "labeling_datasetversion"
        ordering = ["-created_at", "-id"]

    @property
    def download_path(self) -> str:
        """Where the API serves this version's file again."""
        return f"/api/v1/projects/{self.project_id}/datasets/{self.pk}/"
