"""The review queue of likely label errors: list the newest run's rows, resolve one."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.models import AnalysisRun, LabelIssue
from analysis.selectors import label_issue_rows
from analysis.services.label_issues import ACTIONS, issue_resolve
from labeling.models import LabelClass
from labeling.permissions import REVIEWER, project_for


class LabelIssueSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="item.external_id")
    item = serializers.IntegerField(source="item_id")
    given_label = serializers.CharField(source="given_label.name", default=None)
    suggested_label = serializers.CharField(source="suggested_label.name", default=None)
    given_spans = serializers.SerializerMethodField(
        help_text="Span projects: the spans judged (the single annotation or the consensus), "
        "`[{start, end, label}]`; otherwise []."
    )
    flagged_tokens = serializers.SerializerMethodField(
        help_text="Span projects: the flagged tokens, `[{start, end, given, suggested}]` "
        "(entity type names, null for O: outside any entity); otherwise []."
    )

    class Meta:
        model = LabelIssue
        fields = [
            "id",
            "item",
            "external_id",
            "given_label",
            "suggested_label",
            "quality",
            "is_issue",
            "rank",
            "votes",
            "flagged_tokens",
            "given_spans",
            "resolution",
        ]

    def _label_names(self, issue) -> dict[int, str]:
        names = self.context.get("label_names")
        if names is None:
            names = dict(
                LabelClass.objects.filter(project_id=issue.item.project_id).values_list(
                    "pk", "name"
                )
            )
            self.context["label_names"] = names
        return names

    def get_flagged_tokens(self, issue) -> list[dict]:
        if not issue.flagged_tokens:
            return []
        names = self._label_names(issue)
        return [
            {
                "start": start,
                "end": end,
                "given": names.get(given),
                "suggested": names.get(suggested),
            }
            for start, end, given, suggested in issue.flagged_tokens
        ]

    def get_given_spans(self, issue) -> list[dict]:
        if not issue.given_spans:
            return []
        names = self._label_names(issue)
        return [
            {"start": start, "end": end, "label": names.get(label)}
            for start, end, label in issue.given_spans
        ]


class IssueListView(ListAPIView):
    """Rows of the newest succeeded label-issue run, ranked (reviewers and managers).

    Filters: ?label= (given), ?suggested=, ?entity_type= (span projects: a flagged token
    given or suggested that type), ?is_issue=true|false, ?max_quality=, ?resolution=,
    ?meta_<key>=<value> (item metadata). Span projects' rows carry `flagged_tokens` and
    `given_spans` (DESIGN.md, "Span projects"); other rows have them empty.
    """

    serializer_class = LabelIssueSerializer
    filter_backends: list = []

    def list(self, request, *args, **kwargs):
        project = project_for(request.user, self.kwargs["project_id"], min_role=REVIEWER).project
        run = AnalysisRun.objects.latest_succeeded(project, AnalysisRun.Kind.LABEL_ISSUES)
        if run is None:
            return Response(
                {"count": 0, "next": None, "previous": None, "results": [], "run": None}
            )
        try:
            rows = label_issue_rows(run=run, filters=request.query_params)
        except ValueError:
            raise ValidationError({"max_quality": "max_quality must be a number."})
        page = self.paginate_queryset(rows)
        names = dict(project.labels.values_list("pk", "name"))
        context = {**self.get_serializer_context(), "label_names": names}
        serializer = self.get_serializer(page, many=True, context=context)
        response = self.get_paginated_response(serializer.data)
        response.data["run"] = {"id": run.pk, "method": (run.result or {}).get("method")}
        return response


class ResolveSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=ACTIONS)
    relabel = serializers.BooleanField(required=False, allow_null=True, default=None)
    add_example = serializers.BooleanField(required=False, default=False)
    why = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class IssueResolveView(APIView):
    """POST {action: accept|keep|ambiguous, relabel?, add_example?, why?}."""

    @extend_schema(request=ResolveSerializer, responses=LabelIssueSerializer)
    def post(self, request, project_id, issue_id):
        project = project_for(request.user, project_id, min_role=REVIEWER).project
        issue = get_object_or_404(LabelIssue, pk=issue_id, run__project=project)
        body = ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issue = issue_resolve(issue=issue, user=request.user, **body.validated_data)
        return Response(LabelIssueSerializer(issue).data)
