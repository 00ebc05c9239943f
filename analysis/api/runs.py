"""Analysis runs over REST: start one (202), follow it, list a project's runs.

Reviewers and managers only: annotators are blind to every analysis result. Each kind's
parameters are its serializer in analysis.kinds, which also documents them in the schema.
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.kinds import KINDS, run_start
from analysis.models import AnalysisRun
from config.celery import JobQueueUnavailable
from labeling.permissions import REVIEWER, project_for

KIND_NAMES = [kind.name for kind in KINDS]


class RunCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=KIND_NAMES,
        error_messages={
            "invalid_choice": f'"{{input}}" is not a kind of run; allowed: {", ".join(KIND_NAMES)}.'
        },
    )
    params = serializers.DictField(required=False, default=dict)


# The schema documents each kind's start request with that kind's parameters.
RUN_START_REQUEST = PolymorphicProxySerializer(
    component_name="RunStart",
    resource_type_field_name="kind",
    serializers={
        kind.name: inline_serializer(
            "".join(word.title() for word in kind.name.split("_")) + "RunStart",
            {
                "kind": serializers.CharField(help_text=f"`{kind.name}`: {kind.summary}"),
                "params": kind.params(required=False),
            },
        )
        for kind in KINDS
    },
)


class RunSerializer(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_id", read_only=True)

    class Meta:
        model = AnalysisRun
        fields = [
            "id", "project", "kind", "params", "guideline_version", "status", "progress",
            "message", "result", "error", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class RunListSerializer(RunSerializer):
    """A run without its (possibly large) result: fetch `/runs/{id}/` for that."""

    class Meta(RunSerializer.Meta):
        fields = [f for f in RunSerializer.Meta.fields if f != "result"]


class ProjectRunsView(ListAPIView):
    """GET: the project's runs, newest first (?kind=, ?status=). POST {kind, params}: start one."""

    serializer_class = RunListSerializer
    filter_backends: list = []

    def get_queryset(self):
        access = project_for(self.request.user, self.kwargs["project_id"], min_role=REVIEWER)
        runs = AnalysisRun.objects.filter(project=access.project)
        for field in ("kind", "status"):
            value = self.request.query_params.get(field)
            if value:
                runs = runs.filter(**{field: value})
        return runs.order_by("-created_at", "-id")

    @extend_schema(
        request=RUN_START_REQUEST,
        responses={
            202: inline_serializer(
                "RunStarted",
                {"id": serializers.IntegerField(), "status": serializers.CharField()},
            )
        },
    )
    def post(self, request, project_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        body = RunCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = run_start(
                project=project,
                kind=body.validated_data["kind"],
                params=body.validated_data["params"],
                user=request.user,
            )
        except JobQueueUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"id": run.pk, "status": run.status}, status=status.HTTP_202_ACCEPTED)


class RunDetailView(APIView):
    """GET: a run's status, progress, message, result and error (role checked on its project)."""

    @extend_schema(responses=RunSerializer)
    def get(self, request, run_id):
        run = get_object_or_404(AnalysisRun.objects.select_related("project"), pk=run_id)
        project_for(request.user, run.project_id, min_role=REVIEWER)
        return Response(RunSerializer(run).data)
