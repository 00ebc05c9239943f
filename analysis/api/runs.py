"""Analysis runs over REST: start one (202), follow it, list a project's runs.

Reviewers and managers only: annotators are blind to every analysis result.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.models import AnalysisRun
from analysis.services.runs import run_create
from config.celery import JobQueueUnavailable
from labeling.permissions import REVIEWER, project_for

# The parameter names each kind accepts; the kind's own validator checks the values.
ALLOWED_PARAMS = {
    AnalysisRun.Kind.AGREEMENT: ("guideline_version", "n_bootstrap", "seed", "min_shared"),
    AnalysisRun.Kind.LABEL_ISSUES: ("guideline_version", "model", "folds"),
    AnalysisRun.Kind.BASELINES: ("guideline_version", "model"),
    AnalysisRun.Kind.SLICES: ("guideline_version", "model"),
    AnalysisRun.Kind.DRIFT: (
        "guideline_version", "model", "batch_a", "batch_b", "from_a", "to_a", "from_b", "to_b",
    ),
}  # fmt: skip


def validate_run_params(*, project, kind: str, params: dict) -> dict:
    """Check names, then values with the kind's own validator; raises DRF ValidationError."""
    allowed = ALLOWED_PARAMS[kind]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValidationError(
            {
                "detail": f"Unknown parameter(s) for {kind}: {', '.join(unknown)}.",
                "params": f"Allowed: {', '.join(allowed)}.",
            }
        )
    try:
        if kind == AnalysisRun.Kind.AGREEMENT:
            from analysis.services.agreement import agreement_params

            agreement_params(params)
        elif kind == AnalysisRun.Kind.LABEL_ISSUES:
            from analysis.services.label_issues import label_issue_params

            label_issue_params(params)
        elif kind in (AnalysisRun.Kind.BASELINES, AnalysisRun.Kind.SLICES):
            from analysis.services.baselines import baseline_params

            baseline_params(params)
        elif kind == AnalysisRun.Kind.DRIFT:
            from analysis.services.drift import drift_params

            drift_params(project=project, params=params)
    except DjangoValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"params": exc.messages}
        raise ValidationError({"detail": "Invalid parameters.", **errors})
    return params


class RunCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=AnalysisRun.Kind.values,
        error_messages={
            "invalid_choice": (
                f'"{{input}}" is not a kind of run; allowed: {", ".join(AnalysisRun.Kind.values)}.'
            )
        },
    )
    params = serializers.DictField(required=False, default=dict)


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
        project = access.project
        runs = AnalysisRun.objects.filter(project=project)
        for field in ("kind", "status"):
            value = self.request.query_params.get(field)
            if value:
                runs = runs.filter(**{field: value})
        return runs.order_by("-created_at", "-id")

    @extend_schema(
        request=RunCreateSerializer,
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
        kind = body.validated_data["kind"]
        params = validate_run_params(
            project=project, kind=kind, params=body.validated_data["params"]
        )
        try:
            run = run_create(project=project, kind=kind, params=params, user=request.user)
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
