"""REST endpoints for projects, members, items and guidelines (`/api/v1/projects/...`).

Thin: serializers check shapes and types, services do the writes, `labeling.permissions`
decides who may do what (non-member 404, role too low 403).
"""

from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Prefetch, Subquery
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from labeling.api.parsers import API_PARSERS
from labeling.api.project_role import ProjectRoleMixin
from labeling.filters import ItemFilter, item_status, with_counts
from labeling.markdown_render import render_markdown
from labeling.models import Annotation, Guideline, Item, LabelClass, Membership, Project
from labeling.permissions import ANNOTATOR, MANAGER, REVIEWER, projects_visible_to
from labeling.services.gold import membership_continue
from labeling.services.guidelines import (
    guideline_diff,
    guideline_draft_update,
    guideline_publish,
    worked_example_add,
)
from labeling.services.projects import (
    member_remove,
    member_set,
    project_create,
    project_labels_set,
    project_update,
)
from labeling.spans import item_text, spans_as_dicts, token_bounds

User = get_user_model()

# ---- projects ------------------------------------------------------------------------------


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = LabelClass
        fields = ["id", "name", "key", "order"]


class LabelInputSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="An existing label's id (PATCH).")
    name = serializers.CharField(max_length=100)
    key = serializers.CharField(max_length=1, required=False, allow_blank=True)


class ProjectSerializer(serializers.ModelSerializer):
    labels = LabelSerializer(many=True, read_only=True)
    role = serializers.SerializerMethodField(help_text="Your role in the project.")
    guideline_version = serializers.SerializerMethodField(
        help_text="The newest published guideline version."
    )

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "data_type",
            "task_type",
            "ordered",
            "overlap",
            "queue_order",
            "queue_seed",
            "default_label_strategy",
            "tie_rule",
            "suggestions",
            "suggestion_model",
            "suggestion_rate",
            "scores_refresh_every",
            "gold_rate",
            "gold_onboarding",
            "gold_pass_score",
            "labels",
            "role",
            "guideline_version",
            "created_at",
        ]
        read_only_fields = fields

    def get_role(self, project) -> str | None:
        if "role" in self.context:  # the view checked it (permissions.project_for)
            return self.context["role"]
        if self.context["request"].user.is_superuser:
            return MANAGER
        return project.member_role  # annotated by the list

    def get_guideline_version(self, project) -> int | None:
        if hasattr(project, "newest_version"):  # annotated by the list
            return project.newest_version
        current = project.current_guideline()
        return current.version if current else None


class ProjectCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    data_type = serializers.ChoiceField(Project.DataType.choices, default=Project.DataType.TEXT)
    task_type = serializers.ChoiceField(Project.TaskType.choices, default=Project.TaskType.SINGLE)
    overlap = serializers.IntegerField(min_value=1, max_value=1000, default=1)
    ordered = serializers.BooleanField(default=False)
    labels = LabelInputSerializer(many=True, allow_empty=False, max_length=1000)


class ProjectUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    overlap = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    ordered = serializers.BooleanField(required=False)
    queue_order = serializers.ChoiceField(Project.QueueOrder.choices, required=False)
    queue_seed = serializers.IntegerField(required=False, min_value=-(2**31), max_value=2**31 - 1)
    default_label_strategy = serializers.ChoiceField(Project.LabelStrategy.choices, required=False)
    tie_rule = serializers.ChoiceField(Project.TieRule.choices, required=False)
    suggestions = serializers.ChoiceField(Project.Suggestions.choices, required=False)
    suggestion_model = serializers.CharField(max_length=100, required=False)
    suggestion_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    scores_refresh_every = serializers.IntegerField(min_value=1, max_value=10**6, required=False)
    gold_rate = serializers.FloatField(min_value=0, max_value=1, required=False)
    gold_onboarding = serializers.IntegerField(min_value=0, max_value=1000, required=False)
    gold_pass_score = serializers.FloatField(min_value=0, max_value=1, required=False)
    labels = LabelInputSerializer(
        many=True,
        allow_empty=False,
        required=False,
        max_length=1000,
        help_text="The full list: keep ids to rename, omit a label to delete it (if unused).",
    )


