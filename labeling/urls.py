from django.urls import path

from labeling import views

app_name = "labeling"
urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("projects/new/", views.project_create_page, name="project_create"),
    path("projects/<int:pk>/", views.project_detail, name="project_detail"),
    path("projects/<int:pk>/edit/", views.project_edit, name="project_edit"),
    path("projects/<int:pk>/members/", views.members, name="members"),
    path("projects/<int:pk>/members/<int:user_id>/role/", views.member_role, name="member_role"),
    path(
        "projects/<int:pk>/members/<int:user_id>/continue/",
        views.member_continue_page,
        name="member_continue",
    ),
    path(
        "projects/<int:pk>/members/<int:user_id>/remove/",
        views.member_remove_page,
        name="member_remove",
    ),
    path("projects/<int:pk>/members/accounts/", views.account_create_page, name="account_create"),
    path(
        "projects/<int:pk>/members/password/", views.account_password_page, name="account_password"
    ),
    path("projects/<int:pk>/guidelines/", views.guidelines, name="guidelines"),
    path(
        "projects/<int:pk>/guidelines/preview/",
        views.guideline_preview,
        name="guideline_preview",
    ),
    path(
        "projects/<int:pk>/guidelines/publish/",
        views.guideline_publish_page,
        name="guideline_publish",
    ),
    path(
        "projects/<int:pk>/guidelines/v<int:version>/",
        views.guideline_version,
        name="guideline_version",
    ),
    path(
        "projects/<int:pk>/guidelines/examples/",
        views.worked_example_add_page,
        name="worked_example_add",
    ),
    path(
        "projects/<int:pk>/guidelines/examples/<int:example_pk>/remove/",
        views.worked_example_remove_page,
        name="worked_example_remove",
    ),
    path("projects/<int:pk>/items/", views.items, name="items"),
    path("projects/<int:pk>/imports/", views.imports, name="imports"),
    path(
        "projects/<int:pk>/imports/<int:import_id>/status/",
        views.import_status,
        name="import_status",
    ),
    path("projects/<int:pk>/annotate/", views.annotate, name="annotate"),
    path("projects/<int:pk>/annotate/submit/", views.annotate_submit, name="annotate_submit"),
    path("projects/<int:pk>/annotate/skip/", views.annotate_skip, name="annotate_skip"),
    path("projects/<int:pk>/annotate/undo/", views.annotate_undo, name="annotate_undo"),
    path("projects/<int:pk>/dashboard/", views.dashboard, name="dashboard"),
    path("projects/<int:pk>/webhooks/", views.webhooks, name="webhooks"),
    path(
        "projects/<int:pk>/webhooks/<int:webhook_id>/active/",
        views.webhook_active,
        name="webhook_active",
    ),
    path(
        "projects/<int:pk>/webhooks/<int:webhook_id>/delete/",
        views.webhook_delete_page,
        name="webhook_delete",
    ),
    path(
        "projects/<int:pk>/webhooks/<int:webhook_id>/test/",
        views.webhook_test_page,
        name="webhook_test",
    ),
]
