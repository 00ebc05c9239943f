"""The annotator's API: next item, annotations (blind for annotators)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors
from labeling.api.negotiation import ViewRenderer
from labeling.api.pagination import PageNumberPagination
from labeling.api.parsers import StrictJSONParser
from labeling.api.project_role import ProjectRoleMixin
from labeling.models import Item
from labeling.permissions import ANNOTATOR
from labeling.services.annotating import ItemFull, annotation_submit
from labeling.services.gold import AnnotatorPaused
from labeling.services.queue import next_item
from labeling.spans import item_text, token_bounds


class NextItemView(ProjectRoleMixin, APIView):
    """The annotator's next item (the same one again until it is submitted or skipped)."""

    min_role = ANNOTATOR
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ViewRenderer

    @extend_schema(
        responses={
            200: inline_serializer(
                "NextItem",
                {
                    "item": inline_serializer(
                        "QueueItem",
                        {
                            "id": serializers.IntegerField(),
                            "external_id": serializers.CharField(),
                            "data": serializers.JSONField(),
                        },
                    ),
                    "guideline_version": serializers.IntegerField(),
                    "suggestion": inline_serializer(
                        "ShownSuggestion",
                        {
                            "model": serializers.CharField(),
                            "label": serializers.CharField(allow_null=True),
                            "probability": serializers.FloatField(allow_null=True),
                            "spans": serializers.ListField(
                                child=serializers.DictField(), help_text="Span projects only."
                            ),
                            "mode": serializers.ChoiceField(choices=["show", "prefill"]),
                        },
                        required=False,
                        help_text="Present only when the annotator is shown the model's "
                        "suggestion for this item; it is recorded with the annotation.",
                    ),
                },
            ),
            204: OpenApiResponse(description="Nothing is left for this annotator."),
            409: OpenApiResponse(
                description="The annotator is paused after gold onboarding: `{detail, "
                "paused_at}`, until a manager lets them continue."
            ),
        }
    )
    def get(self, request, project_id):
        guideline = selectors.current_guideline(access=self.access, with_text=False)
        try:
            item = next_item(project=self.project, annotator=request.user, guideline=guideline)
        except AnnotatorPaused as paused:
            return Response(
                {
                    "detail": f"You are paused: {paused}. A manager can let you continue.",
                    "paused_at": paused.membership.paused_at,
                },
                status=status.HTTP_409_CONFLICT,
            )
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        answer = {"id": item.pk, "external_id": item.external_id, "data": item.data}
        if self.project.is_spans:
            answer["tokens"] = token_bounds(item_text(item.data))
        body = {"item": answer, "guideline_version": guideline.version}
        shown = selectors.suggestion_shown(
            project=self.project, item_id=item.pk, annotator_id=request.user.pk
        )
        if shown is not None:
            body["suggestion"] = selectors.suggestion_dict(project=self.project, shown=shown)
        return Response(body)


class AnnotationInSerializer(serializers.Serializer):
    item = serializers.IntegerField(min_value=1)
    label = serializers.JSONField(required=False, allow_null=True)
    labels = serializers.ListField(child=serializers.JSONField(), required=False, allow_null=True)
    spans = serializers.ListField(
        child=serializers.JSONField(), required=False, allow_null=True,
        help_text="Span projects: [{start, end, label}], character offsets on token "
        "boundaries, end exclusive; [] = no entities.",
    )  # fmt: skip
    unsure = serializers.BooleanField(required=False, default=False)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    lead_time_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    request_id = serializers.CharField(required=False, allow_null=True, max_length=64)