class ProjectListCreate(generics.ListCreateAPIView):
    """Projects you are a member of; creating one makes you its manager."""

    serializer_class = ProjectSerializer
    parser_classes = API_PARSERS

    def get_queryset(self):
        user = self.request.user
        roles = Membership.objects.filter(project=OuterRef("pk"), user_id=user.pk)
        versions = Guideline.objects.published().filter(project=OuterRef("pk"))
        return (
            projects_visible_to(user)
            .annotate(
                member_role=Subquery(roles.values("role")[:1]),
                newest_version=Subquery(versions.order_by("-version").values("version")[:1]),
            )
            .prefetch_related("labels")
            .order_by("-created_at", "-id")
        )

    @extend_schema(request=ProjectCreateSerializer, responses={201: ProjectSerializer})
    def post(self, request, *args, **kwargs):
        given = ProjectCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        project = project_create(**given.validated_data, created_by=request.user)
        return Response(
            ProjectSerializer(project, context={"request": request, "role": MANAGER}).data,
            status=status.HTTP_201_CREATED,
        )


class ProjectDetail(ProjectRoleMixin, generics.GenericAPIView):
    """A project's settings and labels; managers change them with PATCH."""

    serializer_class = ProjectSerializer
    queryset = Project.objects.none()
    min_role = ANNOTATOR
    min_role_write = MANAGER
    http_method_names = ["get", "patch", "head", "options"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "role": self.access.role}

    def get(self, request, project_id):
        return Response(self.get_serializer(self.project).data)

    @extend_schema(request=ProjectUpdateSerializer, responses=ProjectSerializer)
    def patch(self, request, project_id):
        given = ProjectUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        fields = dict(given.validated_data)
        labels = fields.pop("labels", None)
        project_update(project=self.project, user=request.user, **fields)
        if labels is not None:
            project_labels_set(project=self.project, labels=labels)
        return Response(self.get_serializer(self.project).data)


# ---- members -------------------------------------------------------------------------------


class MemberSerializer(serializers.Serializer):
    user_id = serializers.IntegerField(read_only=True, source="user.id")
    username = serializers.CharField(max_length=150, source="user.username")
    role = serializers.ChoiceField(Membership.Role.choices)
    # Gold onboarding (README, "Gold questions"): paused annotators wait for a manager.
    paused_at = serializers.DateTimeField(read_only=True, allow_null=True)
    pause_reason = serializers.CharField(read_only=True)
    onboarded_at = serializers.DateTimeField(read_only=True, allow_null=True)


