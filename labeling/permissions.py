"""Project roles, enforced in one place for the API and the pages.

A project the user is not a member of answers 404 (its existence is not revealed); a member
whose role is too low gets 403. Superusers act as managers of every project.
"""

from django.http import Http404
from rest_framework.exceptions import NotFound, PermissionDenied

from labeling import rawsql
from labeling.api.parsers import API_PARSERS
from labeling.models import Guideline, Membership, Project

ROLE_RANK = {
    Membership.Role.ANNOTATOR: 1,
    Membership.Role.REVIEWER: 2,
    Membership.Role.MANAGER: 3,
}
ANNOTATOR = Membership.Role.ANNOTATOR
REVIEWER = Membership.Role.REVIEWER
MANAGER = Membership.Role.MANAGER

PROJECT_WITH_ROLE = (
    f"SELECT {rawsql.columns(Project, alias='p')},"
    f" (SELECT m.role FROM {Membership._meta.db_table} m"
    " WHERE m.project_id = p.id AND m.user_id = %s) AS member_role,"
    f" (SELECT g.id FROM {Guideline._meta.db_table} g WHERE g.project_id = p.id"
    "  AND g.published_at IS NOT NULL ORDER BY g.version DESC LIMIT 1) AS current_guideline_id,"
    f" (SELECT MAX(g.version) FROM {Guideline._meta.db_table} g WHERE g.project_id = p.id"
    "  AND g.published_at IS NOT NULL) AS current_guideline_version"
    f" FROM {Project._meta.db_table} p WHERE p.id = %s"
)


def role_in(user, project: Project | int) -> str | None:
    """The user's role in the project, or None for non-members and anonymous users."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return MANAGER
    project_id = project.pk if isinstance(project, Project) else project
    return (
        Membership.objects.filter(project_id=project_id, user=user)
        .values_list("role", flat=True)
        .first()
    )


def has_role(user, project: Project | int, min_role: str) -> bool:
    role = role_in(user, project)
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[min_role]


def can_see_labels(user, project: Project | int) -> bool:
    """Reviewers and managers see everyone's labels; annotators only their own."""
    return has_role(user, project, REVIEWER)


def project_for(user, project_id, *, min_role: str = ANNOTATOR, api: bool = True) -> Project:
    """Load a project for a user who needs at least `min_role` in it.

    Raises NotFound / Http404 for non-members and PermissionDenied for a role below `min_role`.
    """
    not_found = NotFound("Project not found.") if api else Http404("Project not found.")
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        raise not_found
    if not user.is_authenticated:
        raise not_found
    # One raw statement with the user's role and the current guideline: every request of
    # every annotator runs it.
    project = rawsql.fetch_one(
        Project,
        PROJECT_WITH_ROLE,
        [user.pk, project_id],
        # The current guideline comes along: `selectors.current_guideline` uses it.
        extra=("member_role", "current_guideline_id", "current_guideline_version"),
    )
    if project is None:
        raise not_found
    role = MANAGER if user.is_superuser else project.member_role
    if role is None:
        raise not_found
    if ROLE_RANK[role] < ROLE_RANK[min_role]:
        if api:
            raise PermissionDenied(f"This needs the {min_role} role in the project.")
        from django.core.exceptions import PermissionDenied as PagePermissionDenied

        raise PagePermissionDenied(f"This needs the {min_role} role in the project.")
    project.user_role = role
    return project


def projects_visible_to(user):
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)


class ProjectRoleMixin:
    """For DRF views under `/api/v1/projects/{project_id}/...`: loads `self.project`.

    `min_role` guards reading (GET, HEAD, OPTIONS); `min_role_write` guards every other method
    (defaults to `min_role`). Non-members get 404, lower roles 403, as `project_for` decides.
    """

    project_url_kwarg = "project_id"
    parser_classes = API_PARSERS
    min_role: str = ANNOTATOR
    min_role_write: str | None = None

    def required_role(self, method: str) -> str:
        if method in ("GET", "HEAD", "OPTIONS"):
            return self.min_role
        return self.min_role_write or self.min_role

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication first: anonymous -> 401
        self.project = project_for(
            request.user,
            kwargs[self.project_url_kwarg],
            min_role=self.required_role(request.method),
            api=True,
        )
