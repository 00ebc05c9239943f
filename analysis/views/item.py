"""The item page: one item full size with its metadata, every annotation with its
revisions, the review, and its rows in label-issue and agreement runs."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from analysis.selectors import item_history
from labeling.permissions import REVIEWER, project_for


@login_required
def item(request, pk, item_id):
    """One item: its data full size, metadata, every annotation with its revisions, the
    review, and its rows in label-issue and agreement runs."""
    access = project_for(request.user, pk, min_role=REVIEWER)
    project = access.project
    history = item_history(project=project, item_id=item_id)
    if history is None:
        raise Http404("The project has no such item.")
    items_url = reverse("labeling:items", args=[project.pk])
    back = request.headers.get("Referer", "")
    if back == request.build_absolute_uri() or not url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = items_url
    return render(
        request,
        "analysis/item.html",
        {
            "access": access,
            "project": project,
            "history": history,
            "back": back,
            "items_url": items_url,
        },
    )