def _submission(data) -> dict:
    """The body checked as `AnnotationInSerializer` documents it (the service checks the rest).

    By hand because DRF's serializer validation cost more CPU than the submission's own
    statements (bench/labeling_load.py); the errors have the serializer's shape.
    """
    if not isinstance(data, dict):
        raise ValidationError({"detail": "The body must be a JSON object."})
    errors = {}
    item = data.get("item")
    if isinstance(item, bool) or not isinstance(item, int) or item < 1:
        errors["item"] = ["The id of an item (a positive whole number) is required."]
    labels = data.get("labels")
    if labels is not None and not isinstance(labels, list):
        errors["labels"] = ["A list of label names."]
    spans = data.get("spans")
    if spans is not None and not isinstance(spans, list):
        errors["spans"] = ["A list of {start, end, label}."]
    unsure = data.get("unsure", False)
    if not isinstance(unsure, bool):
        errors["unsure"] = ["true or false."]
    comment = data.get("comment", "")
    if not isinstance(comment, str) or len(comment) > 5000:
        errors["comment"] = ["A text of at most 5000 characters."]
    lead_time_ms = data.get("lead_time_ms")
    if lead_time_ms is not None and (
        isinstance(lead_time_ms, bool) or not isinstance(lead_time_ms, int) or lead_time_ms < 0
    ):
        errors["lead_time_ms"] = ["A whole number of milliseconds, at least 0."]
    request_id = data.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 64):
        errors["request_id"] = ["A text of at most 64 characters."]
    if errors:
        raise ValidationError(errors)
    return {
        "item": item,
        "label": data.get("label"),
        "labels": labels,
        "spans": spans,
        "unsure": unsure,
        "comment": comment,
        "lead_time_ms": lead_time_ms,
        "request_id": request_id,
    }


class AnnotationOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField()
    external_id = serializers.CharField()
    annotator = serializers.CharField()
    label = serializers.CharField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField())
    spans = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="Span projects only."
    )
    unsure = serializers.BooleanField()
    comment = serializers.CharField()
    lead_time_ms = serializers.IntegerField(allow_null=True)
    guideline_version = serializers.IntegerField()
    request_id = serializers.CharField(allow_null=True)
    suggestion_model = serializers.CharField(
        help_text="The model whose suggestion was shown; '' = none."
    )
    suggestion_label = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AnnotationsView(ProjectRoleMixin, APIView):
    """GET: annotations (annotators see only their own). POST: submit one annotation."""

    min_role = ANNOTATOR
    pagination_class = PageNumberPagination  # documents the {count, next, previous, results} page
    # Annotators' tools talk JSON; one parser and one renderer also spare the negotiation.
    parser_classes = [StrictJSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ViewRenderer

    @extend_schema(
        parameters=[],
        responses=AnnotationOutSerializer(many=True),
        description="Reviewers and managers see every annotation and may filter by `item`, "
        "`annotator` (username) and `guideline_version`; annotators see only their own.",
    )
    def get(self, request, project_id):
        filters = {}
        params = request.query_params
        try:
            if params.get("item"):
                filters["item_id"] = int(params["item"])
            if params.get("guideline_version"):
                filters["guideline__version"] = int(params["guideline_version"])
        except ValueError:
            raise ValidationError({"detail": "`item` and `guideline_version` are numbers."})
        if self.access.role == ANNOTATOR:
            filters["annotator_id"] = request.user.pk  # blind: their own labels only
        elif params.get("annotator"):
            filters["annotator__username"] = params["annotator"]
        rows = selectors.annotation_rows_for_api(project=self.project, filters=filters)
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(
            selectors.annotation_dicts(project=self.project, rows=page)
        )

    @extend_schema(
        request=AnnotationInSerializer,
        responses={201: AnnotationOutSerializer},
        description="`{item, label}` or `{item, labels: [...]}`; a retry with the same "
        "`request_id` (or `Idempotency-Key` header) returns the stored annotation.",
    )
    def post(self, request, project_id):
        data = _submission(request.data)
        # The service locks the row and refuses an item of another project.
        item = Item(pk=data["item"], project=self.project)
        try:
            annotation = annotation_submit(
                item=item,
                annotator=request.user,
                label=data.get("label"),
                labels=data.get("labels"),
                spans=data.get("spans"),
                request_id=data.get("request_id") or request.headers.get("Idempotency-Key"),
                unsure=data["unsure"],
                comment=data["comment"],
                lead_time_ms=data.get("lead_time_ms"),
                guideline=selectors.current_guideline(access=self.access, with_text=False),
            )
        except ItemFull as exc:
            return Response(
                {"detail": exc.message_dict["item"][0], **exc.message_dict},
                status=status.HTTP_409_CONFLICT,
            )
        names = None
        if (
            annotation.label_id
            and not annotation.labels
            and annotation.suggestion_label_id in (None, annotation.label_id)
        ):  # the label object is at hand
            names = {annotation.label_id: annotation.label.name}
        (row,) = selectors.annotation_dicts(project=self.project, rows=[annotation], names=names)
        return Response(row, status=status.HTTP_201_CREATED)
