"""The base of every REST view under `/api/v1/projects/{project_id}/...`: the caller's role in
the project, checked once at the boundary by `labeling.permissions.project_for`."""

from labeling.api.parsers import API_PARSERS
from labeling.permissions import ANNOTATOR, project_for


class ProjectRoleMixin:
    """For DRF views under `/api/v1/projects/{project_id}/...`: sets `self.access` (and
    `self.project`, its project).

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
        self.access = project_for(
            request.user,
            kwargs[self.project_url_kwarg],
            min_role=self.required_role(request.method),
        )
        self.project = self.access.project