class MemberListCreate(ProjectRoleMixin, generics.ListCreateAPIView):
    """Who works in the project (managers): add a member or change a role by username."""

    serializer_class = MemberSerializer
    min_role = MANAGER

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        return (
            Membership.objects.filter(project=self.project)
            .select_related("user")
            .order_by("user__username")
        )

    def post(self, request, *args, **kwargs):
        given = MemberSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        username = given.validated_data["user"]["username"]
        user = User.objects.filter(username=username).first()
        if user is None:
            raise ValidationError({"username": [f"No user is called {username!r}."]})
        existed = Membership.objects.filter(project=self.project, user=user).exists()
        membership = member_set(project=self.project, user=user, role=given.validated_data["role"])
        return Response(
            MemberSerializer(membership).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(Membership.Role.choices)


class MemberDetail(ProjectRoleMixin, generics.GenericAPIView):
    """One member (managers): read, change the role (PATCH `{role}`) or remove (DELETE).

    A project keeps at least one manager: demoting or removing the last one answers 400.
    Removing a member keeps their annotations and releases their claims on items.
    """

    serializer_class = MemberSerializer
    queryset = Membership.objects.none()
    min_role = MANAGER
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def membership(self, user_id: int) -> Membership:
        found = (
            Membership.objects.filter(project=self.project, user_id=user_id)
            .select_related("user")
            .first()
        )
        if found is None:
            raise NotFound("This user is not a member of the project.")
        return found

    def get(self, request, project_id, user_id):
        return Response(MemberSerializer(self.membership(user_id)).data)

    @extend_schema(request=MemberRoleSerializer, responses=MemberSerializer)
    def patch(self, request, project_id, user_id):
        given = MemberRoleSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        user = self.membership(user_id).user
        membership = member_set(project=self.project, user=user, role=given.validated_data["role"])
        return Response(MemberSerializer(membership).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, project_id, user_id):
        member_remove(project=self.project, user=self.membership(user_id).user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberContinue(MemberDetail):
    """Managers: let a paused annotator label again (`POST`; sets `onboarded_at`, clears the
    pause). Also onboards an annotator who has not finished onboarding."""

    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses=MemberSerializer)
    def post(self, request, project_id, user_id):
        user = self.membership(user_id).user
        membership = membership_continue(project=self.project, user=user)
        membership.user = user
        return Response(MemberSerializer(membership).data)


# ---- items ---------------------------------------------------------------------------------


class ItemSerializer(serializers.ModelSerializer):
    n_annotations = serializers.IntegerField(read_only=True)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Item
        fields = ["id", "external_id", "data", "metadata", "n_annotations", "status"]
        read_only_fields = fields

    def get_status(self, item) -> str:
        return item_status(item, overlap=self.context["project"].overlap)


class AnnotationSerializer(serializers.ModelSerializer):
    annotator = serializers.CharField(source="annotator.username", read_only=True)
    label = serializers.CharField(source="label.name", read_only=True, allow_null=True)
    labels = serializers.SerializerMethodField()
    spans = serializers.SerializerMethodField()
    guideline_version = serializers.IntegerField(source="guideline.version", read_only=True)

    class Meta:
        model = Annotation
        fields = [
            "id",
            "annotator",
            "label",
            "labels",
            "spans",
            "guideline_version",
            "unsure",
            "comment",
            "lead_time_ms",
            "created_at",
        ]
        read_only_fields = fields

    def get_labels(self, annotation) -> list[str]:
        names = self.context["label_names"]
        return [names.get(pk, str(pk)) for pk in annotation.labels or []]

    def get_spans(self, annotation) -> list[dict]:
        """Span projects: `[{start, end, label}]`; [] otherwise."""
        return spans_as_dicts(annotation.spans or [], self.context["label_names"])


class ItemDetailSerializer(ItemSerializer):
    annotations = AnnotationSerializer(many=True, read_only=True)
    review = serializers.SerializerMethodField()
    tokens = serializers.SerializerMethodField()

    class Meta(ItemSerializer.Meta):
        fields = [*ItemSerializer.Meta.fields, "tokens", "annotations", "review"]
        read_only_fields = fields

    def get_tokens(self, item) -> list[list[int]] | None:
        """Span projects: the text's tokens as `[start, end]` (DESIGN.md); null otherwise."""
        if not self.context["project"].is_spans:
            return None
        return [list(bounds) for bounds in token_bounds(item_text(item.data))]

    def get_review(self, item) -> dict | None:
        review = getattr(item, "review", None)
        if review is None:
            return None
        names = self.context["label_names"]
        return {
            "reviewer": review.reviewer.username if review.reviewer else None,
            "label": review.label.name if review.label else None,
            "labels": [names.get(pk, str(pk)) for pk in review.labels or []],
            "spans": spans_as_dicts(review.spans or [], names),
            "note": review.note,
        }


class ItemFilterBackend(DjangoFilterBackend):
    """Hands the view's project to the filter set (label names are per project)."""

    def get_filterset_kwargs(self, request, queryset, view):
        return {
            **super().get_filterset_kwargs(request, queryset, view),
            "project": getattr(view, "project", None),
        }


METADATA_PARAMETER = OpenApiParameter(
    "meta_<key>",
    OpenApiTypes.STR,
    description=(
        "Metadata filter: any parameter `meta_<key>=value` (also `metadata.<key>=value`) keeps "
        "items whose metadata has that value; repeat for any-of, combine keys for all-of."
    ),
    required=False,
)


@extend_schema(parameters=[METADATA_PARAMETER])
class ItemList(ProjectRoleMixin, generics.ListAPIView):
    """The project's items (reviewers and managers), filterable by metadata, label, status."""

    serializer_class = ItemSerializer
    min_role = REVIEWER
    filter_backends = [ItemFilterBackend]
    filterset_class = ItemFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Item.objects.none()
        return with_counts(Item.objects.filter(project=self.project)).order_by("id")

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "project": getattr(self, "project", None)}


