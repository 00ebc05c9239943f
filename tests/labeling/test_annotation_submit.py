"""Submitting annotations: validation, the guideline stamp, idempotent retries, history."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from labeling.models import Annotation, Item, Lease, Project
from labeling.services.annotating import annotation_submit, annotation_undo_last
from labeling.services.guidelines import guideline_draft_update, guideline_publish
from labeling.services.queue import next_item
from tests.factories import add_member, make_items, make_project

pytestmark = pytest.mark.django_db


def one_item(project, external_id="a"):
    [item] = make_items(project, {external_id: "hi"})
    return item


def test_a_label_outside_the_project_classes_is_refused(manager):
    project = make_project(manager)
    item = one_item(project)
    ann = add_member(project, "ann")
    with pytest.raises(ValidationError) as caught:
        annotation_submit(item=item, annotator=ann, label="neutral")
    assert "Unknown label 'neutral'" in str(caught.value)
    with pytest.raises(ValidationError):
        annotation_submit(item=item, annotator=ann, label=None)
    with pytest.raises(ValidationError):
        annotation_submit(item=item, annotator=ann, labels=["negative", "positive"])
    assert not Annotation.objects.exists()


def test_multi_label_takes_a_list_and_stores_class_ids(manager):
    project = make_project(
        manager, labels=("sports", "politics", "tech"), task_type=Project.TaskType.MULTI
    )
    item = one_item(project)
    ann = add_member(project, "ann")
    annotation = annotation_submit(item=item, annotator=ann, labels=["tech", "sports"])
    ids = dict(project.labels.values_list("name", "id"))
    assert annotation.labels == sorted([ids["tech"], ids["sports"]])
    assert annotation.label is None
    with pytest.raises(ValidationError):
        annotation_submit(item=item, annotator=ann, labels=["tech", "tech"])
    with pytest.raises(ValidationError):
        annotation_submit(item=item, annotator=ann, labels="tech")


def test_annotation_records_version_unsure_comment_and_time(manager):
    project = make_project(manager)
    item = one_item(project)
    ann = add_member(project, "ann")
    guideline_draft_update(project=project, body="Be careful.", user=manager)
    v2 = guideline_publish(project=project, user=manager, changelog="More care.")
    annotation = annotation_submit(
        item=item, annotator=ann, label="negative", unsure=True, comment=" sarcastic? ",
        lead_time_ms=4200,
    )  # fmt: skip
    annotation.refresh_from_db()
    assert (annotation.guideline_id, annotation.guideline.version) == (v2.pk, 2)
    assert (annotation.unsure, annotation.comment, annotation.lead_time_ms) == (
        True, "sarcastic?", 4200,
    )  # fmt: skip


def test_a_retried_request_returns_the_same_annotation(manager):
    project = make_project(manager, overlap=2)
    item = one_item(project)
    ann = add_member(project, "ann")
    first = annotation_submit(item=item, annotator=ann, label="positive", request_id="r-1")
    again = annotation_submit(item=item, annotator=ann, label="positive", request_id="r-1")
    assert again.pk == first.pk
    assert Annotation.objects.count() == 1
    assert first.revisions.count() == 0
    assert Item.objects.get(pk=item.pk).done_count == 1
    other = one_item(project, "b")
    with pytest.raises(ValidationError):
        annotation_submit(item=other, annotator=ann, label="positive", request_id="r-1")


def test_changing_a_label_keeps_the_previous_value(manager):
    project = make_project(manager, overlap=2)
    item = one_item(project)
    ann = add_member(project, "ann")
    first = annotation_submit(item=item, annotator=ann, label="positive", comment="sure")
    changed = annotation_submit(item=item, annotator=ann, label="negative", unsure=True)
    assert changed.pk == first.pk
    changed.refresh_from_db()
    assert changed.label.name == "negative" and changed.unsure
    (revision,) = changed.revisions.all()
    assert (revision.label.name, revision.unsure, revision.comment) == ("positive", False, "sure")
    assert Item.objects.get(pk=item.pk).done_count == 1  # a change is not a second annotator


def test_submitting_releases_the_lease(manager):
    project = make_project(manager)
    one_item(project)
    ann = add_member(project, "ann")
    item = next_item(project=project, annotator=ann)
    assert Lease.objects.filter(annotator=ann, item=item).exists()
    annotation_submit(item=item, annotator=ann, label="positive")
    assert not Lease.objects.filter(annotator=ann).exists()


def test_only_members_label_and_managers_may_too(manager, make_user):
    # Membership is checked at the boundary (labeling.permissions.project_for), before the
    # service: a non-member is told the project does not exist.
    project = make_project(manager, overlap=2)
    item = one_item(project)
    outsider = APIClient()
    outsider.force_authenticate(make_user("outsider"))
    refused = outsider.post(
        f"/api/v1/projects/{project.pk}/annotations/",
        {"item": item.pk, "label": "positive"},
        format="json",
    )
    assert refused.status_code == 404
    assert not Annotation.objects.filter(item=item).exists()
    assert annotation_submit(item=item, annotator=manager, label="positive").label.name == (
        "positive"
    )


def test_undo_reopens_the_last_item_for_change(manager):
    project = make_project(manager, overlap=1)
    first, second = one_item(project, "a"), one_item(project, "b")
    ann = add_member(project, "ann")
    annotation_submit(item=first, annotator=ann, label="positive")
    annotation_submit(item=second, annotator=ann, label="positive")
    assert annotation_undo_last(project=project, annotator=ann) == second
    changed = annotation_submit(item=second, annotator=ann, label="negative")
    assert changed.revisions.count() == 1
    assert Item.objects.get(pk=second.pk).done_count == 1
