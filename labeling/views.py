from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from labeling.permissions import projects_visible_to


@login_required
def project_list(request):
    projects = projects_visible_to(request.user).prefetch_related("labels")
    return render(request, "labeling/project_list.html", {"projects": projects})
