"""Uploading model class probabilities: JSON rows or a CSV file."""

import csv
import io

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, ValidationError
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.models import PredictionSet
from analysis.services.predictions import PredictionsRejected, predictions_upload
from labeling.permissions import REVIEWER, project_for


def _csv_rows(fileobj):
    """(classes, rows) from a CSV with columns external_id + one per label name."""
    text = io.TextIOWrapper(fileobj, encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationError({"file": "The CSV file is empty."})
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError({"file": f"The file is not readable CSV: {exc}"})
    header = [h.strip() for h in header]
    if "external_id" not in header:
        raise ValidationError({"file": "The CSV needs an external_id column."})
    id_column = header.index("external_id")
    class_columns = [i for i in range(len(header)) if i != id_column]
    classes = [header[i] for i in class_columns]

    def rows():
        try:
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                # A short or long row keeps the cells it has; the service reports the count.
                yield {
                    "external_id": record[id_column] if id_column < len(record) else "",
                    "probabilities": [record[i] for i in class_columns if i < len(record)]
                    + record[len(header) :],
                }
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ValidationError({"file": f"The file is not readable CSV: {exc}"})

    return classes, rows()


class PredictionRowSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    probabilities = serializers.ListField(child=serializers.FloatField())


class PredictionsUploadSerializer(serializers.Serializer):
    """Schema of the JSON upload (validated by the service, which reports row numbers)."""

    model = serializers.CharField(max_length=100)
    classes = serializers.ListField(child=serializers.CharField())
    rows = PredictionRowSerializer(many=True)


class PredictionSetSerializer(serializers.Serializer):
    model = serializers.CharField()
    classes = serializers.ListField(child=serializers.CharField())
    rows = serializers.IntegerField(source="n_rows")
    created_at = serializers.DateTimeField()


class PredictionsView(APIView):
    """GET lists a project's stored models; POST uploads one (reviewers and managers).

    JSON: {"model", "classes": [label names], "rows": [{"external_id", "probabilities"}]}.
    Multipart: `file` (CSV: external_id + one column per label name) and a `model` field.
    Span projects: JSON only, `classes` = ["O", <entity types>], and each row's
    `probabilities` one list per token of the item's text (DESIGN.md, "Span projects").
    Re-uploading a model name replaces its predictions. Row numbers in errors count data rows
    from 1 (for a CSV, the row after the header is row 1).
    """

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(responses=PredictionSetSerializer(many=True))
    def get(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        sets = PredictionSet.objects.filter(project=project).order_by("model")
        return Response(PredictionSetSerializer(sets, many=True).data)

    @extend_schema(
        request={
            "application/json": PredictionsUploadSerializer,
            "multipart/form-data": inline_serializer(
                "PredictionsCsvUpload",
                {"model": serializers.CharField(), "file": serializers.FileField()},
            ),
        },
        responses={201: PredictionSetSerializer},
    )
    def post(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        try:
            upload = request.FILES.get("file")
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // (1024 * 1024)
            return Response(
                {
                    "detail": f"The JSON body is larger than {limit} MB; "
                    "upload big prediction sets as a CSV file (multipart) instead."
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        if upload is not None and project.is_spans:
            return Response(
                {
                    "detail": "A span project takes token probabilities as JSON: "
                    '{"model", "classes": ["O", <entity types>...], "rows": [{"external_id", '
                    '"probabilities": [[...one list per token...]]}]}; a CSV has no room '
                    "for one row per token."
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        if upload is not None:
            classes, rows = _csv_rows(upload.file)
            model = request.data.get("model")
        else:
            data = request.data if isinstance(request.data, dict) else {}
            model, classes, rows = data.get("model"), data.get("classes"), data.get("rows")
            if not isinstance(rows, list):
                raise ValidationError({"rows": "Give rows as a list of objects."})
        try:
            prediction_set = predictions_upload(
                project=project, model=model, classes=classes, rows=rows, user=request.user
            )
        except PredictionsRejected as exc:
            return Response(
                {"detail": str(exc), "errors": exc.errors}, status=status.HTTP_400_BAD_REQUEST
            )
        return Response(
            {
                "model": prediction_set.model,
                "classes": prediction_set.classes,
                "rows": prediction_set.n_rows,
            },
            status=status.HTTP_201_CREATED,
        )
