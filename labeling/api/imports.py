"""REST endpoints for imports: `/api/v1/projects/{id}/imports/` (managers only).

A file answers 201 when it was imported within the request, 400 with `errors` (row and reason
each) when it was rejected, and 202 `{id, status}` when it is large enough to run as a job.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from config.celery import JobQueueUnavailable
from labeling.api.project_role import ProjectRoleMixin
from labeling.importing.jobs import import_submit
from labeling.importing.options import ImportOptionsSerializer, options_in
from labeling.importing.parsers import FORMAT_CHOICES
from labeling.models import ImportBatch
from labeling.permissions import MANAGER


class ImportBatchSerializer(serializers.ModelSerializer):
    # The formats the parsers read, whatever the model's own list says.
    format = serializers.ChoiceField(choices=FORMAT_CHOICES, read_only=True)

    class Meta:
        model = ImportBatch
        fields = [
            "id",
            "kind",
            "format",
            "filename",
            "options",
            "status",
            "progress",
            "message",
            "rows",
            "errors",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ImportBatchListSerializer(ImportBatchSerializer):
    """Lists leave out the (up to 100) errors and the options; the detail has them."""

    class Meta(ImportBatchSerializer.Meta):
        fields = [f for f in ImportBatchSerializer.Meta.fields if f not in ("errors", "options")]
        read_only_fields = fields


class ImportCreateSerializer(ImportOptionsSerializer):
    """An upload: the file and the import options."""

    file = serializers.FileField(allow_empty_file=True)

    def options(self) -> dict:
        return options_in(self.validated_data)


class ImportListCreate(ProjectRoleMixin, generics.ListCreateAPIView):
    """Upload a file of items or annotations; list this project's imports, newest first."""

    min_role = MANAGER
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = ImportBatchSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return ImportBatch.objects.none()
        return (
            ImportBatch.objects.filter(project=self.project)
            .defer("errors")
            .order_by("-created_at", "-id")
        )

    def get_serializer_class(self):
        return ImportBatchListSerializer if self.request.method == "GET" else ImportBatchSerializer

    @extend_schema(request=ImportCreateSerializer, responses={201: ImportBatchSerializer})
    def post(self, request, *args, **kwargs):
        form = ImportCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            batch = import_submit(
                project=self.project,
                fileobj=upload,
                filename=upload.name,
                format=form.validated_data["format"],
                kind=form.validated_data["kind"],
                options=form.options(),
                user=request.user,
            )
        except JobQueueUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        if batch.status == ImportBatch.Status.SUCCEEDED:
            return Response(
                {"id": batch.pk, "status": batch.status, "rows": batch.rows, "errors": []},
                status=status.HTTP_201_CREATED,
            )
        if batch.status == ImportBatch.Status.FAILED:
            return Response(
                {
                    "detail": "The file was rejected; nothing was imported.",
                    "id": batch.pk,
                    "status": batch.status,
                    "rows": 0,
                    "errors": batch.errors,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"id": batch.pk, "status": batch.status}, status=status.HTTP_202_ACCEPTED)


class ImportDetail(ProjectRoleMixin, generics.RetrieveAPIView):
    """`{id, status, progress, message, rows, errors}` of one import."""

    min_role = MANAGER
    serializer_class = ImportBatchSerializer
    lookup_url_kwarg = "import_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return ImportBatch.objects.none()
        return ImportBatch.objects.filter(project=self.project)
