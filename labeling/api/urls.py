from django.urls import path

from labeling.api import annotating, imports, projects, views, webhooks

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("users/", views.UserCreateView.as_view(), name="api-users"),
    path("projects/", projects.ProjectListCreate.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetail.as_view(), name="api-project"),
    path(
        "projects/<int:project_id>/members/",
        projects.MemberListCreate.as_view(),
        name="api-project-members",
    ),
    path(
        "projects/<int:project_id>/members/<int:user_id>/",
        projects.MemberDetail.as_view(),
        name="api-project-member",
    ),
    path(
        "projects/<int:project_id>/members/<int:user_id>/continue/",
        projects.MemberContinue.as_view(),
        name="api-project-member-continue",
    ),
    path("projects/<int:project_id>/items/", projects.ItemList.as_view(), name="api-items"),
    path(
        "projects/<int:project_id>/items/<int:item_id>/",
        projects.ItemDetail.as_view(),
        name="api-item",
    ),
    path(
        "projects/<int:project_id>/guidelines/",
        projects.GuidelineListCreate.as_view(),
        name="api-guidelines",
    ),
    path(
        "projects/<int:project_id>/guidelines/draft/examples/",
        projects.WorkedExampleCreate.as_view(),
        name="api-guideline-examples",
    ),
    path(
        "projects/<int:project_id>/guidelines/<str:version>/",
        projects.GuidelineDetail.as_view(),
        name="api-guideline",
    ),
    path(
        "projects/<int:project_id>/guidelines/<str:version>/publish/",
        projects.GuidelinePublish.as_view(),
        name="api-guideline-publish",
    ),
    path(
        "projects/<int:project_id>/guidelines/<str:a>/diff/<str:b>/",
        projects.GuidelineDiff.as_view(),
        name="api-guideline-diff",
    ),
    path(
        "projects/<int:project_id>/imports/",
        imports.ImportListCreate.as_view(),
        name="api-imports",
    ),
    path(
        "projects/<int:project_id>/imports/<int:import_id>/",
        imports.ImportDetail.as_view(),
        name="api-import",
    ),
    path(
        "projects/<int:project_id>/webhooks/",
        webhooks.WebhookListCreate.as_view(),
        name="api-webhooks",
    ),
    path(
        "projects/<int:project_id>/webhooks/<int:webhook_id>/",
        webhooks.WebhookDetail.as_view(),
        name="api-webhook",
    ),
    path(
        "projects/<int:project_id>/webhooks/<int:webhook_id>/deliveries/",
        webhooks.WebhookDeliveries.as_view(),
        name="api-webhook-deliveries",
    ),
    path(
        "projects/<int:project_id>/webhooks/<int:webhook_id>/test/",
        webhooks.WebhookTest.as_view(),
        name="api-webhook-test",
    ),
    path("projects/<int:project_id>/next/", annotating.NextItemView.as_view(), name="api-next"),
    path(
        "projects/<int:project_id>/annotations/",
        annotating.AnnotationsView.as_view(),
        name="api-annotations",
    ),
]
