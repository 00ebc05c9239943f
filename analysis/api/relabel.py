"""Relabel requests over REST: chosen items, or every item above a disagreement threshold.

Here rather than in labeling's API because the threshold needs analysis's entropy; chosen
items go straight to labeling's `relabel_request`.
"""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from analysis.services.relabeling import relabel_by_disagreement
from labeling.api.project_role import ProjectRoleMixin
from labeling.permissions import REVIEWER
from labeling.services.relabeling import relabel_request


class RelabelView(ProjectRoleMixin, APIView):
    """Send items back to the queues: chosen `items`, or every item above a `threshold`."""

    min_role = REVIEWER

    @extend_schema(
        request=inline_serializer(
            "RelabelRequest",
            {
                "items": serializers.ListField(child=serializers.IntegerField(), required=False),
                "threshold": serializers.FloatField(required=False),
            },
        ),
        responses=inline_serializer("RelabelResult", {"requested": serializers.IntegerField()}),
    )
    def post(self, request, project_id):
        items, threshold = request.data.get("items"), request.data.get("threshold")
        if (items is None) == (threshold is None):
            raise ValidationError({"detail": "Give either `items` (a list of ids) or `threshold`."})
        if items is not None:
            if not isinstance(items, list):
                raise ValidationError({"items": "A list of item ids."})
            n = relabel_request(project=self.project, item_ids=items)
        else:
            n = relabel_by_disagreement(project=self.project, threshold=threshold)
        return Response({"requested": n})