class ItemDetail(ProjectRoleMixin, generics.RetrieveAPIView):
    """One item with every annotation and the review (reviewers and managers)."""

    serializer_class = ItemDetailSerializer
    min_role = REVIEWER
    lookup_url_kwarg = "item_id"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Item.objects.none()
        return (
            with_counts(Item.objects.filter(project=self.project))
            .prefetch_related(
                Prefetch(
                    "annotations",
                    queryset=Annotation.objects.select_related(
                        "annotator", "label", "guideline"
                    ).order_by("created_at", "id"),
                ),
            )
            .select_related("review__reviewer", "review__label")
        )

    def get_serializer_context(self):
        project = getattr(self, "project", None)
        names = dict(project.labels.values_list("id", "name")) if project else {}
        return {**super().get_serializer_context(), "project": project, "label_names": names}


# ---- guidelines ----------------------------------------------------------------------------


class WorkedExampleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.IntegerField(source="item_id", allow_null=True)
    external_id = serializers.CharField(source="item.external_id", allow_null=True, default=None)
    text = serializers.CharField()
    label = serializers.CharField(source="label.name")
    why = serializers.CharField()


class GuidelineSummarySerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Guideline
        fields = ["version", "status", "changelog", "published_at", "updated_at", "created_by"]
        read_only_fields = fields

    def get_status(self, guideline) -> str:
        return "published" if guideline.is_published else "draft"


class GuidelineSerializer(GuidelineSummarySerializer):
    body_html = serializers.SerializerMethodField(help_text="The body rendered and sanitized.")
    examples = WorkedExampleSerializer(many=True, read_only=True)

    class Meta(GuidelineSummarySerializer.Meta):
        fields = [*GuidelineSummarySerializer.Meta.fields, "body", "body_html", "examples"]
        read_only_fields = fields

    def get_body_html(self, guideline) -> str:
        return render_markdown(guideline.body)


class GuidelineDraftSerializer(serializers.Serializer):
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    changelog = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class GuidelinePublishSerializer(serializers.Serializer):
    changelog = serializers.CharField(
        required=False, allow_blank=True, max_length=5000, help_text="Overrides the draft's."
    )


def guidelines_visible(view):
    """Published versions for everyone; the draft too for reviewers and managers."""
    guidelines = view.project.guidelines.select_related("created_by").prefetch_related(
        "examples__item", "examples__label"
    )
    if not view.access.at_least(REVIEWER):
        guidelines = guidelines.published()
    return guidelines


def guideline_by_version(view, version: str) -> Guideline:
    """`version` is a number or `draft`; annotators may only read published versions."""
    guidelines = guidelines_visible(view)
    if version == "draft":
        if not view.access.at_least(REVIEWER):
            raise PermissionDenied("Only reviewers and managers read the draft.")
        found = guidelines.drafts().first()
    elif version.isdigit():
        found = guidelines.filter(version=int(version)).first()
    else:
        raise NotFound("A guideline version is a number or `draft`.")
    if found is None:
        raise NotFound(f"Guideline version {version} not found.")
    return found


