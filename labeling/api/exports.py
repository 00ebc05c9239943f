"""Dataset export over REST: streamed exports, recorded dataset versions, and their diffs."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.negotiation import ViewRenderer
from labeling.api.pagination import PageNumberPagination
from labeling.models import DatasetVersion, Item
from labeling.permissions import REVIEWER, project_for
from labeling.services.exporting import (
    CONTENT_TYPES,
    EXCLUDES,
    FORMATS,
    INCLUDES,
    STRATEGIES,
    DatasetExport,
    dataset_diff,
    dataset_export,
    dataset_version_export,
    export_params_parse,
)


def streamed(plan: DatasetExport) -> StreamingHttpResponse:
    response = StreamingHttpResponse(plan.stream(), content_type=plan.content_type)
    response["Content-Disposition"] = f'attachment; filename="{plan.filename()}"'
    if plan.version is not None:
        response["X-Concord-Dataset-Version"] = str(plan.version.pk)
        if plan.version.sha256:
            response["X-Concord-Sha256"] = plan.version.sha256
    return response


# One documented body per file format the stream can answer with (Label Studio: a JSON array).
FILE_RESPONSES = {
    (200, media.split(";")[0]): OpenApiTypes.BINARY for media in CONTENT_TYPES.values()
}
FILE_RESPONSES[(200, "application/json")] = {"type": "array", "items": {"type": "object"}}

EXPORT_PARAMETERS = [
    OpenApiParameter("format", str, enum=FORMATS, description="File format (default csv)."),
    OpenApiParameter("labels", str, enum=STRATEGIES, description="Label strategy."),
    OpenApiParameter("exclude", str, description=f"Comma-separated: {', '.join(EXCLUDES)}."),
    OpenApiParameter("min_agreement", float, description="0..1; reviewed items always pass."),
    OpenApiParameter("guideline_version", int, description="Only annotations of this version."),
    OpenApiParameter("include", str, enum=INCLUDES, description="One row per annotation."),
]


class ExportView(APIView):
    """Stream the project's cleaned dataset; every export is recorded as a dataset version."""

    content_negotiation_class = ViewRenderer

    @extend_schema(parameters=EXPORT_PARAMETERS, responses=FILE_RESPONSES)
    def get(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER)
        params = export_params_parse(request.query_params, project=project)
        return streamed(dataset_export(project=project, params=params, user=request.user))


class DatasetVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None)
    complete = serializers.SerializerMethodField()
    download = serializers.SerializerMethodField()

    class Meta:
        model = DatasetVersion
        fields = [
            "id",
            "format",
            "params",
            "row_count",
            "sha256",
            "complete",
            "guideline_version",
            "runs",
            "created_by",
            "created_at",
            "download",
        ]

    def get_complete(self, version) -> bool:
        return bool(version.sha256)

    def get_download(self, version) -> str:
        return f"/api/v1/projects/{version.project_id}/datasets/{version.pk}/"


class DatasetListView(APIView):
    """The project's dataset versions, newest first."""

    pagination_class = PageNumberPagination  # documents the {count, next, previous, results} page

    @extend_schema(responses=DatasetVersionSerializer(many=True))
    def get(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER)
        paginator = PageNumberPagination()
        versions = project.datasets.select_related("created_by").order_by("-created_at", "-id")
        page = paginator.paginate_queryset(versions.defer("label_snapshot"), request, view=self)
        return paginator.get_paginated_response(DatasetVersionSerializer(page, many=True).data)


def version_for(project, version_id) -> DatasetVersion:
    try:
        return project.datasets.get(pk=int(version_id))
    except (DatasetVersion.DoesNotExist, ValueError):
        raise NotFound(f"Dataset version {version_id} not found in this project.")


class DatasetDownloadView(APIView):
    """Download a recorded version again: byte-identical while the data is unchanged."""

    content_negotiation_class = ViewRenderer

    @extend_schema(responses=FILE_RESPONSES)
    def get(self, request, project_id, version_id):
        project = project_for(request.user, project_id, min_role=REVIEWER)
        return streamed(dataset_version_export(version=version_for(project, version_id)))


class DatasetDiffView(APIView):
    """Items whose exported label changed from version a to version b (paginated)."""

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: dict},
    )
    def get(self, request, project_id, a, b):
        project = project_for(request.user, project_id, min_role=REVIEWER)
        first, second = version_for(project, a), version_for(project, b)
        diff = dataset_diff(a=first, b=second)
        item_ids, labels_a, labels_b = diff["changed"]
        paginator = PageNumberPagination()
        positions = paginator.paginate_queryset(list(range(len(item_ids))), request, view=self)
        page_ids = [int(item_ids[i]) for i in positions]
        external = dict(Item.objects.filter(id__in=page_ids).values_list("id", "external_id"))
        results = [
            {
                "item_id": int(item_ids[i]),
                "external_id": external.get(int(item_ids[i])),
                "label_a": labels_a[i],
                "label_b": labels_b[i],
            }
            for i in positions
        ]
        response = paginator.get_paginated_response(results)
        response.data.update({"a": first.pk, "b": second.pk})
        response.data.update({"added": diff["added"], "removed": diff["removed"]})
        return Response(response.data)
