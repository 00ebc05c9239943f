"""REST endpoints for a project's webhooks (managers): `/api/v1/projects/{id}/webhooks/...`.

The secret is write-only: lists and details show its last four characters (`secret_hint`);
the answer to a create shows it once as `secret` (a PATCH may set a new one).
"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from config.celery import JobQueueUnavailable
from labeling.api.project_role import ProjectRoleMixin
from labeling.models import Webhook, WebhookDelivery
from labeling.permissions import MANAGER
from labeling.services.webhooks import (
    EVENTS,
    MAX_SECRET_CHARS,
    webhook_create,
    webhook_delete,
    webhook_test,
    webhook_update,
)


class WebhookSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(
        source="created_by.username", default=None, allow_null=True, read_only=True
    )
    events = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "active", "secret_hint", "created_by", "created_at"]
        read_only_fields = fields


class WebhookWithSecretSerializer(WebhookSerializer):
    """The answer to a create: the only one that shows the secret."""

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, help_text="http(s) URL that receives the POSTs.")
    secret = serializers.CharField(
        max_length=MAX_SECRET_CHARS,
        required=False,
        allow_blank=True,
        help_text="Signs every delivery; generated when omitted or blank.",
    )
    events = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=len(EVENTS),
        help_text=f"Any of: {', '.join(EVENTS)}.",
    )
    active = serializers.BooleanField(default=True)


class WebhookUpdateSerializer(WebhookInputSerializer):
    url = serializers.CharField(max_length=2000, required=False)
    events = serializers.ListField(
        child=serializers.CharField(max_length=64), max_length=len(EVENTS), required=False
    )
    active = serializers.BooleanField(required=False)


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_id",
            "attempt",
            "status",
            "status_code",
            "error",
            "duration_ms",
            "created_at",
            "payload",
        ]
        read_only_fields = fields


class WebhookListCreate(ProjectRoleMixin, generics.ListCreateAPIView):
    """The project's webhooks (managers); POST `{url, events, secret?, active?}` adds one."""

    serializer_class = WebhookSerializer
    min_role = MANAGER

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Webhook.objects.none()
        return Webhook.objects.filter(project=self.project).select_related("created_by")

    @extend_schema(request=WebhookInputSerializer, responses={201: WebhookWithSecretSerializer})
    def post(self, request, *args, **kwargs):
        given = WebhookInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        webhook = webhook_create(project=self.project, user=request.user, **given.validated_data)
        return Response(WebhookWithSecretSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookView(ProjectRoleMixin, generics.GenericAPIView):
    """Base of the views of one webhook of the project (managers)."""

    serializer_class = WebhookSerializer
    queryset = Webhook.objects.none()
    min_role = MANAGER

    def webhook(self, webhook_id: int) -> Webhook:
        return get_object_or_404(
            Webhook.objects.select_related("created_by"), pk=webhook_id, project=self.project
        )


class WebhookDetail(WebhookView):
    """One webhook: read, change (PATCH any of `url, events, secret, active`) or DELETE."""

    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get(self, request, project_id, webhook_id):
        return Response(WebhookSerializer(self.webhook(webhook_id)).data)

    @extend_schema(request=WebhookUpdateSerializer, responses=WebhookSerializer)
    def patch(self, request, project_id, webhook_id):
        given = WebhookUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        webhook = webhook_update(webhook=self.webhook(webhook_id), **given.validated_data)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, project_id, webhook_id):
        webhook_delete(webhook=self.webhook(webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveries(ProjectRoleMixin, generics.ListAPIView):
    """The webhook's delivery log, newest first: one row per attempt."""

    serializer_class = DeliverySerializer
    min_role = MANAGER

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        webhook = get_object_or_404(Webhook, pk=self.kwargs["webhook_id"], project=self.project)
        return webhook.deliveries.order_by("-created_at", "-id")


class WebhookTest(WebhookView):
    """Queue a `ping` event to this webhook (whatever its events) through the delivery queue;
    its attempts appear in the delivery log."""

    http_method_names = ["post", "options"]

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer("WebhookTestQueued", {"event_id": serializers.UUIDField()})
        },
    )
    def post(self, request, project_id, webhook_id):
        try:
            event_id = webhook_test(webhook=self.webhook(webhook_id))
        except JobQueueUnavailable as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({"event_id": event_id}, status=status.HTTP_202_ACCEPTED)
