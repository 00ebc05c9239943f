"""The annotator's API: next item, annotations (blind for annotators)."""

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
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


class QueueItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    data = serializers.JSONField()


class ShownSuggestionSerializer(serializers.Serializer):
    model = serializers.CharField()
    label = serializers.CharField(allow_null=True)
    probability = serializers.FloatField(allow_null=True)
    spans = serializers.ListField(child=serializers.DictField(), help_text="Span projects only.")
    mode = serializers.ChoiceField(choices=["show", "prefill"])


class NextItemSerializer(serializers.Serializer):
    """The `next` answer (the endpoint, and a submission's `next` with `?next=1`)."""

    item = QueueItemSerializer()
    guideline_version = serializers.IntegerField()
    suggestion = ShownSuggestionSerializer(
        required=False,
        help_text="Present only when the annotator is shown the model's suggestion for this "
        "item; it is recorded with the annotation.",
    )


class NextItemView(ProjectRoleMixin, APIView):
    """The annotator's next item (the same one again until it is submitted or skipped)."""

    min_role = ANNOTATOR
    renderer_classes = [JSONRenderer]
    content_negotiation_class = ViewRenderer

    @extend_schema(
        responses={
            200: NextItemSerializer,
            204: OpenApiResponse(description="Nothing is left for this annotator."),
            409: OpenApiResponse(
                description="The annotator is paused after gold onboarding: `{detail, "
                "paused_at}`, until a manager lets them continue."
            ),
        }
    )
    def get(self, request, project_id):
        status_code, body = next_answer(self.access, request.user)
        return Response(body, status=status_code)


def next_answer(access, annotator) -> tuple[int, dict | None]:
    """The `next` endpoint's answer (status, body): 200 with the item, 204 with none left,
    409 with `{detail, paused_at}` for a paused annotator. A submission asked with `?next=1`
    embeds the same answer, so an annotator's tool needs one call per item."""
    project = access.project
    guideline = selectors.current_guideline(access=access, with_text=False)
    try:
        item = next_item(project=project, annotator=annotator, guideline=guideline)
    except AnnotatorPaused as paused:
        return status.HTTP_409_CONFLICT, {
            "detail": f"You are paused: {paused}. A manager can let you continue.",
            "paused_at": paused.membership.paused_at,
        }
    if item is None:
        return status.HTTP_204_NO_CONTENT, None
    answer = {"id": item.pk, "external_id": item.external_id, "data": item.data}
    if project.is_spans:
        answer["tokens"] = token_bounds(item_text(item.data))
    body = {"item": answer, "guideline_version": guideline.version}
    shown = selectors.suggestion_shown(project=project, item_id=item.pk, annotator_id=annotator.pk)
    if shown is not None:
        body["suggestion"] = selectors.suggestion_dict(project=project, shown=shown)
    return status.HTTP_200_OK, body


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


class AnnotationSubmittedSerializer(AnnotationOutSerializer):
    next = NextItemSerializer(
        required=False,
        allow_null=True,
        help_text="With `?next=1`: the annotator's next item, as `GET .../next/` answers it "
        "(null when none is left).",
    )
    paused = inline_serializer(
        "Paused",
        {"detail": serializers.CharField(), "paused_at": serializers.DateTimeField()},
        required=False,
        help_text="With `?next=1`, when the annotator is paused after gold onboarding "
        "(`next` is then null).",
    )


def with_next(body: dict, access, annotator) -> dict:
    """`body` plus the annotator's next item (`next`, and `paused` when they are paused)."""
    status_code, answer = next_answer(access, annotator)
    if status_code == status.HTTP_409_CONFLICT:
        return {**body, "next": None, "paused": answer}
    return {**body, "next": answer}


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
        parameters=[
            OpenApiParameter(
                "next",
                bool,
                description="1: answer with the annotator's next item too (`next`), so a "
                "tool needs one call per item, as the labeling page does.",
            )
        ],
        responses={201: AnnotationSubmittedSerializer},
        description="`{item, label}` or `{item, labels: [...]}`; a retry with the same "
        "`request_id` (or `Idempotency-Key` header) returns the stored annotation.",
    )
    def post(self, request, project_id):
        data = _submission(request.data)
        asks_next = request.query_params.get("next") in ("1", "true")
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
            body = {"detail": exc.message_dict["item"][0], **exc.message_dict}
            if asks_next:
                body = with_next(body, self.access, request.user)
            return Response(body, status=status.HTTP_409_CONFLICT)
        names = None
        if (
            annotation.label_id
            and not annotation.labels
            and annotation.suggestion_label_id in (None, annotation.label_id)
        ):  # the label object is at hand
            names = {annotation.label_id: annotation.label.name}
        (row,) = selectors.annotation_dicts(project=self.project, rows=[annotation], names=names)
        if asks_next:
            row = with_next(row, self.access, request.user)
        return Response(row, status=status.HTTP_201_CREATED)