class GuidelineListCreate(ProjectRoleMixin, generics.ListAPIView):
    """Guideline versions, newest first; POST saves the draft (managers)."""

    serializer_class = GuidelineSummarySerializer
    min_role = ANNOTATOR
    min_role_write = MANAGER

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Guideline.objects.none()
        # The draft (version NULL) first, then published versions newest first.
        return guidelines_visible(self).order_by(F("version").desc(nulls_first=True))

    @extend_schema(request=GuidelineDraftSerializer, responses={200: GuidelineSerializer})
    def post(self, request, project_id):
        given = GuidelineDraftSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        draft = guideline_draft_update(
            project=self.project,
            body=given.validated_data.get("body"),
            changelog=given.validated_data.get("changelog"),
            user=request.user,
        )
        return Response(GuidelineSerializer(draft).data)


class GuidelineDetail(ProjectRoleMixin, generics.GenericAPIView):
    """One version (a number, or `draft` for reviewers and managers)."""

    serializer_class = GuidelineSerializer
    queryset = Guideline.objects.none()
    min_role = ANNOTATOR

    def get(self, request, project_id, version):
        return Response(GuidelineSerializer(guideline_by_version(self, version)).data)


class GuidelinePublish(ProjectRoleMixin, generics.GenericAPIView):
    """Publish the draft as the next version; `version` is `draft` or that next number."""

    serializer_class = GuidelinePublishSerializer
    queryset = Guideline.objects.none()
    min_role = MANAGER

    @extend_schema(request=GuidelinePublishSerializer, responses={201: GuidelineSerializer})
    def post(self, request, project_id, version):
        given = GuidelinePublishSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        current = self.project.current_guideline()
        next_version = (current.version if current else 0) + 1
        if version != "draft" and version != str(next_version):
            raise ValidationError(
                {"version": [f"Publish `draft` or {next_version}, the next version number."]}
            )
        published = guideline_publish(
            project=self.project, user=request.user, changelog=given.validated_data.get("changelog")
        )
        return Response(GuidelineSerializer(published).data, status=status.HTTP_201_CREATED)


class GuidelineDiffSerializer(serializers.Serializer):
    from_version = serializers.CharField()
    to_version = serializers.CharField()
    diff = serializers.CharField(help_text="Unified diff of bodies and worked examples.")


class GuidelineDiff(ProjectRoleMixin, generics.GenericAPIView):
    """What changed from version `a` to version `b` (unified diff)."""

    serializer_class = GuidelineDiffSerializer
    queryset = Guideline.objects.none()
    min_role = ANNOTATOR

    def get(self, request, project_id, a, b):
        old, new = guideline_by_version(self, a), guideline_by_version(self, b)
        return Response({"from_version": a, "to_version": b, "diff": guideline_diff(old, new)})


class WorkedExampleInputSerializer(serializers.Serializer):
    item = serializers.IntegerField(required=False, help_text="Item id (or give external_id).")
    external_id = serializers.CharField(required=False, max_length=255)
    label = serializers.CharField(max_length=100, help_text="The correct label's name.")
    why = serializers.CharField(max_length=5000)

    def validate(self, data):
        if ("item" in data) == ("external_id" in data):
            raise serializers.ValidationError("Give either `item` or `external_id`.")
        return data


class WorkedExampleCreate(ProjectRoleMixin, generics.GenericAPIView):
    """Add a worked example (item, correct label, why) to the draft (managers)."""

    serializer_class = WorkedExampleInputSerializer
    queryset = Guideline.objects.none()
    min_role = MANAGER

    @extend_schema(request=WorkedExampleInputSerializer, responses={201: GuidelineSerializer})
    def post(self, request, project_id):
        given = WorkedExampleInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        lookup = {"pk": data["item"]} if "item" in data else {"external_id": data["external_id"]}
        item = Item.objects.filter(project=self.project, **lookup).first()
        if item is None:
            raise ValidationError({"item": ["No item of this project matches."]})
        example = worked_example_add(
            project=self.project, item=item, label=data["label"], why=data["why"], user=request.user
        )
        return Response(GuidelineSerializer(example.guideline).data, status=status.HTTP_201_CREATED)
