"""Project roles, checked once at the boundary (pages and API) for every request.

`project_for` answers who the user is in the project as a `ProjectAccess`; views pass it on
(templates read `access.role`, hot paths `access.guideline_id`) and services trust their
caller. A project the user is not a member of answers 404 (its existence is not revealed); a
member whose role is too low gets 403. Superusers act as managers of every project.
"""

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from labeling import rawsql
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


@dataclass(frozen=True)
class ProjectAccess:
    """A user's standing in a project, as `project_for` found it in one statement.

    `guideline_id` and `guideline_version` name the newest published guideline (None before
    the first): the annotator's queue and submissions need no other query for it.
    """

    project: Project
    role: str
    user_id: int
    guideline_id: int | None
    guideline_version: int | None

    def at_least(self, min_role: str) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[min_role]


def role_at_least(role: str | None, min_role: str) -> bool:
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK[min_role]


def project_for(user, project_id, *, min_role: str) -> ProjectAccess:
    """The user's access to a project in which they need at least `min_role`.

    Raises Http404 for anonymous users, non-members and unknown projects, PermissionDenied for
    a role below `min_role` (DRF answers both as JSON `{"detail": ...}`, 404 and 403).
    """
    try:
        project_id = int(project_id)
    except (TypeError, ValueError):
        raise Http404("Project not found.") from None
    if not user.is_authenticated:
        raise Http404("Project not found.")
    # One raw statement with the user's role and the current guideline: every request of
    # every annotator runs it.
    found = rawsql.fetch_with_extra(Project, PROJECT_WITH_ROLE, [user.pk, project_id])
    if not found:
        raise Http404("Project not found.")
    ((project, (member_role, guideline_id, guideline_version)),) = found
    role = MANAGER if user.is_superuser else member_role
    if role is None:
        raise Http404("Project not found.")
    if ROLE_RANK[role] < ROLE_RANK[min_role]:
        raise PermissionDenied(f"This needs the {min_role} role in the project.")
    return ProjectAccess(
        project=project,
        role=role,
        user_id=user.pk,
        guideline_id=guideline_id,
        guideline_version=guideline_version,
    )


def projects_visible_to(user):
    if not user.is_authenticated:
        return Project.objects.none()
    if user.is_superuser:
        return Project.objects.all()
    return Project.objects.filter(memberships__user=user)
