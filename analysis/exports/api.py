"""Dataset export over REST: streamed exports, recorded dataset versions, and their diffs."""

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.exports.formats import FORMATS
from analysis.exports.params import PARAMETERS, export_params_parse
from analysis.exports.plan import DatasetExport
from analysis.exports.versions import (
    changed_rows,
    dataset_diff,
    dataset_export,
    dataset_version_export,
)
from analysis.models import DatasetVersion
from labeling.api.negotiation import ViewRenderer
from labeling.api.pagination import PageNumberPagination
from labeling.models import Project
from labeling.permissions import REVIEWER, project_for


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
    (200, f.content_type.split(";")[0]): OpenApiTypes.BINARY for f in FORMATS.values()
}
FILE_RESPONSES[(200, "application/json")] = {"type": "array", "items": {"type": "object"}}

# The export parameters as documented; list parameters are comma-separated (form, unexploded).
EXPORT_PARAMETERS = [
    OpenApiParameter(
        p.name,
        p.type,
        enum=p.choices if isinstance(p.choices, tuple) else None,
        description=p.description,
        many=p.many or None,
        style="form" if p.many else None,
        explode=False if p.many else None,
    )
    for p in PARAMETERS
]


class ExportView(APIView):
    """Stream the project's cleaned dataset; every export is recorded as a dataset version."""

    content_negotiation_class = ViewRenderer

    @extend_schema(parameters=EXPORT_PARAMETERS, responses=FILE_RESPONSES)
    def get(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
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
        return version.download_path


class DatasetListView(APIView):
    """The project's dataset versions, newest first."""

    pagination_class = PageNumberPagination  # documents the {count, next, previous, results} page

    @extend_schema(responses=DatasetVersionSerializer(many=True))
    def get(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        paginator = PageNumberPagination()
        versions = project.datasets.select_related("created_by").order_by("-created_at", "-id")
        page = paginator.paginate_queryset(versions.defer("label_snapshot"), request, view=self)
        return paginator.get_paginated_response(DatasetVersionSerializer(page, many=True).data)


def version_for(project: Project, version_id) -> DatasetVersion:
    try:
        return project.datasets.get(pk=int(version_id))
    except (DatasetVersion.DoesNotExist, ValueError):
        raise NotFound(f"Dataset version {version_id} not found in this project.")


class DatasetDownloadView(APIView):
    """Download a recorded version again: byte-identical while the data is unchanged."""

    content_negotiation_class = ViewRenderer

    @extend_schema(responses=FILE_RESPONSES)
    def get(self, request, project_id, version_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        return streamed(dataset_version_export(version=version_for(project, version_id)))


class DatasetDiffView(APIView):
    """Items whose exported label changed from version a to version b (paginated)."""

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: dict},
    )
    def get(self, request, project_id, a, b):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        first, second = version_for(project, a), version_for(project, b)
        diff = dataset_diff(a=first, b=second)
        paginator = PageNumberPagination()
        positions = paginator.paginate_queryset(range(len(diff.item_ids)), request, view=self)
        response = paginator.get_paginated_response(changed_rows(diff, positions))
        response.data.update({"a": first.pk, "b": second.pk})
        response.data.update({"added": diff.added, "removed": diff.removed})
        return Response(response.data)
